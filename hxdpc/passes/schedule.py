"""Pass 5b: list scheduling of each basic block into rows of N lanes, and the Image.

Blocks are laid out in program order, each in its own rows; the branch/exit of a block
is in its last row.  An op is placed in the first row where its DDG edges allow it,
on a lane that per-lane forwarding allows (a value made in the previous row is read on
the lane that made it; across block boundaries the previous row is the last row of every
predecessor), with at most one helper call per row and ``lddw`` on two adjacent lanes.
Critical-path height orders the candidates.  Branch offsets are re-targeted to rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from isa.errors import InputError
from hxdpc.analysis.absval import block_live_in, per_op_values
from hxdpc.analysis.cfg import CFG
from hxdpc.analysis.ddg import build_ddg, dep, heights
from hxdpc.analysis.ir import BoundsMarker, Op, effects, ends_block, is_control
from isa.image import BoundsCheck, Image
from isa.insn import Insn, make
from isa.opcodes import Kind
from isa.semantics import sext

CONT = "cont"   # second lane of a lddw


@dataclass
class Schedule:
    lanes: int
    rows: list[list] = field(default_factory=list)        # Op, CONT or None per lane
    block_rows: list[tuple[int, int]] = field(default_factory=list)   # [start, end) per block
    markers: list[tuple[int, BoundsMarker]] = field(default_factory=list)
    op_place: dict[int, tuple[int, int]] = field(default_factory=dict)  # op id -> (row, lane)
    # for people (hxdpc/schedview.py); the schedule does not depend on these records:
    forced_lane: set[int] = field(default_factory=set)   # op ids whose lane per-lane forwarding chose
    hoisted: dict[int, int] = field(default_factory=dict)  # op id -> block whose branch it moved above


def _row_writes(row: list) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for lane, o in enumerate(row):
        if isinstance(o, Op) and not is_control(o):
            for r in effects(o).writes:
                out.setdefault(r, set()).add(lane)
    return out


def chains(cfg: CFG, code_motion: bool = True) -> list[list[int]]:
    """Scheduling units: runs of blocks where each next block is reached only by falling
    through from the previous one (so its ops may move up into the previous block's rows,
    and its branch may share a row with the previous branch: parallel branching)."""
    units: list[list[int]] = []
    for b in range(len(cfg.blocks)):
        preds = cfg.preds(b)
        prev = units[-1][-1] if units else None
        if (code_motion and prev is not None and preds == [prev] and prev == b - 1
                and cfg.graph.edges[prev, b]["kind"] == "fall" and cfg.blocks[prev].term is not None):
            units[-1].append(b)
        else:
            units.append([b])
    return units


def schedule(cfg: CFG, lanes: int = 4, code_motion: bool = True) -> Schedule:
    sch = Schedule(lanes)
    vals = per_op_values(cfg)
    live_in = block_live_in(cfg)
    exit_row: dict[tuple[int, int], int] = {}    # (block, successor) -> row control leaves from
    start_block = {blk.ops[0].id: b for b, blk in enumerate(cfg.blocks) if blk.ops}
    sch.block_rows = [(0, 0)] * len(cfg.blocks)
    for unit in chains(cfg, code_motion):
        head = unit[0]
        incoming: Optional[dict[int, set[int]]] = {}
        for p in cfg.preds(head):
            row = exit_row.get((p, head))
            if row is None:
                incoming = None
                break
            for r, ls in _row_writes(sch.rows[row]).items():
                incoming.setdefault(r, set()).update(ls)
        ops = [o for b in unit for o in cfg.blocks[b].ops]
        spec_ok = {}
        for b in unit[:-1]:
            t = cfg.blocks[b].term
            spec_ok[t.id] = live_in[start_block[t.target]]
        start = len(sch.rows)
        _schedule_unit(ops, vals, sch, incoming, spec_ok)
        end = len(sch.rows)
        _record_hoisted(cfg, unit, sch)
        for b in unit:
            sch.block_rows[b] = (start, end)
            t = cfg.blocks[b].term
            for succ in cfg.succs(b):
                if succ in unit:
                    continue
                if t is not None and t.id in sch.op_place and (t.target is not None and
                                                               start_block.get(t.target) == succ
                                                               or b != unit[-1]):
                    exit_row[(b, succ)] = sch.op_place[t.id][0]
                else:
                    exit_row[(b, succ)] = end - 1
    return sch


def _record_hoisted(cfg: CFG, unit: list[int], sch: Schedule) -> None:
    """Code motion, as people read it: an op of a later block of the unit placed in or above
    the row of an earlier block's branch runs before that branch decides (the first such
    block is recorded). A branch sharing the earlier branch's row is parallel branching, not
    hoisting: lane priority keeps the program's order."""
    for k, b in enumerate(unit[1:], 1):
        for o in cfg.blocks[b].ops:
            if o.id not in sch.op_place or ends_block(o):
                continue
            row = sch.op_place[o.id][0]
            for j in unit[:k]:
                t = cfg.blocks[j].term
                if t is not None and t.id in sch.op_place and sch.op_place[t.id][0] >= row:
                    sch.hoisted[o.id] = j
                    break


