"""Pass 5c: register renaming inside basic blocks.

clang reuses a few registers for unrelated values; each reuse adds write-after-read and
write-after-write edges that keep instructions out of one row.  A *web* is a value's
definition plus the read-modify-write chain and reads that follow it inside the block up to
the next plain definition.  A web that does not leave the block (its register is
redefined in the block, or dead at the block's end) gets a register that the block neither
reads, writes, receives live nor passes on.  Implicit operands (calls: r0-r5, exit: r0)
are never renamed.
"""
from __future__ import annotations

from hxdpc.analysis.absval import block_live_in, liveness
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ir import Func, Op, effects
from isa.opcodes import Kind

_IMPLICIT = (Kind.CALL, Kind.CALLX, Kind.CALL_KFUNC, Kind.CALL_LOCAL, Kind.EXIT, Kind.ATOMIC)


def _read_fields(o: Op) -> dict[str, int]:
    """Explicit register fields the op reads: field name -> register."""
    i, s = o.insn, o.spec
    out = {}
    if s.reads_dst:
        out["dst"] = i.dst
    if s.reg_src:
        out["src"] = i.src
    if s.imm_reg:
        out["imm"] = i.imm
    return out


def _defines(o: Op) -> bool:
    """Does the op write its dst register (a definition renaming can move)?"""
    return o.insn is not None and o.spec.writes_dst


def _rmw(o: Op, r: int) -> bool:
    """Does the op read r through dst and write it back (r += x)?"""
    s = o.spec
    return s is not None and s.reads_dst and s.writes_dst and o.insn.dst == r


def _webs(ops: list[Op], r: int):
    """(uses, leaves block?) for each plain definition of r; uses = [(op index, rename its
    dst?, rename its reads?)].  A definition may read r itself (``r1 = *(u32 *)(r1 + 0)``):
    it reads the previous value, so only its dst joins the web; likewise an op that reads
    this value and redefines r (``r2 = *(u16 *)(r2 + 2)``) ends the web with its reads."""
    out = []
    for i, o in enumerate(ops):
        if not _defines(o) or o.insn.dst != r or _rmw(o, r):
            continue
        web, ok, leaves = [(i, True, False)], True, True
        for k in range(i + 1, len(ops)):
            q = ops[k]
            if q.insn is None:
                continue
            e = effects(q)
            reads = r in e.reads
            if reads and (q.kind in _IMPLICIT or r not in _read_fields(q).values()):
                ok = False
                break
            if r in e.writes:
                if reads and _rmw(q, r):
                    web.append((k, True, True))
                    continue          # the chain goes on in the same register
                if not _defines(q) and reads:
                    ok = False
                    break
                if reads:             # reads this value, starts the next one
                    web.append((k, False, True))
                leaves = False
                break
            if reads:
                web.append((k, True, True))
        if ok:
            out.append((web, leaves))
    return out


def _read_by_branch(ops: list[Op], web) -> bool:
    last = ops[-1]
    return last.kind == Kind.JCOND and any(k == len(ops) - 1 and reads for k, _, reads in web)


def _rename(o: Op, r: int, f: int, dst: bool = True, reads: bool = True) -> Op:
    i = o.insn
    kw = {}
    if dst and i.dst == r and _defines(o):
        kw["dst"] = f
    fields = _read_fields(o)
    if reads:
        for name, reg in fields.items():
            if reg == r:
                kw[name] = f
    return o.with_(insn=i.with_(**kw))


def rename_registers(func: Func) -> tuple[Func, int]:
    cfg = build_cfg(func)
    live_in = block_live_in(cfg)
    after = liveness(cfg)
    new_ops: dict[int, Op] = {}
    count = 0
    for b, block in enumerate(cfg.blocks):
        ops = block.ops
        if not ops:
            continue
        live_out = after[ops[-1].id]
        used = set(live_in[b]) | set(live_out)
        for o in ops:
            e = effects(o)
            used |= e.reads | e.writes
        free = [f for f in range(10) if f not in used]
        cur = list(ops)
        for r in range(10):
            for web, leaves in _webs(cur, r):
                if not free or leaves and (r in live_out or not _read_by_branch(cur, web)):
                    # a value that leaves the block keeps its register; one that dies in the
                    # block's branch is renamed (a branch reads late: a write of its register
                    # in the fall-through block could not share the branch's row)
                    continue
                f = free.pop(0)
                for k, dst, reads in web:
                    cur[k] = _rename(cur[k], r, f, dst, reads)
                count += 1
        for o, n in zip(ops, cur):
            if n is not o:
                new_ops[o.id] = n
    return Func([new_ops.get(o.id, o) for o in func.ops], func.name, func.notes), count
