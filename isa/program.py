"""A loaded program: linked instructions, the maps it uses, its functions.

Loaders (ELF, objdump text, assembly) produce a ``Program``; every executor and the
compiler consume one.  Conventions after loading (the kernel's own "fd_array" forms):
- a map reference is ``lddw rX, map_by_idx`` (src 5) with ``imm`` = index into ``maps``;
- a map value reference is ``lddw`` src 6 with imm = index | (offset << 32)
  (global data ``.data``/``.rodata``/``.bss`` are one-entry array maps);
- BPF-to-BPF calls are ``call_local`` with ``imm`` relative in slots; subprograms are
  appended after the entry function, as libbpf does; ``functions`` lists where each starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from isa.insn import Insn, slot_offsets
from isa.uapi import MAP_TYPES



@dataclass
class MapDef:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    initial: Optional[bytes] = None   # contents of global-data maps
    inner: Optional["MapDef"] = None  # map-in-map template
    section: str = ""                 # "maps", ".maps", ".data", ...
    libbpf_name: str = ""             # libbpf's name (global data: object-name prefix, e.g. "xdp_prog.bss")
    init_slots: dict = field(default_factory=dict)  # static `.values = {[i] = &x}`: index -> program/map name

    @property
    def type_name(self) -> str:
        return MAP_TYPES.get(self.type, f"type{self.type}")


@dataclass
class Function:
    name: str
    start: int          # index into Program.insns
    section: str = ""


@dataclass
class Program:
    name: str
    insns: list[Insn]
    maps: list[MapDef] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    section: str = ""
    license: str = ""
    path: str = ""

    @property
    def slot_count(self) -> int:
        return sum(i.slots for i in self.insns)

    def slots(self) -> list[int]:
        return slot_offsets(self.insns)

    def map_index(self, name: str) -> int:
        for i, m in enumerate(self.maps):
            if m.name == name:
                return i
        raise KeyError(name)
