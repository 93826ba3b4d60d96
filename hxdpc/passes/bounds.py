"""Pass 3a: replace verifier-only packet bounds checks by hardware checks.

A check ``if (data + N) OP data_end`` (either operand order, >, >=, <, <=) whose failing
side only computes (no memory access, no call, no other branch) and exits with a
constant r0 is replaced by a ``BoundsMarker(M, K)``: the hardware ends the program with
action K when data_end - data < M.  Proof obligations (docs/compiler.md):
1. the operands are ctx->data + N and ctx->data_end, loaded with no helper call since
   (a helper may move the packet), so the hardware's comparison is the same test;
2. the failing side is an exit with constant K and nothing observable on the way;
3. the scheduler keeps every observable or faulting op before the check in earlier rows
   and every one after it in the check's row or later (ddg marker edges).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hxdpc.analysis.absval import State, per_op_values, transfer
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import PURE, BoundsMarker, Func, Op, fresh_id
from isa.insn import make
from isa.opcodes import Kind

# (operand order data-first?, condition) -> (fail when taken?, extra to N)
_RULES = {
    (True, "jgt"): (True, 0), (True, "jge"): (True, 1), (True, "jlt"): (False, 1), (True, "jle"): (False, 0),
    (False, "jgt"): (False, 1), (False, "jge"): (False, 0), (False, "jlt"): (True, 0), (False, "jle"): (True, 1),
}


@dataclass(frozen=True)
class Check:
    op_id: int
    length: int
    action: int
    fail_taken: bool


def classify(op: Op, s: State) -> Optional[tuple[int, bool]]:
    """(M, fail_when_taken) if `op` compares data + N with data_end, else None."""
    spec = op.spec
    if spec is None or spec.kind != Kind.JCOND or spec.width != 64 or not spec.reg_src:
        return None
    a, b = s[op.insn.dst], s[op.insn.src]
    if a is None or b is None:
        return None
    if a[0] == "data" and b == ("end", 0) and a[1] is not None:
        data_first, n = True, a[1]
    elif b[0] == "data" and a == ("end", 0) and b[1] is not None:
        data_first, n = False, b[1]
    else:
        return None
    rule = _RULES.get((data_first, spec.op))
    if rule is None:
        return None
    m = n + rule[1]
    if not 1 <= m <= 0xFFFF:
        return None
    return m, rule[0]


def exit_action(func: Func, start: int, s: State, limit: int = 64) -> Optional[int]:
    """Follow the failing side from op index `start`: pure ops and gotos up to an exit with a
    constant r0.  None when anything else happens on the way."""
    index = func.index()
    n = start
    for _ in range(limit):
        if n >= len(func.ops):
            return None
        o = func.ops[n]
        k = o.kind
        if o.marker is not None:
            return None
        if k == Kind.JA:
            n = index[o.target]
            continue
        if k == Kind.EXIT:
            v = s[0]
            return v[1] if v is not None and v[0] == "const" and v[1] < 1 << 31 else None
        if k == Kind.PEXIT:
            return o.insn.imm if o.insn.imm >= 0 else None
        if k not in PURE:
            return None
        s = transfer(o, s)
        n += 1
    return None


def find_checks(func: Func) -> list[Check]:
    cfg = build_cfg(func)
    vals = per_op_values(cfg)
    index = func.index()
    out = []
    for o in func.ops:
        if o.id not in vals or o.kind != Kind.JCOND:
            continue
        c = classify(o, vals[o.id])
        if c is None:
            continue
        m, fail_taken = c
        s = transfer(o, vals[o.id])
        start = index[o.target] if fail_taken else index[o.id] + 1
        act = exit_action(func, start, s)
        if act is not None:
            out.append(Check(o.id, m, act, fail_taken))
    return out


def remove_bounds_checks(func: Func) -> tuple[Func, int]:
    """Replace every provable check by a marker (+ a goto when success is the taken side)."""
    checks = {c.op_id: c for c in find_checks(func)}
    if not checks:
        return func, 0
    out: list[Op] = []
    for o in func.ops:
        c = checks.get(o.id)
        if c is None:
            out.append(o)
            continue
        out.append(Op(id=o.id, insn=None, orig=o.orig, marker=BoundsMarker(c.length, c.action)))
        if not c.fail_taken:
            out.append(Op(id=fresh_id(), insn=make("ja"), target=o.target, orig=o.orig))
    return Func(out, func.name, func.notes), len(checks)
