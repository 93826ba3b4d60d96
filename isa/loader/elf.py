"""Reading a BPF ELF object (pyelftools): validation, code sections, symbols, relocations.

Nothing here links or interprets maps; ``ElfObject`` only turns the file into checked data
(``CodeSection``: raw, unrelocated instructions with their function symbols and relocations)
so that the disassembler can print it and the linker (``link.py``) can resolve it.
Every defect of the file is an ``InputError`` naming the file and the section/offset.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from isa.errors import InputError, plain, quote
from isa.insn import DecodeError, Insn, decode, slot_offsets

EM_BPF = 247
SHT_NOBITS = "SHT_NOBITS"
SHF_EXECINSTR = 0x4
SHN_SPECIAL = {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1, "SHN_COMMON": 0xFFF2, "SHN_XINDEX": 0xFFFF}

# BPF relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def)
R_BPF_NONE, R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_NODYLD32 = 0, 1, 2, 3, 4
R_BPF_64_32 = 10
RELOC_NAMES = {0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32",
               4: "R_BPF_64_NODYLD32", 10: "R_BPF_64_32"}


@dataclass(frozen=True)
class Symbol:
    name: str          # section symbols take their section's name
    value: int
    size: int
    type: str          # "FUNC", "OBJECT", "NOTYPE", "SECTION", ...
    bind: str          # "GLOBAL", "LOCAL", "WEAK"
    shndx: int         # 0 = undefined (extern)
    section: str = ""  # name of section shndx ('' when undefined/special)


@dataclass(frozen=True)
class Relocation:
    offset: int                 # byte offset in the relocated section
    index: int                  # instruction index (lddw counts once) of that offset
    type: int
    symbol: Symbol
    addend: Optional[int] = None  # only for SHT_RELA (BPF objects use SHT_REL)

    @property
    def type_name(self) -> str:
        return RELOC_NAMES.get(self.type, f"type {self.type}")


@dataclass(frozen=True)
class FuncRange:
    """A function of a code section as instruction indices [start, end)."""
    name: str
    start: int
    end: int
    bind: str = "GLOBAL"


@dataclass
class CodeSection:
    name: str
    insns: list[Insn]                  # raw, unrelocated
    symbols: list[tuple[str, int]]     # FUNC symbols (name, insn index), sorted by offset
    relocations: list[Relocation]      # sorted by offset
    index: int = 0                     # ELF section index
    labels: list[tuple[str, int]] = field(default_factory=list)  # every named symbol (FUNC + local labels)
    functions: list[FuncRange] = field(default_factory=list)   # never empty for a non-empty section

    def slots(self) -> list[int]:
        return slot_offsets(self.insns)

    def index_of_slot(self, slot: int) -> Optional[int]:
        """Instruction index starting at `slot`, or None (middle of a lddw / past the end)."""
        s = 0
        for k, i in enumerate(self.insns):
            if s == slot:
                return k
            if s > slot:
                return None
            s += i.slots
        return len(self.insns) if s == slot else None

    def relocation_at(self, index: int) -> Optional[Relocation]:
        for r in self.relocations:
            if r.index == index:
                return r
        return None


def _shndx(v) -> int:
    return v if isinstance(v, int) else SHN_SPECIAL.get(v, 0xFFFF)


class ElfObject:
    """A validated BPF ELF object.  Open with ``ElfObject.open(path)``."""

    def __init__(self, path: str, data: bytes, elf: ELFFile):
        self.path = path
        self.data = data
        self.elf = elf
        self._sections = []     # index -> (name, pyelftools Section)
        self._symbols: list[Symbol] = []
        self._code: Optional[list[CodeSection]] = None
        self._relocs: dict[int, list[tuple[int, int, Symbol, Optional[int]]]] = {}

    # ---- opening and validation ----
    @classmethod
    def open(cls, path) -> "ElfObject":
        p = str(path)
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise InputError(p, f"cannot read: {e.strerror or e}") from None
        return cls.from_bytes(data, p)

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "<bytes>") -> "ElfObject":
        if len(data) < 4 or data[:4] != b"\x7fELF":
            raise InputError(path, "not an ELF file (no \\x7fELF magic at offset 0)")
        if len(data) < 64:
            raise InputError(path, f"truncated ELF header ({len(data)} bytes, need 64)")
        if data[4] != 2:
            raise InputError(path, f"not a 64-bit ELF (EI_CLASS={data[4]} at offset 4)")
        if data[5] != 1:
            raise InputError(path, f"not a little-endian ELF (EI_DATA={data[5]} at offset 5)")
        machine = struct.unpack_from("<H", data, 18)[0]
        if machine != EM_BPF:
            raise InputError(path, f"not a BPF object: e_machine is {machine} at offset 18, BPF is {EM_BPF}")
        try:
            elf = ELFFile(io.BytesIO(data))
            obj = cls(path, data, elf)
            obj._read_headers()
            obj._read_symbols()
            obj._read_relocations()
        except InputError:
            raise
        except (ELFError, ELFParseError, struct.error, ValueError, KeyError, IndexError, TypeError,
                AttributeError, OverflowError, EOFError, MemoryError) as e:
            raise InputError(path, f"malformed ELF: {e}") from None
        return obj

    def _read_headers(self) -> None:
        h = self.elf.header
        n = len(self.data)
        shoff, shnum, shentsize = h["e_shoff"], h["e_shnum"], h["e_shentsize"]
        if shnum and shentsize != 64:
            raise InputError(self.path, f"bad section header size {shentsize} (e_shentsize at offset 58)")
        if shoff + shnum * shentsize > n:
            raise InputError(self.path, f"truncated: section headers at offset {shoff} "
                                        f"({shnum} x {shentsize} bytes) extend past the end of the file ({n} bytes)")
        if h["e_shstrndx"] >= max(shnum, 1) and shnum:
            raise InputError(self.path, f"bad section name table index {h['e_shstrndx']}")
        strtab = self.elf.get_section(h["e_shstrndx"]).header if shnum else None
        if strtab is not None and strtab["sh_offset"] + strtab["sh_size"] > n:
            raise InputError(self.path, "truncated: section name table extends past the end of the file")
        for i in range(shnum):
            sec = self.elf.get_section(i)
            sh = sec.header
            name = sec.name
            if sh["sh_type"] != SHT_NOBITS and sh["sh_offset"] + sh["sh_size"] > n:
                raise InputError(f"{self.path}: section {plain(name) if name else i}",
                                 f"truncated: offset {sh['sh_offset']} + size {sh['sh_size']} "
                                 f"extends past the end of the file ({n} bytes)")
            self._sections.append((name, sec))

    def _read_symbols(self) -> None:
        for name, sec in self._sections:
            if not isinstance(sec, SymbolTableSection):
                continue
            if sec.header["sh_entsize"] not in (0, 24) or sec.header["sh_size"] % 24:
                raise InputError(f"{self.path}: section {plain(name)}", "bad symbol table entry size")
            for s in sec.iter_symbols():
                shndx = _shndx(s["st_shndx"])
                secname = self._sections[shndx][0] if 0 < shndx < len(self._sections) else ""
                if 0 < shndx < 0xFF00 and shndx >= len(self._sections):
                    raise InputError(f"{self.path}: symbol {quote(s.name)}", f"section index {shndx} out of range")
                typ = s["st_info"]["type"].replace("STT_", "")
                self._symbols.append(Symbol(
                    name=s.name or (secname if typ == "SECTION" else ""), value=s["st_value"],
                    size=s["st_size"], type=typ, bind=s["st_info"]["bind"].replace("STB_", ""),
                    shndx=shndx, section=secname))
            break  # one SHT_SYMTAB per object

    # ---- sections ----
    @property
    def section_names(self) -> list[str]:
        return [n for n, _ in self._sections]

    @property
    def symbols(self) -> list[Symbol]:
        return self._symbols

    def section_index(self, name: str) -> Optional[int]:
        for i, (n, _) in enumerate(self._sections):
            if n == name:
                return i
        return None

    def section_header(self, index: int):
        return self._sections[index][1].header

    def section_name(self, index: int) -> str:
        return self._sections[index][0] if 0 <= index < len(self._sections) else ""

    def section_data(self, index: int) -> bytes:
        """Bytes of a section (zeros for NOBITS, e.g. .bss)."""
        sh = self.section_header(index)
        if sh["sh_type"] == SHT_NOBITS:
            return bytes(sh["sh_size"])
        return self.data[sh["sh_offset"]: sh["sh_offset"] + sh["sh_size"]]

    def is_code(self, index: int) -> bool:
        sh = self.section_header(index)
        return sh["sh_type"] == "SHT_PROGBITS" and bool(sh["sh_flags"] & SHF_EXECINSTR) and sh["sh_size"] > 0

    def symbols_in(self, index: int) -> list[Symbol]:
        return [s for s in self._symbols if s.shndx == index]

    @property
    def license(self) -> str:
        i = self.section_index("license")
        return self.section_data(i).split(b"\0", 1)[0].decode("utf-8", "replace") if i is not None else ""

    def relocations_for(self, index: int) -> list[tuple[int, int, Symbol, Optional[int]]]:
        """(offset, type, symbol, addend) of every relocation applying to section `index`."""
        return self._relocs.get(index, [])

    def _read_relocations(self) -> None:
        """Read every relocation section now, so that malformed ones fail at open time."""
        for name, sec in self._sections:
            if not isinstance(sec, RelocationSection):
                continue
            index = sec.header["sh_info"]
            out = self._relocs.setdefault(index, [])
            link = sec.header["sh_link"]
            if not isinstance(self._sections[link][1] if link < len(self._sections) else None,
                              SymbolTableSection):
                raise InputError(f"{self.path}: section {plain(name)}", f"sh_link {link} is not a symbol table")
            entsize = 24 if sec.is_RELA() else 16
            if sec.header["sh_size"] % entsize:
                raise InputError(f"{self.path}: section {plain(name)}",
                                 f"size {sec.header['sh_size']} is not a multiple of {entsize}")
            for k, r in enumerate(sec.iter_relocations()):
                symi = r["r_info_sym"]
                if symi >= len(self._symbols):
                    raise InputError(f"{self.path}: section {plain(name)}",
                                     f"relocation {k} names symbol {symi}, the table has {len(self._symbols)}")
                out.append((r["r_offset"], r["r_info_type"], self._symbols[symi],
                            r["r_addend"] if sec.is_RELA() else None))
            out.sort(key=lambda t: t[0])

    # ---- code ----
    def code_sections(self, strict: bool = True) -> list[CodeSection]:
        """Every executable section in file order (``.text`` included), decoded but unrelocated."""
        if self._code is None or not strict:
            code = [self._code_section(i, strict) for i in range(len(self._sections)) if self.is_code(i)]
            if not strict:
                return code
            self._code = code
        return self._code

    def _code_section(self, index: int, strict: bool) -> CodeSection:
        name = self.section_name(index)
        where = f"{self.path}: section {plain(name)}"
        raw = self.section_data(index)
        if len(raw) % 8:
            raise InputError(where, f"size {len(raw)} is not a multiple of 8 (instruction size)")
        try:
            insns = decode(raw, strict=strict)
        except DecodeError as e:
            raise InputError(where, str(e)) from None
        slots = slot_offsets(insns)
        slot_to_index = {s: k for k, s in enumerate(slots)}
        nslots = len(raw) // 8

        def at(offset: int, what: str) -> int:
            if offset % 8 or offset // 8 not in slot_to_index:
                raise InputError(where, f"{what} at byte offset {offset} is not at an instruction start")
            return slot_to_index[offset // 8]

        syms = sorted(self.symbols_in(index), key=lambda s: (s.value, s.name))
        funcs = [s for s in syms if s.type == "FUNC"]
        if not funcs:   # hand-written or old objects: global untyped symbols name the programs
            funcs = [s for s in syms if s.type == "NOTYPE" and s.bind == "GLOBAL" and s.name]
        for s in syms:
            if s.type in ("FUNC", "NOTYPE") and s.name and (s.value % 8 or s.value // 8 > nslots):
                raise InputError(where, f"symbol {quote(s.name)} at byte offset {s.value} is not an instruction boundary")
        labels = [(s.name, at(s.value, f"symbol {quote(s.name)}")) for s in syms
                  if s.type in ("FUNC", "NOTYPE") and s.name and s.value // 8 < nslots]
        ranges: list[FuncRange] = []
        starts = sorted({s.value for s in funcs})
        for s in funcs:
            start = at(s.value, f"function {quote(s.name)}")
            if s.size:
                end_b = s.value + s.size
                if end_b > len(raw) or end_b % 8:
                    raise InputError(where, f"function {quote(s.name)} (offset {s.value}, size {s.size}) "
                                            f"extends past the section ({len(raw)} bytes)")
            else:
                later = [v for v in starts if v > s.value]
                end_b = later[0] if later else len(raw)
            end = len(insns) if end_b // 8 == nslots else at(end_b, f"end of function {quote(s.name)}")
            ranges.append(FuncRange(s.name, start, end, s.bind))
        relocs = [Relocation(off, at(off, f"relocation {RELOC_NAMES.get(t, t)}"), t, sym, add)
                  for off, t, sym, add in self.relocations_for(index)]
        symbols = [(f.name, f.start) for f in ranges]
        if not ranges and insns:   # no function symbol: the section is one function
            at0 = [n for n, k in labels if k == 0]
            ranges = [FuncRange(at0[0] if at0 else name, 0, len(insns), "LOCAL")]
        return CodeSection(name=name, insns=insns, symbols=symbols,
                           relocations=relocs, index=index, labels=labels, functions=ranges)

    def code_section(self, name: str) -> CodeSection:
        for c in self.code_sections():
            if c.name == name:
                return c
        raise InputError(self.path, f"no code section {quote(name)} (sections: "
                                    f"{', '.join(c.name for c in self.code_sections()) or 'none'})")
