"""The data-dependence graph of a basic block or chain (networkx DiGraph over op indices).

Each edge carries one ``Dep`` (attribute ``dep``, read with ``dep(g, p, c)``): the kinds of
dependence it stands for (``DepKind``: true, anti, output, memory, control, order), its
``latency`` in rows (1: the successor needs a later row; 0: the same row is allowed) and
``forward`` (a register value flows from a datapath lane to a datapath lane: if the
successor is in the very next row it must be on the producer's lane, per-lane forwarding).
The rules follow the row ABI in isa/image.py and docs/compiler.md:
- RAW: strict, except that a control op (branch, exit, call) may read in the row of
  its producer (control lanes read after the row's writes) unless the producer is a call;
- WAR: same row allowed (reads see the row's start), strict when the reader is control;
- WAW: strict (two lanes never write one register);
- memory: store then possibly-aliasing load/store strict, load then store same row allowed;
  a helper call is a barrier (strict) for every memory access and call, except that a
  load or store may share the row of a later call (stores commit before control lanes);
- a bounds marker: observable or faulting ops before it strictly earlier, those after it
  (and the block's branch/exit) in its row or later;
- the block's branch/exit: every other op in its row or earlier, except a pure op whose
  result the branch target does not need (it may sink into the fall-through rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import networkx as nx

from hxdpc.analysis.absval import may_alias
from hxdpc.analysis.ir import CALLS, LOADS, PURE, Op, effects, ends_block, is_control
from isa.opcodes import Kind


def _observable(o: Op, vals: dict) -> bool:
    """Ops a hardware bounds check must not be moved across: memory outside the stack and
    the context (may fault or be seen) and calls."""
    if o.insn is None:
        return False
    e = effects(o)
    if e.call or o.kind == Kind.CALL_LOCAL:
        return True
    if e.load and not e.store and e.load[0] != 10:
        s = vals.get(o.id)
        base = s[e.load[0]] if s is not None else None
        return not (base is not None and base[0] == "ctx")
    for acc in (e.load, e.store):
        if acc and acc[0] != 10:
            return True
    return False


class DepKind(str, Enum):
    TRUE = "true"          # read after write (RAW)
    ANTI = "anti"          # write after read (WAR)
    OUTPUT = "output"      # write after write (WAW)
    MEMORY = "memory"      # possibly aliasing accesses, helper calls as barriers
    CONTROL = "control"    # the unit's branches and exits, speculation past inner branches
    ORDER = "order"        # observable ops kept on their side of a hardware bounds check


@dataclass(frozen=True)
class Dep:
    """What one DDG edge asks of the schedule."""
    kinds: frozenset          # DepKind members this edge stands for
    latency: int              # rows between producer and successor: 0 (same row allowed) or 1
    forward: bool = False     # datapath value: in the very next row, only on the producer's lane

    def merge(self, other: "Dep") -> "Dep":
        return Dep(self.kinds | other.kinds, max(self.latency, other.latency), self.forward or other.forward)


def dep(g: nx.DiGraph, p: int, c: int) -> Dep:
    """The dependence of op c on op p."""
    return g.edges[p, c]["dep"]


def _edge(g: nx.DiGraph, p: int, c: int, kind: DepKind, strict: bool, fwd: bool = False) -> None:
    d = Dep(frozenset({kind}), 1 if strict else 0, fwd)
    if g.has_edge(p, c):
        d = g.edges[p, c]["dep"].merge(d)
    g.add_edge(p, c, dep=d)


def build_ddg(ops: list[Op], vals: dict, spec_ok: dict | None = None) -> nx.DiGraph:
    """DDG of a block, or of a chain of blocks (see schedule.chains): ``spec_ok`` maps the
    id of each inner branch to the registers live at its target; an op after that branch
    may rise above it only if it is pure and writes none of them (speculation is then
    invisible); later branches and exits may share its row on a lower-priority lane."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(ops)))
    last_write: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    eff = [effects(o) for o in ops]
    version = [0] * 11
    vers: list[tuple[int, ...]] = []
    for o, e in zip(ops, eff):
        vers.append(tuple(version))
        for r in e.writes:
            version[r] += 1
    same = (ops, vals, vers)
    bound = 0            # packet bytes a hardware bounds check earlier in the unit guarantees
    for c, o in enumerate(ops):
        e = eff[c]
        ctrl = is_control(o)
        if o.marker is not None:
            bound = max(bound, o.marker.length)
        elif e.call:
            bound = 0    # the helper may move the packet (adjust_head): older checks say nothing
        for r in e.reads:
            p = last_write.get(r)
            if p is not None:
                strict = not ctrl or ops[p].kind in CALLS
                # per-lane forwarding binds datapath to datapath only: control lanes read
                # after the row's writes, and a call's r0 is written at commit
                _edge(g, p, c, DepKind.TRUE, strict, fwd=not ctrl and not is_control(ops[p]))
        for r in e.writes:
            for p in readers.get(r, []):
                if p != c:
                    _edge(g, p, c, DepKind.ANTI, is_control(ops[p]))
            p = last_write.get(r)
            if p is not None:
                _edge(g, p, c, DepKind.OUTPUT, True)
        for r in e.reads:
            readers.setdefault(r, []).append(c)
        for r in e.writes:
            last_write[r] = c
            readers[r] = []
        # memory and calls
        cm = e.load or e.store or e.call
        for p in range(c) if cm else ():
            q = eff[p]
            if not (q.load or q.store or q.call):
                continue
            if q.call or e.call:
                # a load or store may share the row of a later call: loads read the row's
                # start, stores commit before the control lanes run (the call sees them)
                _edge(g, p, c, DepKind.MEMORY, not (e.call and not q.call))
                continue
            if q.store and e.load and _alias(same, p, q.store, c, e.load):
                _edge(g, p, c, DepKind.MEMORY, True)
            if q.store and e.store and _alias(same, p, q.store, c, e.store):
                _edge(g, p, c, DepKind.MEMORY, True)
            if q.load and e.store and _alias(same, p, q.load, c, e.store):
                _edge(g, p, c, DepKind.MEMORY, False)
        # bounds markers
        if o.marker is not None:
            for p in range(c):
                if _observable(ops[p], vals):
                    _edge(g, p, c, DepKind.ORDER, True)
                elif ops[p].marker is not None:
                    _edge(g, p, c, DepKind.ORDER, False)
        elif _observable(o, vals) or ends_block(o):
            for p in range(c):
                if ops[p].marker is not None:
                    _edge(g, p, c, DepKind.ORDER, False)
        if ends_block(o):
            inner = spec_ok is not None and o.id in spec_ok and c < len(ops) - 1
            for p in range(c):
                # a pure op may sink below an inner branch of the chain (into the rows of
                # the fall-through blocks) when the branch target does not need its result
                if inner and ops[p].kind in PURE and ops[p].marker is None and \
                        not (eff[p].writes & spec_ok[o.id]) and not (eff[p].writes & e.reads):
                    continue
                _edge(g, p, c, DepKind.CONTROL, False)
        for p in range(c):
            bid = ops[p].id
            if spec_ok and bid in spec_ok and ops[p].insn is not None and ends_block(ops[p]):
                if ends_block(o):
                    _edge(g, p, c, DepKind.CONTROL, False)
                elif not ((o.kind in PURE and o.marker is None or _safe_load(o, e, vals, bound))
                          and not (e.writes & spec_ok[bid])):
                    _edge(g, p, c, DepKind.CONTROL, True)
    return g


