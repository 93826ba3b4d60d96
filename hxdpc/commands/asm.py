"""`hxdpc asm FILE.s -o OUT [--format rom|bin|coe|mem|mif|json]`: assemble.

Instruction syntax (llvm-objdump's `r0 = 1` or the bpf_conformance suite's `mov %r0, 1`)
becomes a BPF ELF object with the code in section `xdp` (isa.elfwrite); the row syntax
(isa.rowtext) becomes an instruction-memory image (isa.imagefmt).
"""
from __future__ import annotations

from pathlib import Path

import click

from hxdpc.commands.outputs import check_outputs
from isa.errors import InputError
from isa.asm import AsmError, assemble_listing, program_of
from isa.elfwrite import write_elf
from isa.rowtext import is_row_text, parse_rows

FORMATS = ["rom", "bin", "coe", "mem", "mif", "json"]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"cannot read: {getattr(e, 'strerror', None) or e}") from None


def _where(path: Path, e: AsmError) -> str:
    return f"{path}:{e.line}" if e.line else str(path)


def assemble_rows(path: Path, text: str, out: Path, fmt: str) -> str:
    try:
        image = parse_rows(text)
    except AsmError as e:
        raise InputError(_where(path, e), e.reason) from None
    from isa import imagefmt
    imagefmt.write_image(image, out, fmt)
    return f"{out}: {image.used_rows} rows x {image.lanes} lanes ({fmt})"


def assemble_object(path: Path, text: str, out: Path, section: str | None, name: str | None) -> str:
    try:
        lst = assemble_listing(text)
        prog = program_of(lst, name=name or path.stem)
    except AsmError as e:
        raise InputError(_where(path, e), e.reason) from None
    if not prog.insns:
        raise InputError(str(path), "no instructions")
    if section:
        prog.section = section
    if name:
        prog.functions[0].name = name
    try:
        write_elf(out, prog, lst.labels)
    except ValueError as e:
        raise InputError(str(path), str(e)) from None
    except OSError as e:
        raise InputError(str(out), f"cannot write: {e.strerror or e}") from None
    return f"{out}: {prog.slot_count} instructions in section {prog.section}"


@click.command("asm", epilog="\b\nExamples:\n  hxdpc asm prog.s -o prog.o\n"
                              "  hxdpc asm xdp1.rows.s -o xdp1.bin   (row syntax; format from the name)")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="output file (default ./STEM.o, or ./STEM.FORMAT for row syntax)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="image format for row-syntax input (default: from the extension of -o, else rom)")
@click.option("--section", default=None, help="ELF section of the program (default: .section in the file, else xdp)")
@click.option("--name", default=None, help="function symbol of the entry (default: a label at 0, else the file stem)")
def command(file, output, fmt, section, name):
    """Assemble FILE: instruction text into a BPF ELF object, row syntax into an image."""
    text = _read(file)
    from isa.loader import kind_of
    default = Path(f"{file.stem}.{fmt}") if is_row_text(text) else Path(f"{file.stem}.o")
    check_outputs({"FILE": file}, {"-o": output or default})
    if kind_of(text.encode()) == "objdump" and text.count("Disassembly of section") > 1:
        # several sections: the loader links them (symbols, -r relocations); one section
        # is plain assembly (its symbols become labels)
        from isa import loader
        prog = loader.load(file, section)
        out = output or Path(f"{file.stem}.o")
        write_elf(out, prog)
        click.echo(f"{out}: {prog.slot_count} instructions in section {prog.section}")
    elif is_row_text(text):
        from isa.imagefmt import choose_format
        fmt = choose_format(output, fmt)
        out = output or Path(f"{file.stem}.{fmt}")
        click.echo(assemble_rows(file, text, out, fmt))
    else:
        out = output or Path(f"{file.stem}.o")
        click.echo(assemble_object(file, text, out, section, name))
