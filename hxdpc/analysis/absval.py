"""Data-flow facts over the CFG: abstract register values (forward) and liveness (backward).

An abstract value is ``(kind, offset)`` or ``None`` (anything).  Kinds: ``const`` (offset =
the 64-bit value), ``ctx``, ``data``, ``end``, ``meta`` (ctx->data, data_end, data_meta
plus offset), ``fp`` (stack pointer r10 + offset), ``heap`` (map values, helper results:
never the stack), ``scalar`` (a number that is not a pointer).  Offset ``None`` = unknown.
The verifier guarantees what these facts rely on (pointer kinds never mix with scalars).
"""
from __future__ import annotations

from typing import Callable, Optional

from hxdpc.analysis.cfg import CFG
from hxdpc.analysis.ir import CALLS, Op, effects
from isa.insn import three_operand_reg
from isa.opcodes import M64, Kind
from isa.semantics import alu, endian, movsx, neg, sext

Val = Optional[tuple[str, Optional[int]]]
State = tuple[Val, ...]
POINTERS = ("ctx", "data", "end", "meta", "fp", "heap")
PACKET = ("data", "end", "meta")
SCALAR: Val = ("scalar", None)


def entry_state() -> State:
    s: list[Val] = [("const", 0)] * 11
    s[1] = ("ctx", 0)
    s[10] = ("fp", 0)
    return tuple(s)


def meet(a: Val, b: Val) -> Val:
    if a == b:
        return a
    if a is None or b is None:
        return None
    if a[0] == b[0]:
        return SCALAR if a[0] == "const" else (a[0], None)
    if {a[0], b[0]} <= {"const", "scalar"}:
        return SCALAR
    return None


def _ptr_add(v: Val, k: Optional[int], sign: int) -> Val:
    if v[1] is None or k is None:
        return (v[0], None)
    return (v[0], v[1] + sign * sext(k, 64))


def _alu(op: str, width: int, a: Val, b: Val) -> Val:
    if a is None or b is None:
        return None
    if a[0] == "const" and b[0] == "const":
        if op in ("div", "mod", "sdiv", "smod") or width == 32 or True:
            return ("const", alu(op, a[1], b[1], width) & M64)
    if width == 64 and op in ("add", "sub"):
        if a[0] in POINTERS and b[0] in ("const", "scalar"):
            return _ptr_add(a, b[1] if b[0] == "const" else None, 1 if op == "add" else -1)
        if op == "add" and b[0] in POINTERS and a[0] in ("const", "scalar"):
            return _ptr_add(b, a[1] if a[0] == "const" else None, 1)
    if a[0] in POINTERS or b[0] in POINTERS:
        return None if width == 64 else SCALAR
    return SCALAR


def transfer(op: Op, s: State) -> State:
    """Abstract state after `op`."""
    if op.insn is None:
        return s
    i, spec = op.insn, op.spec
    k = spec.kind
    out = list(s)
    w = spec.width
    if k == Kind.MOV:
        if spec.reg_src:
            v = s[i.src]
            out[i.dst] = v if w == 64 else (("const", v[1] & 0xFFFFFFFF) if v and v[0] == "const" else SCALAR)
        else:
            out[i.dst] = ("const", sext(i.imm, 32) & M64 if w == 64 else i.imm & 0xFFFFFFFF)
    elif k == Kind.ALU:
        b = s[i.src] if spec.reg_src else ("const", sext(i.imm, 32) & M64)
        out[i.dst] = _alu(spec.op, w, s[i.dst], b)
    elif k == Kind.ALU3:
        reg = three_operand_reg(i)
        b = s[reg] if reg is not None else ("const", sext(i.imm, 32) & M64)
        out[i.dst] = _alu(spec.op, w, s[i.src], b)
    elif k in (Kind.NEG, Kind.END, Kind.MOVSX):
        v = s[i.src if k == Kind.MOVSX else i.dst]
        if v is not None and v[0] == "const":
            if k == Kind.NEG:
                r = neg(v[1], w)
            elif k == Kind.END:
                r = endian(spec.op, v[1], spec.width)
            else:
                r = movsx(v[1], spec.variant, w)
            out[i.dst] = ("const", r & M64)
        else:
            out[i.dst] = SCALAR if v is None or v[0] in ("scalar", "const") else None
    elif k == Kind.LDDW:
        out[i.dst] = ("const", i.imm & M64) if i.src == 0 else ("heap", None)
    elif k in (Kind.LDX, Kind.LDXSX, Kind.LDX48):
        base = s[i.src]
        if base is not None and base[0] == "ctx" and base[1] is not None and spec.size == 4 and not spec.signed:
            field = base[1] + i.off
            out[i.dst] = {0: ("data", 0), 4: ("end", 0), 8: ("meta", 0)}.get(field, SCALAR)
        elif base is not None and base[0] in ("ctx",) + PACKET:
            out[i.dst] = SCALAR
        else:
            out[i.dst] = None
    elif k in CALLS:
        for r in range(1, 6):
            out[r] = None
        out[0] = ("heap", None)
        # a helper may move the packet (adjust_head/meta/tail): packet pointers go stale
        out = [None if v is not None and v[0] in PACKET else v for v in out]
    else:
        for r in effects(op).writes:
            out[r] = None
    return tuple(out)


