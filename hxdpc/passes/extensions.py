"""Pass 4: the hXDP ISA extensions (peephole, per basic block).

- three-operand ALU: ``rX = rY; rX OP= v`` becomes ``rX = rY OP v`` (0xe7/0xef 64-bit,
  0xe4/0xec 32-bit; op nibble in ``off``; register operand number in ``imm``).  A 32-bit
  op after either move is exact (it reads the low half of rY); a 64-bit op only after a
  64-bit move.
- 6-byte load/store: a 4-byte and a 2-byte load of adjacent bytes whose values are only
  stored to adjacent bytes (MAC copies) become one 48-bit load and one 48-bit store.
- parametrised exit: ``exit`` where r0 is the constant K on every path becomes
  ``exit K`` (0x96); the move to r0 then dies and the dead-code pass drops it.
- lddw of a constant that fits a 32-bit move becomes that move (one lane instead of two).
"""
from __future__ import annotations

from typing import Optional

from hxdpc.analysis.absval import may_alias, per_op_values
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import Func, Op, effects, remove_ops
from isa.insn import Insn, make
from isa.opcodes import ALU3_OPS, M64, Kind
from isa.semantics import sext


def _alu3(mov: Op, alu: Op) -> Optional[Insn]:
    ms, as_ = mov.spec, alu.spec
    if as_.op not in ALU3_OPS or as_.variant_field == "off" and as_.variant != 0:
        return None
    if as_.width == 64 and ms.width != 64:
        return None
    src = mov.insn.src
    if as_.reg_src:
        reg = src if alu.insn.src == mov.insn.dst else alu.insn.src
        return make(f"{as_.op}{as_.width}3_x", dst=mov.insn.dst, src=src, imm=reg)
    return make(f"{as_.op}{as_.width}3_k", dst=mov.insn.dst, src=src, imm=alu.insn.imm)


def three_operand(func: Func) -> tuple[Func, int]:
    cfg = build_cfg(func)
    fused: dict[int, Insn] = {}
    dead: set[int] = set()
    for b in cfg.blocks:
        ops = b.ops
        for n, mov in enumerate(ops):
            if mov.kind != Kind.MOV or not mov.spec.reg_src or mov.id in dead or mov.id in fused:
                continue
            x, y = mov.insn.dst, mov.insn.src
            if x == y:
                continue
            for alu in ops[n + 1:]:
                e = effects(alu)
                if alu.kind == Kind.ALU and alu.insn.dst == x and alu.id not in fused:
                    new = _alu3(mov, alu)
                    if new is not None:
                        fused[alu.id] = new
                        dead.add(mov.id)
                    break
                if x in e.reads or x in e.writes or y in e.writes or alu.marker is not None:
                    break
    ops = [o.with_(insn=fused[o.id]) if o.id in fused else o for o in func.ops]
    return remove_ops(Func(ops, func.name, func.notes), dead), len(fused)


def param_exit(func: Func) -> tuple[Func, int]:
    """``exit`` with a constant r0, and ``goto L`` where L is an ``exit`` and r0 is constant
    at the goto (the shared exit block is duplicated into its predecessor)."""
    vals = per_op_values(build_cfg(func))
    index = func.index()
    n = 0
    ops = []
    for o in func.ops:
        v = vals.get(o.id)
        k = _const_r0(v)
        if k is not None and (o.kind == Kind.EXIT or o.kind == Kind.JA and _goes_to_exit(func, index, o)):
            o = o.with_(insn=make("pexit", imm=k), target=None)
            n += 1
        ops.append(o)
    return Func(ops, func.name, func.notes), n


def _const_r0(v) -> Optional[int]:
    if v is None or v[0] is None or v[0][0] != "const" or v[0][1] >= 1 << 31:
        return None
    return v[0][1]


def _goes_to_exit(func: Func, index: dict, o: Op) -> bool:
    seen = set()
    while o.kind == Kind.JA and o.id not in seen:
        seen.add(o.id)
        o = func.ops[index[o.target]]
    return o.kind == Kind.EXIT


