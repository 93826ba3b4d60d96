"""Clean-up between passes: unreachable blocks, jumps to the next instruction, dead code.

Dead-code elimination removes only side-effect-free instructions (ALU, moves, lddw,
loads from the context)
whose results are never read: the program's observable behaviour (action, packet,
maps, helper calls) cannot change, and registers are not observable after exit."""
from __future__ import annotations

from hxdpc.analysis.absval import liveness, per_op_values
from hxdpc.analysis.cfg import build_cfg, reachable
from hxdpc.analysis.ir import PURE, Func, effects, remove_ops
from isa.opcodes import Kind


def drop_unreachable(func: Func) -> Func:
    cfg = build_cfg(func)
    live = reachable(cfg)
    dead = {o.id for n, b in enumerate(cfg.blocks) if n not in live for o in b.ops}
    return remove_ops(func, dead)


def drop_jumps_to_next(func: Func) -> Func:
    dead = set()
    for n, o in enumerate(func.ops):
        if o.kind == Kind.JA and n + 1 < len(func.ops) and o.target == func.ops[n + 1].id:
            dead.add(o.id)
    return remove_ops(func, dead)


def dead_code(func: Func) -> tuple[Func, int]:
    """Remove pure ops with dead results until none is left; returns (func, count)."""
    total = 0
    while True:
        cfg = build_cfg(func)
        live = liveness(cfg)
        vals = per_op_values(cfg)
        dead = {o.id for o in func.ops if (o.kind in PURE and o.marker is None or _ctx_load(o, vals))
                and not (effects(o).writes & live[o.id])}
        if not dead:
            return func, total
        total += len(dead)
        func = remove_ops(func, dead)


def _ctx_load(o, vals) -> bool:
    """A load from the context (xdp_md) cannot fault or be seen: removable when dead."""
    if o.kind not in (Kind.LDX,) or o.id not in vals:
        return False
    base = vals[o.id][o.insn.src]
    return base is not None and base[0] == "ctx" and base[1] is not None and \
        0 <= base[1] + o.insn.off and base[1] + o.insn.off + o.spec.size <= 24


def simplify(func: Func) -> Func:
    while True:
        n = len(func.ops)
        func = drop_jumps_to_next(drop_unreachable(func))
        if len(func.ops) == n:
            return func
