"""A minimal relocatable BPF ELF object (ELF64, little-endian, EM_BPF), laid out as clang
lays out its own: the entry function in its program section (default `xdp`), the other
functions (BPF-to-BPF call targets) in `.text`, calls from the program section into
`.text` as `R_BPF_64_32` relocations against the `.text` section symbol (imm = target
instruction - 1, clang's encoding), a `license` section with its `_license` symbol, and
`.symtab`/`.strtab`/`.shstrtab`.  llvm-objdump, bpftool and libbpf open it.

Map references (`lddw` src 1-6) are written as they are, without map definitions or
relocations: assembly text has no map definitions to write.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from isa.insn import Insn, encode, slot_offsets
from isa.opcodes import Kind
from isa.program import Program

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_REL = 1, 2, 3, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x40
STB_LOCAL, STB_GLOBAL = 0, 1
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
R_BPF_64_32 = 10


class _Strtab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.index: dict[str, int] = {"": 0}

    def add(self, s: str) -> int:
        if s not in self.index:
            self.index[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.index[s]


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    data: bytes
    align: int = 1
    link: int = 0
    info: int = 0
    entsize: int = 0


@dataclass
class _Sym:
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int


@dataclass
class _Code:
    name: str
    insns: list[Insn] = field(default_factory=list)
    relocs: list[int] = field(default_factory=list)     # byte offsets of calls into .text


def elf_bytes(program: Program, labels: Optional[dict[str, int]] = None, license: str = "GPL") -> bytes:
    """The object file's bytes.  `labels` (name -> instruction index) become local
    symbols, as clang's `LBB0_2` labels are."""
    insns = program.insns
    slots = slot_offsets(insns)
    total = slots[-1] + insns[-1].slots if insns else 0
    funcs = sorted(program.functions, key=lambda f: f.start) or []
    entry_end = funcs[1].start if len(funcs) > 1 else len(insns)
    split = slots[entry_end] if entry_end < len(insns) else total
    sec_name = program.section or "xdp"
    main = _Code(sec_name)
    text = _Code(".text")
    for n, insn in enumerate(insns):
        in_main = n < entry_end
        if insn.spec.kind == Kind.CALL_LOCAL and in_main:
            target = slots[n] + 1 + insn.imm
            if target >= split:                 # into .text: clang's relocated form
                main.relocs.append(slots[n] * 8)
                insn = insn.with_(imm=target - split - 1)
        elif insn.spec.kind == Kind.CALL_LOCAL and slots[n] + 1 + insn.imm < split:
            raise ValueError(f"instruction {n}: a subprogram calls back into the entry function")
        (main if in_main else text).insns.append(insn)

    shstr, strtab = _Strtab(), _Strtab()
    sections = [_Section("", 0, 0, b"")]

    def add(sec: _Section) -> int:
        sections.append(sec)
        return len(sections) - 1

    text_idx = add(_Section(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, encode(text.insns), 8)) \
        if text.insns else 0
    main_idx = add(_Section(sec_name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, encode(main.insns), 8))
    rel_idx = add(_Section(".rel" + sec_name, SHT_REL, SHF_INFO_LINK, b"", 8, info=main_idx, entsize=16)) \
        if main.relocs else 0
    lic_idx = add(_Section("license", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, license.encode() + b"\0", 1))

    locals_: list[_Sym] = []
    if text_idx:
        locals_.append(_Sym("", 0, 0, STB_LOCAL, STT_SECTION, text_idx))
    for name, idx in sorted((labels or {}).items(), key=lambda kv: (kv[1], kv[0])):
        if any(f.name == name for f in funcs):
            continue
        slot = slots[idx] if idx < len(insns) else total
        if not text_idx or slot < split:
            locals_.append(_Sym(name, slot * 8, 0, STB_LOCAL, STT_NOTYPE, main_idx))
        else:
            locals_.append(_Sym(name, (slot - split) * 8, 0, STB_LOCAL, STT_NOTYPE, text_idx))
    func_syms = []
    for k, f in enumerate(funcs):
        start = slots[f.start]
        end = slots[funcs[k + 1].start] if k + 1 < len(funcs) else total
        if k == 0:
            func_syms.append(_Sym(f.name, 0, (end - start) * 8, STB_GLOBAL, STT_FUNC, main_idx))
        else:
            locals_.append(_Sym(f.name, (start - split) * 8, (end - start) * 8, STB_LOCAL, STT_FUNC, text_idx))
    if not funcs:
        func_syms.append(_Sym(program.name or sec_name, 0, total * 8, STB_GLOBAL, STT_FUNC, main_idx))
    globals_ = func_syms + [_Sym("_license", 0, len(license) + 1, STB_GLOBAL, STT_OBJECT, lic_idx)]
    syms = [_Sym("", 0, 0, STB_LOCAL, STT_NOTYPE, 0)] + locals_ + globals_
    symdata = b"".join(struct.pack("<IBBHQQ", strtab.add(s.name), (s.bind << 4) | s.type, 0, s.shndx,
                                   s.value, s.size) for s in syms)
    symtab_idx = len(sections)
    if rel_idx:
        sections[rel_idx].link = symtab_idx
        sections[rel_idx].data = b"".join(struct.pack("<QQ", off, (1 << 32) | R_BPF_64_32) for off in main.relocs)
    add(_Section(".symtab", SHT_SYMTAB, 0, symdata, 8, link=symtab_idx + 1, info=1 + len(locals_), entsize=24))
    add(_Section(".strtab", SHT_STRTAB, 0, bytes(strtab.data), 1))
    shstr_idx = len(sections)
    sections.append(_Section(".shstrtab", SHT_STRTAB, 0, b"", 1))
    names = [shstr.add(s.name) for s in sections]
    sections[shstr_idx].data = bytes(shstr.data)

    out = bytearray(64)
    offsets = []
    for s in sections:
        if s.type == 0:
            offsets.append(0)
            continue
        out += b"\0" * (-len(out) % max(s.align, 1))
        offsets.append(len(out))
        out += s.data
    out += b"\0" * (-len(out) % 8)
    shoff = len(out)
    for s, off, nm in zip(sections, offsets, names):
        out += struct.pack("<IIQQQQIIQQ", nm, s.type, s.flags, 0, off, len(s.data), s.link, s.info,
                           s.align if s.type else 0, s.entsize)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    out[:64] = ident + struct.pack("<HHIQQQIHHHHHH", ET_REL, EM_BPF, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                                   len(sections), shstr_idx)
    return bytes(out)


def write_elf(path: str | Path, program: Program, labels: Optional[dict[str, int]] = None,
              license: str = "GPL") -> None:
    Path(path).write_bytes(elf_bytes(program, labels, license))