def _schedule_unit(ops: list[Op], vals, sch: Schedule, incoming, spec_ok: dict) -> None:
    """List-schedule one unit with four candidate orders (ops bound to a lane by forwarding
    first or not; control ops first or not; then critical-path priority) and keep the best:
    greedy binding sometimes spends a slot a longer chain needed (the MAC swaps of XDP_TX),
    and a datapath op can push a branch of a parallel-branching row to the next row."""
    if not ops:
        return
    g = build_ddg(ops, vals, spec_ok)
    h = heights(g)
    best = None
    for bound_first, ctrl_first in ((True, False), (False, False), (True, True), (False, True)):
        got = _list_schedule(ops, g, h, sch.lanes, incoming, bound_first, ctrl_first)
        # fewer rows first, then control ops (branches, exits, calls) earlier: a path that
        # leaves the unit by an early branch does not run the unit's later rows
        cost = (len(got[0]), sum(r for n, (r, _) in got[1].items() if is_control(ops[n])))
        if best is None or cost < best[0]:
            best = (cost, got)
    rows, place, bound = best[1]
    base = len(sch.rows)
    for n, (r, lane) in place.items():
        if ops[n].marker is None:
            sch.op_place[ops[n].id] = (base + r, lane)
            if n in bound:
                sch.forced_lane.add(ops[n].id)
    for n in sorted((n for n in place if ops[n].marker is not None), key=lambda n: (place[n][0], n)):
        sch.markers.append((base + place[n][0], ops[n].marker))
    sch.rows.extend(rows)


def _list_schedule(ops: list[Op], g, h, lanes: int, incoming, bound_first: bool, ctrl_first: bool = False):
    """(rows, place, bound) of one unit: place maps op index -> (row, lane), -1 for markers;
    bound holds the op indexes whose lane forwarding forced."""
    place: dict[int, tuple[int, int]] = {}
    bound: set[int] = set()
    order = sorted(range(len(ops)), key=lambda n: (-h[n], n))
    rank = {n: i for i, n in enumerate(order)}
    term = len(ops) - 1 if ends_block(ops[-1]) else None
    rows: list[list] = []
    r = 0
    while len(place) < len(ops):
        if r >= len(rows):
            rows.append([None] * lanes)
        row = rows[r]
        prev_lanes = _lanes_written(rows[r - 1]) if r > 0 else set()
        progress = True
        while progress:
            progress = False
            fits = []
            for n in order:
                if n in place or (n == term and len(place) < len(ops) - 1):
                    continue
                got = _fit(n, ops, g, place, row, r, incoming, lanes, prev_lanes)
                if got is not None:
                    fits.append((not got[1], n, got[0]))
            if not fits:
                break
            # ops bound to a lane by forwarding go first, then the rest by priority
            fits.sort(key=lambda x: (x[0] if bound_first else False,
                                     not is_control(ops[x[1]]) if ctrl_first else False, rank[x[1]]))
            unbound, n, lane = fits[0]
            o = ops[n]
            if not unbound:
                bound.add(n)
            if o.marker is not None:
                place[n] = (r, -1)
            else:
                place[n] = (r, lane)
                row[lane] = o
                if o.kind == Kind.LDDW:
                    row[lane + 1] = CONT
            progress = True
        r += 1
        if r > 4 * len(ops) + 8:
            raise InputError(f"op {ops[0].orig}", "internal compiler error: the scheduler made no progress")
    last = max(p[0] for p in place.values()) + 1
    return rows[:last], place, bound


def _lanes_written(row: list) -> set[int]:
    return {lane for lane, o in enumerate(row) if isinstance(o, Op) and not is_control(o) and effects(o).writes}


def _fit(n: int, ops: list[Op], g, place, row: list, r: int, incoming, lanes: int, prev_lanes):
    """(lane, bound) op n can take in row r (bound: forced by forwarding), or None: the
    driver of the three rules below (dependences and hazards, forwarding, lane choice)."""
    if not _deps_met(n, g, place, r):
        return None
    o = ops[n]
    if o.marker is not None:
        return -1, True
    ok, need = _forwarding_lanes(n, ops, g, place, r, incoming)
    if not ok or _row_hazard(o, row):
        return None
    lane = _choose_lane(need, _min_lane(o, row), 2 if o.kind == Kind.LDDW else 1, row, lanes, prev_lanes)
    return None if lane is None else (lane, need is not None)