def _safe_load(o: Op, e, vals: dict, bound: int) -> bool:
    """A load that cannot fault and has no effect but its register, so it may run
    speculatively: from the context (xdp_md), the stack, or packet bytes below a hardware
    bounds check of this unit (no helper call since; the check's row comes first, DDG
    marker edge).  Executed on a path that did not ask for it, it only writes a dead register."""
    if o.kind not in LOADS or e.store or o.id not in vals:
        return False
    base = vals[o.id][e.load[0]]
    if base is None or base[1] is None:
        return False
    lo = base[1] + e.load[1]
    hi = lo + e.load[2]
    if base[0] == "ctx":
        return 0 <= lo and hi <= 24
    if base[0] == "fp":
        return -512 <= lo and hi <= 0
    if base[0] == "data":
        return 0 <= lo and hi <= bound
    return False


def _alias(same, p, pa, c, ca) -> bool:
    """May two accesses overlap?  The same base register, unchanged in between, compares
    offsets; otherwise the abstract values of the bases decide."""
    ops, vals, vers = same
    if pa[0] == ca[0] and vers[p][pa[0]] == vers[c][ca[0]]:
        return pa[1] < ca[1] + ca[2] and ca[1] < pa[1] + pa[2]
    sp, sc = vals.get(ops[p].id), vals.get(ops[c].id)
    if sp is None or sc is None:
        return True
    return may_alias(sp[pa[0]], pa[1], pa[2], sc[ca[0]], ca[1], ca[2])


def heights(g: nx.DiGraph) -> dict[int, int]:
    """Longest path (in rows) from each op to the end of its block."""
    h = {}
    for n in reversed(list(nx.topological_sort(g))):
        h[n] = max([h[s] + dep(g, n, s).latency for s in g.successors(n)], default=0)
    return h