def narrow_lddw(func: Func) -> tuple[Func, int]:
    ops, n = [], 0
    for o in func.ops:
        if o.kind == Kind.LDDW and o.insn.src == 0:
            v = o.insn.imm & M64
            if v < 1 << 31 or v >= M64 - (1 << 31) + 1:
                o = o.with_(insn=make("mov64_k", dst=o.insn.dst, imm=sext(v, 32)))
                n += 1
            elif v < 1 << 32:
                o = o.with_(insn=make("mov32_k", dst=o.insn.dst, imm=sext(v, 32)))
                n += 1
        ops.append(o)
    return Func(ops, func.name, func.notes), n


# ---- 6-byte load/store ----

def load_store48(func: Func) -> tuple[Func, int, int]:
    """Fuse (ldxw, ldxh of the next 2 bytes) copied by (stxw, stxh of the next 2 bytes)."""
    from hxdpc.analysis.absval import liveness
    cfg = build_cfg(func)
    vals = per_op_values(cfg)
    live = liveness(cfg)
    replace: dict[int, Insn] = {}
    dead: set[int] = set()
    for b in cfg.blocks:
        ops = b.ops
        for i, lw in enumerate(ops):
            if lw.kind != Kind.LDX or lw.spec.size != 4 or lw.id in dead or lw.id in replace:
                continue
            got = _match48(ops, i, vals, live)
            if got:
                lo_load, hi_load, lo_store, hi_store, reg = got
                li, si = ops[lo_load], ops[lo_store]
                replace[li.id] = make("ldx48", dst=reg, src=li.insn.src, off=li.insn.off)
                replace[ops[hi_store].id] = make("stx48", dst=si.insn.dst, src=reg, off=si.insn.off)
                dead |= {ops[hi_load].id, si.id}
    ops = [o.with_(insn=replace[o.id]) if o.id in replace else o for o in func.ops]
    n = len(replace) // 2
    return remove_ops(Func(ops, func.name, func.notes), dead), n, n


def _match48(ops: list[Op], i: int, vals, live):
    """Indices (ldw, ldh, stw, sth, reg) of a fusable copy starting with the ldxw at i.

    The fused load happens at i and reads the 6 bytes then; the fused store happens at the
    half-word store (the later one) and writes all 6 bytes then.  Verified programs do not
    fault, so only values and orderings need care."""
    lw = ops[i]
    ra, o, rx = lw.insn.src, lw.insn.off, lw.insn.dst
    if rx == ra:
        return None
    j = _find(ops, i + 1, lambda p: p.kind == Kind.LDX and p.spec.size == 2 and p.insn.src == ra
              and p.insn.off == o + 4, stop_writes={ra})
    if j is None:
        return None
    ry = ops[j].insn.dst
    k = _find(ops, i + 1, lambda p: p.kind == Kind.STX and p.spec.size == 4 and p.insn.src == rx,
              stop_writes={rx})
    if k is None:
        return None
    rb, p = ops[k].insn.dst, ops[k].insn.off
    if rb in (rx, ry):
        return None
    m = _find(ops, max(j, k) + 1, lambda q: q.kind == Kind.STX and q.spec.size == 2 and q.insn.src == ry
              and q.insn.dst == rb and q.insn.off == p + 4, stop_writes={ry, rb})
    if m is None:
        return None
    A, B = vals.get(ops[i].id), vals.get(ops[k].id)
    if A is None or B is None:
        return None
    for n in range(i + 1, m + 1):
        q = ops[n]
        if q.marker is not None or q.kind in (Kind.CALL, Kind.CALLX, Kind.JCOND, Kind.JA, Kind.ATOMIC):
            return None
        if n == j:
            continue
        e = effects(q)
        if rx in e.writes or (ry in e.writes and n > j) or rb in e.writes:
            return None
        if n not in (k, m) and (rx in e.reads or (ry in e.reads and n > j)):
            return None
        if e.store and n < j and (n != k or may_alias(B[rb], p, 4, A[ra], o, 6)):
            return None
    if rx in live[ops[m].id] or ry in live[ops[m].id]:
        return None
    dst_v = B[rb]
    for n in range(k + 1, m):
        e = effects(ops[n])
        for acc in (e.load, e.store):
            if acc and may_alias(vals[ops[n].id][acc[0]], acc[1], acc[2], dst_v, p, 6):
                return None
    return i, j, k, m, rx


def _find(ops, start, pred, stop_writes=frozenset()):
    for n in range(start, len(ops)):
        if pred(ops[n]):
            return n
        if effects(ops[n]).writes & set(stop_writes):
            return None
    return None
