"""Static view of an Image for Sephirot: each lane's operation, what it reads and writes,
and the checks that do not depend on data (schedule violations, malformed rows).

Both engines (core.py row by row, fast.py generated code) execute from this one analysis,
so they agree by construction on what is an error and when it is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from emulator.sephirot.stats import pack_slots
from isa.image import Image
from isa.insn import Insn, is_high_word, mem_access, reads, spec_or_none, target, writes
from isa.opcodes import CONTROL_KINDS, NREGS, TABLE, Kind, OpSpec


CONTROL = CONTROL_KINDS
LOADS = frozenset(s.kind for s in TABLE if s.access == "load")
STORES = frozenset(s.kind for s in TABLE if s.access == "store")
MEMORY = frozenset(s.kind for s in TABLE if s.access)
# calls the compiler must inline: executing one ends the run with a fault
UNSUPPORTED_CALLS = frozenset({Kind.CALL_LOCAL, Kind.CALL_KFUNC})


class ScheduleViolation(Exception):
    """The image breaks a rule the compiler must respect (strict mode raises this)."""


@dataclass(frozen=True)
class LaneOp:
    lane: int
    insn: Insn
    spec: OpSpec
    imm64: int                   # lddw: the 64-bit constant from its two words; else insn.imm
    reads: frozenset             # registers read
    writes: frozenset            # registers written
    addr_reg: Optional[int]      # address register of a load/store/atomic (read in ID for loads)
    pair_lane: Optional[int] = None   # lddw: the lane holding its second word
    target: Optional[int] = None      # branch: the row it goes to (the ISA table's `target`, in rows)

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def is_control(self) -> bool:
        return self.spec.control


@dataclass
class RowInfo:
    index: int
    data: list[LaneOp] = field(default_factory=list)      # datapath lanes (ALU, memory, lddw)
    control: list[LaneOp] = field(default_factory=list)   # control lanes, in priority order
    slots: int = 0               # non-empty slots (lddw second word included)
    lanes_used: tuple = ()       # lane numbers holding a word
    mem_ops: int = 0             # data-bus accesses
    loads: int = 0
    error: str = ""              # malformed row: executing it ends the run with this error
    violation: str = ""          # schedule violation inside the row
    bounds: list = field(default_factory=list)   # (length, action) checked before the row
    pack: int = 0                # stats.pack_slots(slots, lanes_used): the row's slot counters

    @property
    def empty(self) -> bool:
        return self.slots == 0

    @property
    def has_call(self) -> bool:
        return any(op.kind == Kind.CALL or op.kind == Kind.CALLX for op in self.control)


@dataclass
class Decoded:
    image: Image
    rows: list[RowInfo]
    lanes: int

    def edge_violation(self, a: int, b: int) -> str:
        """Why executing row `b` right after row `a` breaks per-lane forwarding ('' if fine)."""
        key = (a, b)
        v = self._edges.get(key)
        if v is None:
            v = _edge_violation(self.rows[a], self.rows[b])
            self._edges[key] = v
        return v

    def __post_init__(self):
        self._edges: dict = {}


def _reads_writes(ins: Insn) -> tuple[frozenset, frozenset, Optional[int]]:
    """Registers read and written, and the address register (the ISA table's facts)."""
    acc = mem_access(ins)
    return reads(ins), writes(ins), acc.base if acc is not None else None


def _bad_regs(ins: Insn, spec: OpSpec) -> str:
    if not (0 <= ins.dst < NREGS and 0 <= ins.src < NREGS):
        return f"invalid register (dst=r{ins.dst}, src=r{ins.src})"
    if spec.imm_reg and not 0 <= ins.imm < NREGS:
        return f"invalid register r{ins.imm} in a three-operand instruction"
    return ""


def decode_row(index: int, row, lanes: int) -> RowInfo:
    info = RowInfo(index)
    used = []
    taken_by_lddw = set()
    calls = 0
    writers: dict[int, int] = {}
    for lane, ins in enumerate(row):
        if ins is None:
            continue
        if lane in taken_by_lddw:
            used.append(lane)
            continue
        spec = spec_or_none(ins)
        used.append(lane)
        if spec is None:
            info.error = info.error or (f"lane {lane}: invalid instruction (opcode 0x{ins.opcode:02x}, "
                                        f"src={ins.src}, off={ins.off}, imm={ins.imm})")
            continue
        if spec.kind == Kind.NOP:
            continue
        bad = _bad_regs(ins, spec)
        if bad:
            info.error = info.error or f"lane {lane}: {bad}"
            continue
        imm64 = ins.imm
        pair = None
        if spec.kind == Kind.LDDW:
            nxt = row[lane + 1] if lane + 1 < len(row) else None
            lo = ins.imm & 0xFFFFFFFF
            if nxt is not None and is_high_word(nxt):
                imm64 = lo | ((nxt.imm & 0xFFFFFFFF) << 32)
                pair = lane + 1
                taken_by_lddw.add(lane + 1)
            elif ins.imm >> 32 or ins.imm < 0:
                imm64 = ins.imm & 0xFFFFFFFFFFFFFFFF      # in-memory form: full constant in one Insn
            else:
                imm64 = lo                                # artifact's one-word form: upper half 0
        r, w, a = _reads_writes(ins)
        op = LaneOp(lane, ins, spec, imm64, r, w, a, pair, target(ins, index) if spec.is_branch else None)
        if op.is_control:
            info.control.append(op)
        else:
            info.data.append(op)
        if spec.kind in (Kind.CALL, Kind.CALLX):
            calls += 1
        for reg in w:
            if reg in writers:
                info.violation = info.violation or (
                    f"row {index}: lanes {writers[reg]} and {lane} both write r{reg}")
            writers[reg] = lane
        if spec.access:
            info.mem_ops += 1
            if spec.access != "store":
                info.loads += 1
        if spec.kind == Kind.BOUNDS:
            info.bounds.append((ins.imm, ins.off))
    call_lane = next((op.lane for op in info.control if op.spec.kind in (Kind.CALL, Kind.CALLX)), None)
    if call_lane is not None:
        for op in info.control:
            if op.lane > call_lane and 0 in op.reads:
                info.violation = info.violation or (
                    f"row {index}: lane {op.lane} reads r0 of the helper call in lane {call_lane} "
                    f"of the same row (r0 is written at commit)")
    if calls > 1:
        info.violation = f"row {index}: {calls} helper calls in one row (one helper module)"
    info.slots = len(used)
    info.lanes_used = tuple(used)
    info.pack = pack_slots(info.slots, info.lanes_used)
    return info


def _edge_violation(a: RowInfo, b: RowInfo) -> str:
    """Per-lane forwarding: a datapath lane of `b` may read a register written by the
    datapath of the row just before only if the writer sits on the same lane."""
    written: dict[int, set] = {}
    for op in a.data:
        lanes = {op.lane} if op.pair_lane is None else {op.lane, op.pair_lane}
        for reg in op.writes:
            written.setdefault(reg, set()).update(lanes)
    if not written:
        return ""
    for op in b.data:
        for reg in sorted(op.reads):
            src_lanes = written.get(reg)
            if src_lanes and op.lane not in src_lanes and not (op.pair_lane in src_lanes):
                return (f"row {b.index} lane {op.lane} reads r{reg} written by row {a.index} lane "
                        f"{min(src_lanes)} just before (forwarding is per lane only)")
    return ""


def decode_image(image: Image) -> Decoded:
    lanes = max([image.lanes] + [len(r) for r in image.rows]) if image.rows else image.lanes
    rows = [decode_row(i, r, lanes) for i, r in enumerate(image.rows)]
    for bc in image.bounds:
        if 0 <= bc.row < len(rows):
            rows[bc.row].bounds.insert(0, (bc.length, bc.action))
    return Decoded(image, rows, lanes)
