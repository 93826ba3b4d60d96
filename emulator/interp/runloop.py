"""The one run loop of the ISA-level executors (interpreter and fast path).

What a run is, apart from executing instructions: the stack region (STACK_SIZE x
MAX_CALL_FRAMES bytes below STACK_TOP, zeroed per run and per tail call, mapped only
while the run lasts), frame k's r10, the call-depth limit of BPF-to-BPF calls and
callbacks, tail calls (TailCall: the next program starts on a zeroed stack), and how an
abnormal end becomes a RunResult (``Stop``/``Fault``: r0 = 0 and the reason; a bug in an
env or executor never escapes as an exception).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

from isa import layout
from emulator.runtime.env import Env, ProgramExit, RunResult, TailCall
from emulator.runtime.memory import Fault, Region
from isa.opcodes import M64
from isa.program import Program

DEFAULT_BUDGET = 1_000_000
# The budget rule (docs/runtime.md "The instruction budget"): the budget bounds each
# activation on its own: the program's run (tail calls included) and every bpf_loop callback
# invocation.  A callback's instructions are not charged to its caller, whose bpf_loop call
# costs one instruction: the kernel bounds bpf_loop at 1 << 23 iterations and its verifier
# bounds each callback, so a program the kernel runs to completion completes here, while an
# activation that runs away still ends after `budget` instructions.  RunResult.steps counts
# the instructions charged to the run (the entry activation).
STACK_BYTES = layout.STACK_SIZE * layout.MAX_CALL_FRAMES
STACK_BASE = layout.STACK_TOP - STACK_BYTES
ZERO_STACK = bytes(STACK_BYTES)
MAX_FRAMES = layout.MAX_CALL_FRAMES
CALL_DEPTH_FAULT = f"call depth above {MAX_FRAMES} frames"
BAD_TARGET_FAULT = "jump target is outside the program or inside an lddw"
FELL_OFF = "execution fell off the end of the program"


class Stop(Exception):
    """Ends a run abnormally: a fault or the budget, with the slot it happened at."""

    def __init__(self, reason: str, slot: Optional[int] = None):
        super().__init__(reason if slot is None else f"{reason} at pc {slot}")
        self.reason = reason
        self.slot = slot


def new_stack() -> Region:
    return Region("stack", STACK_BASE, bytearray(STACK_BYTES), True, "stack")


def frame_top(depth: int) -> int:
    """r10 of call frame `depth` (0: the program's entry)."""
    return layout.STACK_TOP - depth * layout.STACK_SIZE


def check_call_depth(depth: int) -> None:
    """A call that would run at frame `depth`: a Fault past the kernel's frame limit."""
    if depth >= MAX_FRAMES:
        raise Fault(CALL_DEPTH_FAULT)


def callback_index(func_addr: int, size: int) -> int:
    """The instruction a bpf_loop callback address (an `lddw src 4` value) names."""
    idx = func_addr - layout.FUNC_BASE
    if not 0 <= idx < size:
        raise Fault(f"callback address 0x{func_addr & M64:x} is not a function of the program")
    return idx


def callback_args(args: tuple[int, ...]) -> list[int]:
    """r1..r5 of a callback: the helper's arguments, unsigned, missing ones 0."""
    a = [x & M64 for x in args[:5]]
    return a + [0] * (5 - len(a))


def packet_bounds(env: Env, ctx: int) -> tuple[int, int]:
    """(data, data_end) of the packet, read from the xdp_md context like a program would."""
    try:
        return env.mem.load(ctx & M64, 4), env.mem.load((ctx + 4) & M64, 4)
    except Fault:
        raise Fault("a bounds check needs an XDP context in r1") from None


def zeroer(stack: Region) -> Callable[[], None]:
    """A function setting the stack's bytes back to zeros: through a memoryview when the
    size is right (10x faster than bytearray slice assignment in CPython 3.11)."""
    data = stack.data
    if type(data) is bytearray and len(data) == STACK_BYTES:     # a C call, no Python frame
        return partial(memoryview(data).__setitem__, slice(None), ZERO_STACK)

    def clear() -> None:
        stack.data[:] = ZERO_STACK
    return clear


def execute(runner, program: Program, env: Env, r1: int, stack: Region,
            clear: Callable[[], None]) -> RunResult:
    """Run `program` (and the programs it tail-calls) on `env` with r1 = `r1`.

    `runner.start(program, stack, r1, budget)` runs one program and returns r0; it may raise
    Stop, Fault, ProgramExit or TailCall; `runner.budget` and `runner.steps` are the
    instruction budget and the instructions executed.  `clear()` zeroes `stack`."""
    clear()
    mem = env.mem
    r1 &= M64
    added = False
    try:
        mem.add(stack)
        added = True
        while True:
            try:
                return RunResult(runner.start(program, stack, r1, runner.budget) & M64, None, runner.steps)
            except TailCall as tc:
                program = tc.program
                clear()
            except ProgramExit as pe:
                return RunResult(int(pe.r0) & M64, None, runner.steps)
    except Stop as e:
        return RunResult(0, str(e), runner.steps)
    except Fault as e:          # raised outside any instruction (cannot happen for a valid env)
        return RunResult(0, str(e), runner.steps)
    except RecursionError:
        return RunResult(0, "internal: recursion too deep", runner.steps)
    except Exception as e:      # a bug here or in the env: never escape to the caller
        return RunResult(0, f"internal: {type(e).__name__}: {e}", runner.steps)
    finally:
        if added:
            try:
                mem.remove(stack)
            except ValueError:
                pass