def _deps_met(n: int, g, place, r: int) -> bool:
    """Every predecessor of op n is placed, in an earlier row when its latency asks for one."""
    for p in g.predecessors(n):
        if p not in place or dep(g, p, n).latency and place[p][0] >= r:
            return False
    return True


def _forwarding_lanes(n: int, ops: list[Op], g, place, r: int, incoming) -> tuple[bool, Optional[set[int]]]:
    """(possible, lanes) per-lane forwarding allows op n in row r: lanes None = any.  A value a
    datapath lane wrote in the row just before is read on that lane; in a unit's first row the
    previous row is the last row of every predecessor block (`incoming`: register -> lanes
    that wrote it there; None when a predecessor's exit row is not known yet)."""
    need: Optional[set[int]] = None
    for p in g.predecessors(n):
        pr, pl = place[p]
        if dep(g, p, n).forward and pr == r - 1 and pl >= 0:
            need = {pl} if need is None else need & {pl}
    o = ops[n]
    if r == 0 and not is_control(o):
        reads = effects(o).reads - {10}
        if incoming is None and reads:
            return False, None
        for reg in reads if incoming else ():
            if reg in incoming and not any(reg in effects(ops[p]).writes for p in range(n)):
                ls = incoming[reg]
                if len(ls) > 1:
                    return False, None
                need = set(ls) if need is None else need & ls
    return True, need


def _row_hazard(o: Op, row: list) -> bool:
    """Structural hazards of the row: one helper call per row, two lanes never write one register."""
    e = effects(o)
    if e.call and any(isinstance(x, Op) and effects(x).call for x in row):
        return True
    return any(isinstance(x, Op) and effects(x).writes & e.writes for x in row)


def _min_lane(o: Op, row: list) -> int:
    """Lane order = program order of the row's control ops (calls run only if no lower
    lane branched away): a branch or exit goes above every control op already in the row."""
    if o.kind not in (Kind.JA, Kind.JCOND, Kind.EXIT, Kind.PEXIT):
        return 0
    return max((lane + 1 for lane, x in enumerate(row) if isinstance(x, Op) and is_control(x)), default=0)


def _choose_lane(need: Optional[set[int]], min_lane: int, width: int, row: list, lanes: int,
                 prev_lanes: set[int]) -> Optional[int]:
    """Lane strategy: a lane forwarding binds the op to, else the first free lane the previous
    row did not write (its values stay readable there), then the others."""
    if need is not None:
        cands = sorted(need)
    else:
        cands = [lane for lane in range(lanes) if lane not in prev_lanes] + sorted(prev_lanes & set(range(lanes)))
    for lane in cands:
        if lane >= min_lane and lane + width <= lanes and all(row[lane + k] is None for k in range(width)):
            return lane
    return None


def to_image(sch: Schedule, cfg: CFG, maps=None, name: str = "") -> Image:
    """Rows of Insns with branch offsets counted in rows, and the bounds checks."""
    start_of = {}
    for b, block in enumerate(cfg.blocks):
        if block.ops:
            start_of[block.ops[0].id] = sch.block_rows[b][0]
    out = []
    for r, row in enumerate(sch.rows):
        lanes: list[Optional[Insn]] = [None] * sch.lanes
        for lane, o in enumerate(row):
            if o is None:
                continue
            if o == CONT:
                prev = row[lane - 1]
                hi = (prev.insn.imm >> 32) & 0xFFFFFFFF
                lanes[lane] = make("nop", imm=sext(hi, 32))     # lddw's second word
                continue
            insn = o.insn
            if o.kind in (Kind.JA, Kind.JCOND):
                rel = start_of[o.target] - (r + 1)
                if not -0x8000 <= rel < 0x8000:
                    raise InputError(name, f"branch of {rel} rows does not fit")
                insn = make("ja", off=rel) if o.kind == Kind.JA else insn.with_(off=rel)
            elif o.kind == Kind.LDDW:
                insn = insn.with_(imm=insn.imm & 0xFFFFFFFFFFFFFFFF)
            lanes[lane] = insn
        out.append(tuple(lanes))
    bounds = [BoundsCheck(row, m.length, m.action) for row, m in sch.markers]
    img = Image(rows=out, lanes=sch.lanes, maps=list(maps or []), bounds=bounds, name=name)
    return img
