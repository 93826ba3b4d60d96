"""Pass 1: basic blocks and the control-flow graph (networkx), with dominance.

Blocks start at branch targets and after branches/exits; the graph's nodes are block
indices in layout order, edges carry ``kind`` = "taken" or "fall".  Control-equivalent
blocks (A dominates B and B post-dominates A) are executed together or not at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import networkx as nx

from hxdpc.analysis.ir import Func, Op, ends_block, falls_through

EXIT_NODE = -1


@dataclass
class Block:
    ops: list[Op]
    label: int = 0          # id of the first op at construction (stable name)

    @property
    def term(self) -> Optional[Op]:
        return self.ops[-1] if self.ops and ends_block(self.ops[-1]) else None


@dataclass
class CFG:
    blocks: list[Block]
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    def succs(self, b: int) -> list[int]:
        return list(self.graph.successors(b))

    def preds(self, b: int) -> list[int]:
        return list(self.graph.predecessors(b))

    def ops(self) -> list[Op]:
        return [o for b in self.blocks for o in b.ops]


def build_cfg(func: Func) -> CFG:
    """Split a Func into blocks; every jump target starts a block."""
    targets = {o.target for o in func.ops if o.target is not None and o.kind is not None
               and ends_block(o)}
    blocks: list[Block] = []
    cur: list[Op] = []
    for o in func.ops:
        if cur and o.id in targets:
            blocks.append(Block(cur))
            cur = []
        cur.append(o)
        if o.insn is not None and ends_block(o):
            blocks.append(Block(cur))
            cur = []
    if cur:
        blocks.append(Block(cur))
    for b in blocks:
        b.label = b.ops[0].id
    return _graph(blocks)


def _graph(blocks: list[Block]) -> CFG:
    g = nx.DiGraph()
    first = {}
    for n, b in enumerate(blocks):
        g.add_node(n)
        for o in b.ops:
            first.setdefault(o.id, n)
    start_of = {b.ops[0].id: n for n, b in enumerate(blocks) if b.ops}
    for n, b in enumerate(blocks):
        t = b.term
        if t is not None and t.target is not None:
            g.add_edge(n, start_of[t.target], kind="taken")
        if (t is None or falls_through(t)) and n + 1 < len(blocks):
            if g.has_edge(n, n + 1):
                g.edges[n, n + 1]["kind"] = "both"
            else:
                g.add_edge(n, n + 1, kind="fall")
    return CFG(blocks, g)


def reachable(cfg: CFG) -> set[int]:
    return set(nx.descendants(cfg.graph, 0)) | {0} if cfg.blocks else set()


def dominators(cfg: CFG) -> dict[int, int]:
    """Immediate dominators of the blocks reachable from the entry."""
    idom = dict(nx.immediate_dominators(cfg.graph, 0))
    idom.setdefault(0, 0)
    return idom


def post_dominators(cfg: CFG) -> dict[int, int]:
    """Immediate post-dominators (a virtual exit node EXIT_NODE joins every exit)."""
    r = cfg.graph.reverse(copy=True)
    r.add_node(EXIT_NODE)
    for n in cfg.graph.nodes:
        if cfg.graph.out_degree(n) == 0:
            r.add_edge(EXIT_NODE, n)
    idom = dict(nx.immediate_dominators(r, EXIT_NODE))
    idom.setdefault(EXIT_NODE, EXIT_NODE)
    return idom


def _dom_sets(idom: dict[int, int]) -> dict[int, set[int]]:
    out = {}
    for n in idom:
        s, x = {n}, n
        while x in idom and idom[x] != x:
            x = idom[x]
            s.add(x)
        out[n] = s
    return out


def control_equivalent(cfg: CFG) -> list[set[int]]:
    """Classes of blocks that execute together: A dom B and B pdom A (reachable blocks)."""
    dom = _dom_sets(dominators(cfg))
    pdom = _dom_sets(post_dominators(cfg))
    classes: list[set[int]] = []
    seen = set()
    for a in sorted(dom):
        if a in seen:
            continue
        cls = {a} | {b for b in dom if b != a and a in dom[b] and b in pdom.get(a, set())}
        cls |= {b for b in dom if b != a and b in dom[a] and a in pdom.get(b, set())}
        seen |= cls
        classes.append(cls)
    return classes
