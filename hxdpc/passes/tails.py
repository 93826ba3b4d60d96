"""Exit tails: duplicate small shared exit blocks into the jumps to them, and drop the
register copies this exposes.

clang gives a function one return block (``r0 = r6; exit``) and sends every return to it
with a ``goto`` after ``r6 = value``.  On Sephirot the goto, the move and the exit cost
rows in a row of their own (and the block's join defeats per-lane forwarding).  A ``goto``
to a block of at most ``MAX_TAIL`` pure ops ending in ``exit`` is replaced by a copy of that
block (same instructions: the path executes exactly what it did); then ``rY = rX`` where the
latest write of rX or rY on the straight-line code before it is ``rX = rY`` is a no-op
(both registers already hold the value) and is removed (``copy_forward``).
"""
from __future__ import annotations

from hxdpc.passes.ir import PURE, Func, Op, fresh_id
from isa.opcodes import Kind

MAX_TAIL = 2          # pure ops before the exit
OP_MOV64_X = 0xBF


def _tail(func: Func, index: dict, tid: int):
    """The ops of the exit block starting at op `tid`, or None if it is not a small one."""
    n = index[tid]
    out = []
    for o in func.ops[n:n + MAX_TAIL + 1]:
        if o.kind == Kind.EXIT:
            return out + [o]
        if o.kind not in PURE or o.marker is not None:
            return None
        out.append(o)
    return None


def duplicate_exit_tails(func: Func) -> tuple[Func, int]:
    """Replace each ``goto`` to a small exit block by a copy of the block."""
    index = func.index()
    ops, n = [], 0
    for o in func.ops:
        tail = _tail(func, index, o.target) if o.kind == Kind.JA else None
        if tail is None:
            ops.append(o)
            continue
        n += 1
        for k, t in enumerate(tail):     # the first copy keeps the goto's id (jumps to it)
            ops.append(Op(id=o.id if k == 0 else fresh_id(), insn=t.insn, orig=t.orig))
    return Func(ops, func.name, func.notes), n


def copy_forward(func: Func) -> tuple[Func, int]:
    """Remove ``rY = rX`` (64-bit) when the code just before it did ``rX = rY`` and wrote
    neither register since (only straight-line code: no jump lands in between)."""
    from hxdpc.passes.ir import effects, remove_ops
    targets = {o.target for o in func.ops if o.target is not None}
    dead = set()
    for i, o in enumerate(func.ops):
        if o.insn is None or o.insn.opcode != OP_MOV64_X or o.insn.dst == o.insn.src:
            continue
        y, x = o.insn.dst, o.insn.src
        j = i
        while j > 0 and func.ops[j].id not in targets:
            j -= 1
            p = func.ops[j]
            if p.kind in (Kind.JA, Kind.EXIT, Kind.PEXIT):
                break
            w = effects(p).writes
            if x in w or y in w:
                if p.insn.opcode == OP_MOV64_X and p.insn.dst == x and p.insn.src == y and p.id not in dead:
                    dead.add(o.id)
                break
    return remove_ops(func, dead), len(dead)
