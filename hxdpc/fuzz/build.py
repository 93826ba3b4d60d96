"""Code with symbolic labels, resolved to `isa.insn.Insn`s once the layout is known.

The generator emits items (instructions, labels, jumps to labels, map and function
references, local calls) so that the minimiser can delete any instruction and the
jump offsets are recomputed, never left dangling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from isa.insn import Insn
from isa.opcodes import BY_KEY, Kind


@dataclass(frozen=True)
class Label:
    name: str


@dataclass(frozen=True)
class Jump:
    """A JA/JCOND instruction whose offset goes to `target` (a Label name in the same code)."""
    insn: Insn
    target: str


@dataclass(frozen=True)
class MapRef:
    """`rDST = map ll`: lddw src 1 with an R_BPF_64_64 relocation against the map symbol."""
    dst: int
    map_name: str


@dataclass(frozen=True)
class FuncRef:
    """`rDST = func ll`: lddw src 4 (a bpf_loop callback), relocated against .text."""
    dst: int
    func: str


@dataclass(frozen=True)
class CallLocal:
    """A BPF-to-BPF call into the subprogram `func` in .text (R_BPF_64_32)."""
    func: str


Item = Union[Insn, Label, Jump, MapRef, FuncRef, CallLocal]

LDDW = BY_KEY["lddw"]
LDDW_MAP = BY_KEY["lddw_src1"]
LDDW_FUNC = BY_KEY["lddw_src4"]
CALL_LOCAL = BY_KEY["call_local"]


def item_slots(item: Item) -> int:
    if isinstance(item, Label):
        return 0
    if isinstance(item, (MapRef, FuncRef)):
        return 2
    if isinstance(item, Jump):
        return item.insn.slots
    if isinstance(item, CallLocal):
        return 1
    return item.slots


def item_insn(item: Item) -> Insn:
    """The instruction an item stands for (before resolution: offsets 0)."""
    if isinstance(item, MapRef):
        return Insn(LDDW_MAP.opcode, item.dst, LDDW_MAP.variant, 0, 0)
    if isinstance(item, FuncRef):
        return Insn(LDDW_FUNC.opcode, item.dst, LDDW_FUNC.variant, 0, 0)
    if isinstance(item, CallLocal):
        return Insn(CALL_LOCAL.opcode, 0, CALL_LOCAL.variant, 0, 0)
    if isinstance(item, Jump):
        return item.insn
    return item


@dataclass
class Reloc:
    """A relocation the object file needs: at slot `slot` of its code section."""
    slot: int
    kind: str      # "map" (lddw -> map symbol), "func" (lddw -> .text offset), "call" (call -> .text)
    target: str    # map name or function name


@dataclass
class Resolved:
    insns: list[Insn] = field(default_factory=list)
    relocs: list[Reloc] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)   # label -> instruction index


def resolve(items: list[Item]) -> Resolved:
    """Instructions of one code section: label offsets filled in, relocations listed."""
    slot_of: dict[str, int] = {}
    index_of: dict[str, int] = {}
    slot = n = 0
    for it in items:
        if isinstance(it, Label):
            slot_of[it.name] = slot
            index_of[it.name] = n
        else:
            slot += item_slots(it)
            n += 1
    out = Resolved(labels=index_of)
    slot = 0
    for it in items:
        if isinstance(it, Label):
            continue
        insn = item_insn(it)
        if isinstance(it, Jump):
            rel = slot_of[it.target] - slot - 1
            spec = insn.spec
            insn = insn.with_(imm=rel) if spec.kind == Kind.JA and spec.is_jmp32 else insn.with_(off=rel)
        elif isinstance(it, MapRef):
            out.relocs.append(Reloc(slot, "map", it.map_name))
        elif isinstance(it, FuncRef):
            out.relocs.append(Reloc(slot, "func", it.func))
        elif isinstance(it, CallLocal):
            out.relocs.append(Reloc(slot, "call", it.func))
        out.insns.append(insn)
        slot += insn.slots
    return out
