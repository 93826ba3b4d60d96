"""Control-flow facts the fast path plans its code with (per decoded program).

The per-instruction facts (does it fall through, which registers it writes) are computed
here, in `falls_through` and `written_registers`, from the ISA table's kinds; the branch
targets come from the interpreter's decoding (`Decoded.targets`).  When the ISA table
carries these facts itself, these two functions are the place to switch to them.
"""
from __future__ import annotations

from emulator.interp.interpreter import Decoded
from isa.insn import Insn
from isa.opcodes import Kind, OpSpec

# kinds after which control does not fall through to the next instruction
_NO_FALLTHROUGH = frozenset({Kind.JA, Kind.EXIT, Kind.PEXIT, Kind.CALL_LOCAL, Kind.CALL_KFUNC})
# kinds that write their dst register
_WRITES_DST = frozenset({Kind.ALU, Kind.MOV, Kind.NEG, Kind.MOVSX, Kind.END, Kind.ALU3, Kind.LDX,
                         Kind.LDXSX, Kind.LDX48, Kind.LDDW})
_CALLS = frozenset({Kind.CALL, Kind.CALLX})


def falls_through(spec: OpSpec) -> bool:
    """Whether control may go on to the next instruction (a local call returns through
    the dispatch, not by falling through)."""
    return spec.kind not in _NO_FALLTHROUGH


def written_registers(ins: Insn, spec: OpSpec) -> frozenset:
    """Registers the instruction itself may write (a local call's callee not included):
    dst of ALU/move/load kinds; an atomic's src and r0 (fetch, xchg, cmpxchg); a helper
    call's r0."""
    if spec.kind in _WRITES_DST:
        return frozenset((ins.dst,))
    if spec.kind == Kind.ATOMIC:
        return frozenset((ins.src, 0))
    if spec.kind in _CALLS:
        return frozenset((0,))
    return frozenset()


def is_branch(spec: OpSpec) -> bool:
    return spec.kind in (Kind.JA, Kind.JCOND)


def successors(code: Decoded, ok: list[bool]) -> list[tuple[int, ...]]:
    """Where control goes after each instruction within its function activation: a local
    call goes to its target (its return point is reached from the callee's exit, through
    the dispatch), exit and faulting instructions go nowhere."""
    n = code.size
    succ: list[tuple[int, ...]] = []
    for i in range(n):
        if not ok[i]:
            succ.append(())
            continue
        kind, t = code.specs[i].kind, code.targets[i]
        out = []
        if kind in (Kind.JA, Kind.JCOND, Kind.CALL_LOCAL) and t is not None:
            out.append(t)
        if falls_through(code.specs[i]) and i + 1 < n:
            out.append(i + 1)
        succ.append(tuple(out))
    return succ


def cut_points(succ: list[tuple[int, ...]]) -> set[int]:
    """Targets of the back edges of a depth-first search: every cycle goes through one."""
    n = len(succ)
    cuts: set[int] = set()
    state = [0] * n           # 0 new, 1 on the DFS stack, 2 done
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, 0)]
        state[root] = 1
        while stack:
            i, k = stack[-1]
            if k < len(succ[i]):
                stack[-1] = (i, k + 1)
                j = succ[i][k]
                if state[j] == 1:
                    cuts.add(j)
                elif state[j] == 0:
                    state[j] = 1
                    stack.append((j, 0))
                continue
            stack.pop()
            state[i] = 2
    return cuts


def reach(succ: list[tuple[int, ...]], checks: set[int]) -> list[int]:
    """Per instruction, the most instructions a run from it executes (itself included)
    before it reaches a check point or leaves the activation.  With the edges into check
    points removed the graph has no cycle (every cycle goes through a cut point)."""
    n = len(succ)
    reach = [0] * n
    done = [False] * n
    for root in range(n):
        if done[root]:
            continue
        stack = [(root, 0)]
        while stack:
            i, k = stack[-1]
            nxt = succ[i]
            while k < len(nxt) and (nxt[k] in checks or done[nxt[k]]):
                k += 1
            if k < len(nxt):
                stack[-1] = (i, k + 1)
                stack.append((nxt[k], 0))
                continue
            stack.pop()
            if not done[i]:
                done[i] = True
                reach[i] = 1 + max((0 if j in checks else reach[j] for j in nxt), default=0)
    return reach
