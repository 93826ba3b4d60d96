"""Pass 3b: drop zero-initialisation the core's self-reset already provides.

The core starts every program (also one entered by a tail call) with r0, r2-r9 and the
512-byte stack zero.  An op is dropped when it writes zero where zero already is on
every path to it: ``mov rX, 0`` when rX is the constant 0 (abstract values), a store of
zero (immediate, or a register known to be 0) to stack bytes that are known zero on every
path.  Known-zero stack bytes: all at entry; a store sets or clears the bytes it writes;
a store through an unknown pointer, an atomic on the stack and a helper call that may
receive a stack pointer clear everything.
"""
from __future__ import annotations

from hxdpc.analysis.absval import POINTERS, State, Val, entry_state, forward, meet, transfer
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import CALLS, Func, Op, effects, remove_ops
from isa.opcodes import Kind
from isa.layout import STACK_SIZE

ALL = (1 << STACK_SIZE) - 1


def _bytes(base: Val, off: int, size: int):
    """Bit mask of the stack bytes an access covers (bit i = address r10 - STACK_SIZE + i),
    0 if it surely misses the stack, None if it may touch any stack byte."""
    if base is None:
        return None
    if base[0] == "fp":
        if base[1] is None:
            return None
        lo = base[1] + off + STACK_SIZE
        if lo < 0 or lo + size > STACK_SIZE:
            return None
        return ((1 << size) - 1) << lo
    return 0 if base[0] in POINTERS else None


def _stores_zero(op: Op, s: State) -> bool:
    k = op.kind
    if k == Kind.ST:
        return op.insn.imm == 0
    if k == Kind.STX:
        return s[op.insn.src] == ("const", 0)
    return False


def _step(op: Op, s: State, zero: int) -> int:
    """Known-zero stack bytes after `op`."""
    e = effects(op)
    if op.kind in CALLS:
        if any(s[r] is None or s[r][0] == "fp" for r in range(1, 6)):
            return 0
        return zero
    if e.store is None:
        return zero
    base, off, size = e.store
    mask = _bytes(s[base], off, size)
    if mask is None:
        return 0
    if op.kind != Kind.ATOMIC and _stores_zero(op, s):
        return zero | mask
    return zero & ~mask


def remove_zeroing(func: Func) -> tuple[Func, int]:
    cfg = build_cfg(func)

    def tf(op, st):
        s, z = st
        return transfer(op, s), _step(op, s, z)

    def mf(a, b):
        return tuple(meet(x, y) for x, y in zip(a[0], b[0])), a[1] & b[1]

    ins = forward(cfg, (entry_state(), ALL), tf, mf)
    dead = set()
    for b, st in ins.items():
        s, z = st
        for o in cfg.blocks[b].ops:
            k = o.kind
            if k == Kind.MOV and not o.spec.reg_src and o.insn.imm == 0 and s[o.insn.dst] == ("const", 0):
                dead.add(o.id)
            elif k in (Kind.ST, Kind.STX) and _stores_zero(o, s):
                base, off, size = effects(o).store
                mask = _bytes(s[base], off, size)
                if mask and (z & mask) == mask and s[base][0] == "fp":
                    dead.add(o.id)
            s, z = transfer(o, s), _step(o, s, z)
    return remove_ops(func, dead), len(dead)
