"""Control-flow facts the fast path plans its code with (per decoded program).

The per-instruction facts come from the ISA table (`OpSpec.falls_through`,
`isa.insn.writes`); the branch targets from the interpreter's decoding (`Decoded.targets`,
`isa.insn.target`).  What is the fast path's own: a local call ends an arm (its return
point is reached through the dispatch) and a kfunc call never returns (it faults).
"""
from __future__ import annotations

from emulator.interp.interpreter import Decoded
from isa.insn import Insn, writes
from isa.opcodes import Kind, OpSpec

# calls whose return point the fast path reaches through the dispatch (local) or never (kfunc)
_RETURNS_THROUGH_DISPATCH = frozenset({Kind.CALL_LOCAL, Kind.CALL_KFUNC})


def falls_through(spec: OpSpec) -> bool:
    """Whether control may go on to the next instruction within the arm (a local call
    returns through the dispatch, not by falling through)."""
    return spec.falls_through and spec.kind not in _RETURNS_THROUGH_DISPATCH


def written_registers(ins: Insn, spec: OpSpec) -> frozenset:
    """Registers the instruction itself may write (the ISA table's `writes`; a local or
    kfunc call's r0 is the callee's, not this arm's)."""
    if spec.kind in _RETURNS_THROUGH_DISPATCH:
        return frozenset()
    return writes(ins)


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
        spec, t = code.specs[i], code.targets[i]
        out = []
        if (spec.is_branch or spec.kind == Kind.CALL_LOCAL) and t is not None:
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
