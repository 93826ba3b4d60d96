"""Fold ``rX += K`` into the offsets of the memory accesses that use rX as their base.

clang computes a header pointer and then adds a constant to it before loading
(``r0 = r1 + r7; r0 += 14; r4 = *(u16 *)(r0 + 2)``); on Sephirot the add is a row of its
own in the dependence chain.  The add is removed and K added to the offsets when, inside
its block, every read of the new value (up to the next definition of rX) is the base of a
load or store, the value does not leave the block (rX redefined in the block, or dead at
its end), and every new offset fits the 16-bit field.  Each access then computes the same
address ((rX + K) + off = rX + (K + off), both 64-bit wrapping), so it touches the same
bytes; rX itself is read by nothing else.
"""
from __future__ import annotations

from hxdpc.analysis.absval import liveness, per_op_values
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import LOADS, STORES, Func, effects, remove_ops
from isa.insn import mem_access
from isa.opcodes import Kind

def _base(o) -> int | None:
    """The address register of a plain load or store (not an atomic), else None."""
    if o.insn is None or o.kind not in LOADS + STORES:
        return None
    return mem_access(o.insn).base


def fold_offsets(func: Func) -> tuple[Func, int]:
    cfg = build_cfg(func)
    after = liveness(cfg)
    new, dead = {}, set()
    for block in cfg.blocks:
        ops = block.ops
        live_out = after[ops[-1].id] if ops else set()
        for i, o in enumerate(ops):
            if o.insn is None or o.spec.key != "add64_k" or o.insn.dst == 10:
                continue
            x, k = o.insn.dst, o.insn.imm
            uses, ended = [], False
            for q in ops[i + 1:]:
                q = new.get(q.id, q)
                e = effects(q)
                if x in e.reads:
                    base = _base(q)
                    if base != x or q.kind in STORES and q.kind != Kind.ST and q.insn.src == x:
                        uses = None
                        break
                    uses.append(q)
                if x in e.writes:
                    ended = True
                    break
            if uses is None or not (ended or x not in live_out):
                continue
            if not all(-0x8000 <= q.insn.off + k < 0x8000 for q in uses):
                continue
            for q in uses:
                new[q.id] = q.with_(insn=q.insn.with_(off=q.insn.off + k))
            dead.add(o.id)
    if not dead:
        return func, 0
    func = Func([new.get(o.id, o) for o in func.ops], func.name, func.notes)
    return remove_ops(func, dead), len(dead)


def rebase_packet_accesses(func: Func) -> tuple[Func, int]:
    """Address packet loads and stores from the packet start register when one holds it.

    After bounds-check removal clang's header pointers (``r1 = r2 + 14``) are often read
    only as the base of an access; ``*(u8 *)(r1 + 0)`` with r1 = data + 14 and r2 = data
    becomes ``*(u8 *)(r2 + 14)`` (the same address: both registers hold pointers into the
    current packet, loaded from ctx->data with no helper call since, so the abstract values
    are exact), and the pointer's definition may then die (dead code).  Only the register
    holding data + 0 is used as the new base, and the new offset must fit 16 bits.
    """
    vals = per_op_values(build_cfg(func))
    out, n = [], 0
    for o in func.ops:
        s = vals.get(o.id)
        base = _base(o)
        if s is None or base is None or base == 10:
            out.append(o)
            continue
        v = s[base]
        start = next((r for r in range(10) if s[r] == ("data", 0)), None)
        if v is None or v[0] != "data" or v[1] in (None, 0) or start is None or start == base:
            out.append(o)
            continue
        off = o.insn.off + v[1]
        if not -0x8000 <= off < 0x8000:
            out.append(o)
            continue
        kw = {"off": off, "src": start} if o.kind in LOADS else {"off": off, "dst": start}
        out.append(o.with_(insn=o.insn.with_(**kw)))
        n += 1
    return Func(out, func.name, func.notes), n
