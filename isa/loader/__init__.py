"""Program loader: ELF objects, llvm-objdump text and hXDP assembly -> ``isa.program.Program``.

``load(path, section=None)`` picks one program by section name or function name (contract
``-s/--section``; a section holding several programs gives its first one, a function name
or ``section/function`` -- the form the error lists -- picks any); by default the first program of the first section whose name starts with
``xdp``.  The input kind is recognised by content: ELF magic, objdump text, else assembly.
Every program of one object shares the object's map list, so map indices are stable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from isa.errors import InputError, quote
from isa.loader.elf import CodeSection, ElfObject
from isa.loader.link import Entry, Linker, entry_points
from isa.loader.maps import MapTable, read_maps
from isa.loader.objdump import looks_like_objdump, parse_objdump_text
from isa.program import Program

__all__ = ["load", "load_all", "open_input", "Input", "ElfObject", "CodeSection", "kind_of", "parse_objdump",
           "code_sections"]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None


def kind_of(data: bytes) -> str:
    """'elf', 'objdump' or 'asm' from the content of a file."""
    if data[:4] == b"\x7fELF":
        return "elf"
    if looks_like_objdump(data[:65536].decode("utf-8", "replace")):
        return "objdump"
    return "asm"


class _Unit:
    """What the linker needs from any input: code sections, maps, license."""

    def __init__(self, path: str, sections: list[CodeSection], maps: MapTable, license: str):
        self.path, self.sections, self.maps, self.license = path, sections, maps, license
        self.entries = entry_points(sections)

    def link(self, entry: Entry) -> Program:
        return Linker(self.path, self.sections, self.maps).link(entry, self.license)

    def select(self, section: Optional[str]) -> Entry:
        if not self.entries:
            raise InputError(self.path, "no program (no code section with a function)")
        if section is None:
            for e in self.entries:
                if e.section.name.startswith("xdp"):
                    return e
            unnamed = [e for e in self.entries if e.section.name == ""]
            if unnamed and len(self.entries) == 1:
                return unnamed[0]
            raise InputError(self.path, f"no program in a section named xdp*; use -s with one of: {self._names()}")
        for e in self.entries:
            if e.section.name == section:
                return e
        for e in self.entries:
            if e.func.name == section or self._name(e) == section:
                return e
        raise InputError(self.path, f"no section or function {quote(section)}; programs: {self._names()}")

    @staticmethod
    def _name(e: Entry) -> str:
        """`section/function`, as the error lists programs (and -s takes them back)."""
        return f"{e.section.name or '-'}/{e.func.name}"

    def _names(self) -> str:
        return ", ".join(self._name(e) for e in self.entries)


def _unit(path) -> "_Unit | Program":
    p = str(path)
    data = _read(p)
    kind = kind_of(data)
    if kind == "elf":
        obj = ElfObject.from_bytes(data, p)
        sections = obj.code_sections()
        return _Unit(p, sections, read_maps(obj), obj.license)
    text = data.decode("utf-8", "replace")
    if kind == "objdump":
        return _Unit(p, parse_objdump_text(text, p), MapTable(), "")
    return _assemble(text, p)


def _assemble(text: str, path: str) -> Program:
    from isa.asm import AsmError, assemble_program
    try:
        prog = assemble_program(text, name=Path(path).stem)
    except AsmError as e:
        raise InputError(f"{path}: line {e.line}" if e.line else path, e.reason) from None
    except ValueError as e:
        raise InputError(path, str(e)) from None
    if not prog.insns:
        raise InputError(path, "not an ELF object, llvm-objdump text or assembly with instructions")
    prog.path = path
    return prog


class Input:
    """One input file, read and parsed once; a command selects its programs from it."""

    def __init__(self, path):
        self.path = str(path)
        self._unit = _unit(path)

    def program(self, section: Optional[str] = None) -> Program:
        """One linked program, by section or function name (`-s`), else the default one."""
        u = self._unit
        if isinstance(u, Program):
            if section is not None and section not in (u.section, u.name, f"{u.section}/{u.name}"):
                raise InputError(self.path, f"no section or function {quote(section)}; program: {u.section}/{u.name}")
            return u
        return u.link(u.select(section))

    def programs(self) -> list[Program]:
        """Every program of the input (in section order, then by offset), each linked."""
        u = self._unit
        if isinstance(u, Program):
            return [u]
        return [u.link(e) for e in u.entries]


def open_input(path) -> Input:
    """The parsed input (ELF object, objdump text or assembly) to select programs from."""
    return Input(path)


def load(path, section: Optional[str] = None) -> Program:
    """One linked program of an ELF object, objdump text or assembly file."""
    return open_input(path).program(section)


def load_all(path) -> list[Program]:
    """Every program of the input (in section order, then by offset), each linked."""
    return open_input(path).programs()


def code_sections(path) -> list[CodeSection]:
    """Raw code sections of an ELF object or objdump text (for disassembly)."""
    p = str(path)
    data = _read(p)
    if kind_of(data) == "elf":
        return ElfObject.from_bytes(data, p).code_sections()
    return parse_objdump_text(data.decode("utf-8", "replace"), p)


def parse_objdump(path) -> list[CodeSection]:
    from isa.loader.objdump import parse_objdump as _p
    return _p(path)