def may_alias(a: Val, aoff: int, asz: int, b: Val, boff: int, bsz: int) -> bool:
    """Can two accesses [a+aoff, +asz) and [b+boff, +bsz) overlap?"""
    if a is None or b is None:
        return True
    ga = "pkt" if a[0] in PACKET else a[0]
    gb = "pkt" if b[0] in PACKET else b[0]
    if ga in ("const", "scalar") or gb in ("const", "scalar"):
        return True
    if ga != gb:
        return False
    if a[0] == b[0] and a[1] is not None and b[1] is not None and ga != "heap":
        lo1, lo2 = a[1] + aoff, b[1] + boff
        return lo1 < lo2 + bsz and lo2 < lo1 + asz
    return True


def forward(cfg: CFG, init: object, transfer_fn: Callable, meet_fn: Callable) -> dict[int, object]:
    """Generic forward solver: the state at the entry of each reachable block."""
    ins: dict[int, object] = {0: init}
    work = [0]
    while work:
        b = work.pop()
        s = ins[b]
        for o in cfg.blocks[b].ops:
            s = transfer_fn(o, s)
        for succ in cfg.succs(b):
            old = ins.get(succ)
            new = s if old is None else meet_fn(old, s)
            if new != old:
                ins[succ] = new
                work.append(succ)
    return ins


def values(cfg: CFG) -> dict[int, State]:
    return forward(cfg, entry_state(), transfer, lambda a, b: tuple(meet(x, y) for x, y in zip(a, b)))


def per_op_values(cfg: CFG) -> dict[int, State]:
    """The abstract state before each op (by op id), for reachable blocks."""
    out = {}
    for b, s in values(cfg).items():
        for o in cfg.blocks[b].ops:
            out[o.id] = s
            s = transfer(o, s)
    return out


def liveness(cfg: CFG) -> dict[int, frozenset[int]]:
    """Registers live after each op (by op id)."""
    live_in: dict[int, frozenset[int]] = {b: frozenset() for b in range(len(cfg.blocks))}
    changed = True
    while changed:
        changed = False
        for b in reversed(range(len(cfg.blocks))):
            live = frozenset().union(*[live_in[s] for s in cfg.succs(b)])
            for o in reversed(cfg.blocks[b].ops):
                e = effects(o)
                live = (live - e.writes) | e.reads
            if live != live_in[b]:
                live_in[b] = live
                changed = True
    out = {}
    for b in range(len(cfg.blocks)):
        live = frozenset().union(*[live_in[s] for s in cfg.succs(b)])
        for o in reversed(cfg.blocks[b].ops):
            out[o.id] = live
            e = effects(o)
            live = (live - e.writes) | e.reads
    return out


def block_live_in(cfg: CFG) -> dict[int, frozenset[int]]:
    """Registers live at the entry of each block."""
    after = liveness(cfg)
    out = {}
    for b, block in enumerate(cfg.blocks):
        if not block.ops:
            out[b] = frozenset()
            continue
        o = block.ops[0]
        e = effects(o)
        out[b] = (after[o.id] - e.writes) | e.reads
    return out
