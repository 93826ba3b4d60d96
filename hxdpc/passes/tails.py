"""Exit tails: duplicate small shared exit blocks into the jumps to them, and drop the
register copies this exposes.

clang gives a function one return block (``r0 = r6; exit``) and sends every return to it
with a ``goto`` after ``r6 = value``.  On Sephirot the goto, the move and the exit cost
rows in a row of their own (and the block's join defeats per-lane forwarding).  A ``goto``
to a block of at most ``MAX_TAIL`` pure ops ending in ``exit`` is replaced by a copy of that
block (same instructions: the path executes exactly what it did), and so is the fall
from a block into such a block that is also a jump target; then ``rY = rX`` where the
latest write of rX or rY on the straight-line code before it is ``rX = rY`` is a no-op
(both registers already hold the value) and is removed (``copy_forward``).
"""
from __future__ import annotations

from hxdpc.analysis.ir import PURE, Func, Op, effects, falls_through, fresh_id, remove_ops
from isa.opcodes import Kind

MAX_TAIL = 2          # pure ops before the exit


def _copy(o: Op):
    """(dst, src) of ``rY = rX`` (64-bit register move: rY then holds exactly rX), else None.
    The sign-extending moves share mov64's opcode byte but change the value."""
    s = o.spec
    if s is None or s.kind != Kind.MOV or not s.reg_src or s.width != 64:
        return None
    return o.insn.dst, o.insn.src


def _tail(func: Func, index: dict, tid: int):
    """The ops of the exit block starting at op `tid`, or None if it is not a small one
    (at most MAX_TAIL pure ops and one helper call before a plain ``exit``)."""
    n = index[tid]
    out, calls = [], 0
    for o in func.ops[n:n + MAX_TAIL + 2]:
        if o.kind == Kind.EXIT:
            return out + [o]
        if o.kind in (Kind.CALL, Kind.CALL_KFUNC) and calls == 0:     # a call by number
            calls += 1
        elif o.kind not in PURE or o.marker is not None:
            return None
        out.append(o)
    return None


def duplicate_exit_tails(func: Func) -> tuple[Func, int]:
    """Replace each ``goto`` to a small exit block by a copy of the block, and give a block
    that falls into a small exit block that other blocks jump to its own copy (so that it
    joins the scheduling chain of its predecessor: a diamond before a helper call and
    exit costs no join row)."""
    index = func.index()
    targets = {o.target for o in func.ops if o.target is not None}
    ops, n = [], 0
    for i, o in enumerate(func.ops):
        nxt = func.ops[i + 1] if i + 1 < len(func.ops) else None
        if o.kind == Kind.JA:
            tail = _tail(func, index, o.target)
            if tail is not None:
                n += 1
                for k, t in enumerate(tail):     # the first copy keeps the goto's id
                    ops.append(Op(id=o.id if k == 0 else fresh_id(), insn=t.insn, orig=t.orig))
                continue
        ops.append(o)
        if nxt is not None and nxt.id in targets and falls_through(o) and o.kind not in (Kind.JCOND,) \
                and o.insn is not None:
            tail = _tail(func, index, nxt.id)
            if tail is not None:
                n += 1
                ops.extend(Op(id=fresh_id(), insn=t.insn, orig=t.orig) for t in tail)
    return Func(ops, func.name, func.notes), n


def copy_forward(func: Func) -> tuple[Func, int]:
    """Remove ``rY = rX`` (64-bit) when the code just before it did ``rX = rY`` and wrote
    neither register since (only straight-line code: no jump lands in between)."""
    targets = {o.target for o in func.ops if o.target is not None}
    dead = set()
    for i, o in enumerate(func.ops):
        copy = _copy(o)
        if copy is None or copy[0] == copy[1]:
            continue
        y, x = copy
        j = i
        while j > 0 and func.ops[j].id not in targets:
            j -= 1
            p = func.ops[j]
            if p.kind in (Kind.JA, Kind.EXIT, Kind.PEXIT):
                break
            w = effects(p).writes
            if x in w or y in w:
                if _copy(p) == (x, y) and p.id not in dead:
                    dead.add(o.id)
                break
    return remove_ops(func, dead), len(dead)
