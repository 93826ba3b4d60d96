"""The compiler's working form: instructions with symbolic branch targets, plus effects.

Passes work on ``Op``s instead of raw ``Insn``s so that inserting or deleting an
instruction never breaks a jump: a branch names the ``id`` of the op it goes to.  A
removed bounds check leaves a ``BoundsMarker`` op that takes no lane (it becomes an
``isa.image.BoundsCheck`` of the row it is scheduled in).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import count
from typing import Optional

from isa.errors import InputError
from isa.insn import Insn, branch_target, mem_access, reads, slot_offsets, spec_or_none, writes
from isa.insn import falls_through as insn_falls_through
from isa.opcodes import Kind, OpSpec
from isa.program import Program

_ids = count(1_000_000)


def fresh_id() -> int:
    """A new op id (lifted ops keep their instruction index as id)."""
    return next(_ids)


@dataclass(frozen=True)
class BoundsMarker:
    """A removed ``data + length > data_end`` check: the hardware ends the program with
    ``action`` when the packet is shorter than ``length`` (see docs/compiler.md)."""
    length: int
    action: int


@dataclass(frozen=True)
class Op:
    id: int
    insn: Optional[Insn]                 # None only for a bounds marker
    target: Optional[int] = None         # id of the op a branch goes to
    orig: Optional[int] = None           # instruction index in the input program
    marker: Optional[BoundsMarker] = None

    def with_(self, **kw) -> "Op":
        return replace(self, **kw)

    @property
    def spec(self) -> Optional[OpSpec]:
        if self.insn is None:
            return None
        return spec_or_none(self.insn)

    @property
    def kind(self) -> Optional[Kind]:
        s = self.spec
        return s.kind if s else None

    def __str__(self) -> str:
        if self.marker:
            return f"<bounds len {self.marker.length} action {self.marker.action}>"
        from hxdpc.passes.text import insn_text
        t = insn_text(self.insn)
        return t + (f" -> @{self.target}" if self.target is not None else "")


BRANCHES = (Kind.JA, Kind.JCOND)
ENDS = (Kind.EXIT, Kind.PEXIT)
CALLS = (Kind.CALL, Kind.CALLX, Kind.CALL_KFUNC)
LOADS = (Kind.LDX, Kind.LDXSX, Kind.LDX48)
STORES = (Kind.ST, Kind.STX, Kind.STX48)
PURE = (Kind.ALU, Kind.MOV, Kind.MOVSX, Kind.NEG, Kind.END, Kind.ALU3, Kind.LDDW)


def is_control(op: Op) -> bool:
    """Control lanes read their operands after the row's other lanes have written."""
    s = op.spec
    return s is not None and s.control


def ends_block(op: Op) -> bool:
    return op.kind in BRANCHES + ENDS


def falls_through(op: Op) -> bool:
    """Control may go on at the next op (a bounds marker always lets it)."""
    return op.insn is None or insn_falls_through(op.insn)


@dataclass(frozen=True)
class Effects:
    reads: frozenset[int]
    writes: frozenset[int]
    load: Optional[tuple[int, int, int]] = None    # (base reg, off, size)
    store: Optional[tuple[int, int, int]] = None
    call: bool = False


def effects(op: Op) -> Effects:
    """Registers an op reads and writes, and the memory it touches (the ISA table's facts)."""
    if op.marker is not None:
        return Effects(frozenset(), frozenset())
    i = op.insn
    acc = mem_access(i)
    where = (acc.base, acc.off, acc.size) if acc is not None else None
    return Effects(reads(i), writes(i), where if acc is not None and acc.load else None,
                   where if acc is not None and acc.store else None, op.kind in CALLS)


@dataclass
class Func:
    """A linear instruction list with symbolic targets (entry first)."""
    ops: list[Op]
    name: str = ""
    notes: dict = field(default_factory=dict)

    def index(self) -> dict[int, int]:
        return {o.id: n for n, o in enumerate(self.ops)}


def lift(program: Program, start: int = 0, end: Optional[int] = None, where: str = "") -> Func:
    """Ops of insns[start:end] with jump targets resolved to op ids (ids = insn index)."""
    insns = program.insns
    end = len(insns) if end is None else end
    slots = slot_offsets(insns)
    ops = []
    for n in range(start, end):
        insn = insns[n]
        spec = spec_or_none(insn)
        if spec is None:
            raise InputError(where or program.name, f"instruction {n}: invalid opcode 0x{insn.opcode:02x}")
        tgt = None
        if spec.kind in BRANCHES or spec.kind == Kind.CALL_LOCAL:
            tgt = branch_target(insns, n, slots)
            if tgt is None or tgt >= len(insns):
                raise InputError(where or program.name, f"instruction {n}: jump target out of range")
            if spec.kind in BRANCHES and not (start <= tgt < end):
                raise InputError(where or program.name, f"instruction {n}: jump leaves its function")
        ops.append(Op(id=n, insn=insn, target=tgt, orig=n))
    return Func(ops, program.name)


def remove_ops(func: Func, ids: set[int]) -> Func:
    """Delete ops; a jump to a deleted op goes to the next surviving op in layout."""
    if not ids:
        return func
    redirect: dict[int, int] = {}
    pending: list[int] = []
    kept: list[Op] = []
    for o in func.ops:
        if o.id in ids:
            pending.append(o.id)
            continue
        for p in pending:
            redirect[p] = o.id
        pending = []
        kept.append(o)
    if pending and (any(o.target in pending for o in kept) or (kept and falls_through(kept[-1])
                                                                and kept[-1].insn is not None)):
        raise InputError(func.name, "code falls off the end of the program")
    out = [o.with_(target=redirect.get(o.target, o.target)) if o.target is not None else o for o in kept]
    return Func(out, func.name, func.notes)
