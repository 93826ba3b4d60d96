"""A BPF ELF object with legacy map definitions, as clang lays out `SEC("maps")` objects.

isa.elfwrite writes assembly without maps; the fuzzer's programs use maps, so this writes
the entry in its `xdp` section, subprograms (call and bpf_loop callback targets) in
`.text` with one FUNC symbol each, `struct bpf_map_def` entries in `maps` with one OBJECT
symbol each, and the relocations clang emits: R_BPF_64_64 on `lddw` against a map symbol
or against the `.text` section symbol (imm = byte offset: a function address), R_BPF_64_32
on `call` against `.text` (imm = target instruction - 1).  The project's loader links it
and the kernel takes it through emulator.kernel.raw, the path `hxdpc verify` uses for such
objects.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from hxdpc.fuzz.build import Resolved
from isa.insn import encode

EM_BPF, ET_REL = 247, 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_REL = 1, 2, 3, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x40
STB_LOCAL, STB_GLOBAL = 0, 1
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
R_BPF_64_64, R_BPF_64_32 = 1, 10
MAP_DEF = struct.Struct("<5I")


@dataclass(frozen=True)
class MapSpec:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int


@dataclass
class ObjectCode:
    """What goes into the object: resolved entry code and subprograms (name, code)."""
    name: str
    main: Resolved
    subprogs: list[tuple[str, Resolved]]
    maps: list[MapSpec]
    section: str = "xdp"


class _Strtab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, s: str) -> int:
        if not s:
            return 0
        off = len(self.data)
        self.data += s.encode() + b"\0"
        return off


def _sym(name: int, bind: int, typ: int, shndx: int, value: int, size: int) -> bytes:
    return struct.pack("<IBBHQQ", name, (bind << 4) | typ, 0, shndx, value, size)


def elf_with_maps(code: ObjectCode) -> bytes:
    """The bytes of the object file."""
    text_start: dict[str, int] = {}
    text_insns = []
    for name, sub in code.subprogs:
        text_start[name] = sum(i.slots for i in text_insns)
        text_insns += sub.insns
    main = list(code.main.insns)
    # section indices: 1 xdp, 2 .relxdp, 3 .text, 4 maps, 5 license, 6 symtab, 7 strtab, 8 shstrtab
    XDP, REL, TEXT, MAPS, LIC, SYMTAB, STRTAB, SHSTR = range(1, 9)
    strtab = _Strtab()
    syms = [_sym(0, 0, 0, 0, 0, 0), _sym(0, STB_LOCAL, STT_SECTION, TEXT, 0, 0)]
    text_sym = 1
    for name, sub in code.subprogs:
        syms.append(_sym(strtab.add(name), STB_LOCAL, STT_FUNC, TEXT, text_start[name] * 8,
                         sum(i.slots for i in sub.insns) * 8))
    n_local = len(syms)
    syms.append(_sym(strtab.add(code.name), STB_GLOBAL, STT_FUNC, XDP, 0, sum(i.slots for i in main) * 8))
    map_sym = {}
    for k, m in enumerate(code.maps):
        map_sym[m.name] = len(syms)
        syms.append(_sym(strtab.add(m.name), STB_GLOBAL, STT_OBJECT, MAPS, k * MAP_DEF.size, MAP_DEF.size))
    syms.append(_sym(strtab.add("_license"), STB_GLOBAL, STT_OBJECT, LIC, 0, 4))
    rels = bytearray()
    for r in code.main.relocs:
        idx = _insn_at_slot(main, r.slot)
        if r.kind == "map":
            rels += struct.pack("<QQ", r.slot * 8, (map_sym[r.target] << 32) | R_BPF_64_64)
        elif r.kind == "func":
            main[idx] = main[idx].with_(imm=text_start[r.target] * 8)
            rels += struct.pack("<QQ", r.slot * 8, (text_sym << 32) | R_BPF_64_64)
        else:
            main[idx] = main[idx].with_(imm=text_start[r.target] - 1)
            rels += struct.pack("<QQ", r.slot * 8, (text_sym << 32) | R_BPF_64_32)
    for _, sub in code.subprogs:
        if sub.relocs:
            raise ValueError("subprograms reference no maps or functions in this generator")
    maps = b"".join(MAP_DEF.pack(m.type, m.key_size, m.value_size, m.max_entries, 0) for m in code.maps)
    shstr = _Strtab()
    sections = [  # name, type, flags, data, align, link, info, entsize
        ("", 0, 0, b"", 0, 0, 0, 0),
        (code.section, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, encode(main), 8, 0, 0, 0),
        (".rel" + code.section, SHT_REL, SHF_INFO_LINK, bytes(rels), 8, SYMTAB, XDP, 16),
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, encode(text_insns), 8, 0, 0, 0),
        ("maps", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, maps, 4, 0, 0, 0),
        ("license", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, b"GPL\0", 1, 0, 0, 0),
        (".symtab", SHT_SYMTAB, 0, b"".join(syms), 8, STRTAB, n_local, 24),
        (".strtab", SHT_STRTAB, 0, bytes(strtab.data), 1, 0, 0, 0),
        (".shstrtab", SHT_STRTAB, 0, b"", 1, 0, 0, 0),
    ]
    names = [shstr.add(s[0]) for s in sections]
    sections[SHSTR] = sections[SHSTR][:3] + (bytes(shstr.data),) + sections[SHSTR][4:]
    out = bytearray(64)
    offsets = [0]
    for s in sections[1:]:
        out += b"\0" * (-len(out) % max(s[4], 1))
        offsets.append(len(out))
        out += s[3]
    out += b"\0" * (-len(out) % 8)
    shoff = len(out)
    for (name, typ, flags, data, align, link, info, entsize), off, nm in zip(sections, offsets, names):
        out += struct.pack("<IIQQQQIIQQ", nm, typ, flags, 0, off, len(data), link, info, align, entsize)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    out[:64] = ident + struct.pack("<HHIQQQIHHHHHH", ET_REL, EM_BPF, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                                   len(sections), SHSTR)
    return bytes(out)


def _insn_at_slot(insns, slot: int) -> int:
    s = 0
    for k, i in enumerate(insns):
        if s == slot:
            return k
        s += i.slots
    raise ValueError(f"no instruction starts at slot {slot}")
