"""`hxdpc disasm FILE`: ELF objects and llvm-objdump text in llvm-objdump's layout
(LLVM 14's text, isa.disasm); instruction-memory images and row text in the row syntax
(isa.rowtext) that `hxdpc asm` reads back; assembly text in llvm-objdump's layout."""
from __future__ import annotations

from pathlib import Path

import click

from isa.errors import InputError, quote
from isa.asm import AsmError, assemble_listing
from isa.disasm import disassemble_file, format_insn
from isa import imagefmt
from isa.rowtext import format_rows, is_row_text, parse_rows

MARKED_FORMATS = ("bin", "json", "coe", "mif")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror or e}") from None


def _sections(path: Path, section: str | None):
    from isa import loader
    secs = loader.code_sections(path)
    if section is not None:
        secs = [s for s in secs if s.name == section]
        if not secs:
            raise InputError(str(path), f"no code section {quote(section)}")
    return [(s.name, s.insns, getattr(s, "labels", None) or s.symbols) for s in secs]


def _image(path: Path, data: bytes):
    """The image in a file (any format `compile` writes, with its sidecar), or None when the
    content is not an image.  A damaged bin, json, coe or mif image (formats with a marker)
    is an error; text that merely looks like a mem or rom image may be assembly."""
    fmt = imagefmt.detect(data)
    if fmt is None:
        return None
    if fmt in MARKED_FORMATS:
        return imagefmt.read_image(path)
    try:
        return imagefmt.read_image(path)
    except InputError:
        return None


def _conf_listing(sections) -> str:
    out = []
    for name, insns, symbols in sections:
        out.append(f"# section {name}")
        at = {}
        for sym, idx in symbols:
            at.setdefault(idx, []).append(sym)
        for n, i in enumerate(insns):
            out += [f"{s}:" for s in at.get(n, [])]
            out.append(format_insn(i, "conf"))
    return "\n".join(out) + "\n"


def render(path: Path, section: str | None = None, syntax: str = "llvm") -> str:
    data = _read(path)
    from isa.loader import kind_of
    kind = kind_of(data)
    if kind in ("elf", "objdump"):
        secs = _sections(path, section)
        return disassemble_file(str(path), secs) if syntax == "llvm" else _conf_listing(secs)
    if imagefmt.detect(data) in MARKED_FORMATS:      # before row text: a json image is `{...}`
        return format_rows(_image(path, data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise InputError(str(path), "not an ELF object, objdump text, image, row text or assembly")
    try:
        if is_row_text(text):
            return format_rows(parse_rows(text))
        image = _image(path, data)
        if image is not None:
            return format_rows(image)
        lst = assemble_listing(text)
    except AsmError as e:
        raise InputError(f"{path}:{e.line}" if e.line else str(path), e.reason) from None
    if not lst.insns:
        raise InputError(str(path), "not an ELF object, objdump text, image, row text or assembly")
    labels = sorted(lst.labels.items(), key=lambda kv: kv[1]) or []
    if not labels or labels[0][1] != 0:
        labels = [(path.stem, 0)] + labels
    secs = [(lst.section or "xdp", lst.insns, [(n, i) for n, i in labels if i < len(lst.insns)])]
    return disassemble_file(str(path), secs) if syntax == "llvm" else _conf_listing(secs)


def render_x86(path: Path, section: str | None = None) -> str:
    """The x86 translation of the program(s) in `path` (all code sections, or `section`)."""
    from isa import loader
    from emulator.x86.listing import format_translation
    from emulator.x86.translate import translate
    inp = loader.open_input(str(path))
    programs = [inp.program(section)] if section is not None else inp.programs()
    return "\n".join(format_translation(translate(p)) for p in programs)


@click.command("disasm", epilog="\b\nExamples:\n  hxdpc disasm sample_programs/xdp1.o\n"
                                 "  hxdpc disasm xdp1.rom -o xdp1.rows.s   (then: hxdpc asm xdp1.rows.s -o xdp1.rom)")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-s", "--section", default=None, help="only this code section")
@click.option("--syntax", type=click.Choice(["llvm", "conf"]), default="llvm", show_default=True,
              help="instruction syntax for programs (images are always in row syntax)")
@click.option("--x86", "x86", is_flag=True,
              help="the program's x86-64 translation (the x86 target's code, capstone's text)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write here instead of stdout")
def command(file, section, syntax, x86, output):
    """Disassemble FILE (ELF object, llvm-objdump text, image, row text or assembly)."""
    text = render_x86(file, section) if x86 else render(file, section, syntax)
    if output:
        try:
            output.write_text(text)
        except OSError as e:
            raise InputError(str(output), f"cannot write: {e.strerror or e}") from None
    else:
        click.echo(text, nl=False)
