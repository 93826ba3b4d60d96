"""Pass 2: inline BPF-to-BPF calls (Sephirot has no call stack).

Each call site gets its own copy of the callee:
- the callee's frame is placed below the caller's used stack (its r10-relative accesses
  get their offsets shifted, ``rX = r10`` gets ``rX += -D`` after it); the combined depth
  must fit the 512-byte stack, else a compile error;
- r6-r9 the callee writes are saved to stack slots below the caller's frame before the
  body and restored after it (the caller expects them preserved);
- the callee's exits jump to the restores, then the code after the call.
Tail calls stay helper calls (the helper module switches programs); ``bpf_loop`` callbacks
(``lddw`` of a function) cannot run without a call stack: compile error.
"""
from __future__ import annotations

from isa.errors import InputError
from hxdpc.analysis.absval import per_op_values
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import ENDS, Func, Op, effects, falls_through, fresh_id, lift
from isa.insn import make
from isa.opcodes import LDDW_FUNC, Kind
from isa.program import Program
from isa.layout import MAX_CALL_FRAMES, STACK_SIZE


def reachable_ops(ops: list[Op], start: int) -> list[Op]:
    """The ops reachable from index `start` (calls fall through), in layout order."""
    index = {o.id: n for n, o in enumerate(ops)}
    seen, work = set(), [start]
    while work:
        n = work.pop()
        if n in seen or n >= len(ops):
            continue
        seen.add(n)
        o = ops[n]
        if o.target is not None and o.kind != Kind.CALL_LOCAL:
            work.append(index[o.target])
        if falls_through(o):
            work.append(n + 1)
    return [ops[n] for n in sorted(seen)]


def stack_depth(ops: list[Op]) -> int:
    """Bytes below r10 a function uses (the fp-relative addresses it forms or accesses)."""
    cfg = build_cfg(Func(list(ops)))
    depth = 0
    for s in per_op_values(cfg).values():
        for v in s:
            if v is not None and v[0] == "fp":
                if v[1] is None:
                    return STACK_SIZE
                depth = max(depth, -v[1])
    for o in ops:
        e = effects(o)
        for acc in (e.load, e.store):
            if acc and acc[0] == 10:
                depth = max(depth, -acc[1])
    return (depth + 7) // 8 * 8


def _shift_frame(o: Op, d: int, where: str) -> list[Op]:
    """The callee's op with its frame moved d bytes down."""
    if o.insn is None or d == 0 or 10 not in effects(o).reads:
        return [o]
    i, e = o.insn, effects(o)
    spec = o.spec
    base_is_fp = (e.load and not e.store and i.src == 10) or \
                 (e.store and i.dst == 10 and not (spec.reg_src and i.src == 10))
    if base_is_fp:
        off = i.off - d
        if off < -STACK_SIZE:
            raise InputError(where, f"instruction {o.orig}: stack offset {off} beyond the 512-byte stack")
        return [o.with_(insn=i.with_(off=off))]
    if o.kind == Kind.MOV and spec.reg_src and i.src == 10 and spec.width == 64:
        return [o, Op(fresh_id(), make("add64_k", dst=i.dst, imm=-d), orig=o.orig)]
    raise InputError(where, f"instruction {o.orig}: cannot relocate this use of r10 in an inlined function")


def inline_calls(program: Program, where: str = "") -> Func:
    """The entry function (reachable from instruction 0) with every local call inlined."""
    where = where or program.name
    all_ops = lift(program, where=where).ops
    for o in all_ops:
        if o.kind == Kind.LDDW and o.insn.src == LDDW_FUNC:
            raise InputError(where, f"instruction {o.orig}: a function pointer (bpf_loop callback) "
                                    "needs a call stack, which Sephirot does not have")
    index = {o.id: n for n, o in enumerate(all_ops)}

    def expand(ops: list[Op], level: int) -> tuple[list[Op], int]:
        """Ops with calls inlined, and the stack bytes they use below their r10."""
        depth = stack_depth(ops)
        used = depth
        out: list[Op] = []
        for o in ops:
            if o.kind != Kind.CALL_LOCAL:
                out.append(o)
                continue
            if level + 1 >= MAX_CALL_FRAMES:
                raise InputError(where, f"instruction {o.orig}: calls nested deeper than {MAX_CALL_FRAMES} frames")
            seq, u = inline_one(o, reachable_ops(all_ops, index[o.target]), depth, level)
            out.extend(seq)
            used = max(used, u)
        return out, used

    def inline_one(call: Op, callee: list[Op], below: int, level: int) -> tuple[list[Op], int]:
        renamed = {c.id: fresh_id() for c in callee}
        body = [c.with_(id=renamed[c.id], target=renamed.get(c.target, c.target)) for c in callee]
        inner, inner_depth = expand(body, level + 1)
        written = set().union(*[effects(c).writes for c in inner])
        saves = sorted(written & {6, 7, 8, 9})
        frame = below + 8 * len(saves)
        slot = [-below - 8 * (n + 1) for n in range(len(saves))]
        ret = fresh_id()
        restores = [Op(fresh_id(), make("ldxdw", dst=r, src=10, off=slot[n]), orig=call.orig)
                    for n, r in enumerate(saves)]
        back = restores[0].id if restores else ret
        seq = [Op(call.id, make("ja"), target=None, orig=call.orig)]   # entry: goto next
        seq += [Op(fresh_id(), make("stxdw", dst=10, src=r, off=slot[n]), orig=call.orig)
                for n, r in enumerate(saves)]
        for c in inner:
            for s in _shift_frame(c, frame, where):
                if s.kind == Kind.EXIT:
                    s = s.with_(insn=make("ja"), target=back)
                elif s.kind in ENDS:
                    raise InputError(where, f"instruction {s.orig}: parametrised exit inside a function")
                seq.append(s)
        seq += restores + [Op(ret, make("ja"), target=None, orig=call.orig)]
        return seq, frame + inner_depth

    ops, used = expand(reachable_ops(all_ops, 0), 0)
    if used > STACK_SIZE:
        raise InputError(where, f"inlining the calls needs {used} bytes of stack, more than {STACK_SIZE}")
    return _fix_returns(Func(ops, program.name))


def _fix_returns(func: Func) -> Func:
    """A goto without target falls through to the next op (call entries and returns)."""
    out = []
    for n, o in enumerate(func.ops):
        if o.kind == Kind.JA and o.target is None:
            if n + 1 >= len(func.ops):
                raise InputError(func.name, "a function call is the last instruction")
            o = o.with_(target=func.ops[n + 1].id)
        out.append(o)
    return Func(out, func.name)
