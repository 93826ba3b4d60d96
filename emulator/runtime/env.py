"""The boundary between an executor (interpreter, Sephirot, x86) and the world it runs in.

An executor owns registers and stack frames; everything else comes from an ``Env``:
memory regions (context, packet, map values), helper calls, and the values `lddw` gives
for map references.  The XDP runtime (emulator.runtime) and the conformance harness are
the two kinds of Env; every executor calls the same ones, so a helper is written once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

from emulator.runtime.memory import Fault, Memory
from isa.program import Program


class ProgramExit(Exception):
    """A helper ended the program with this r0 (the conformance suite's unwind helper)."""

    def __init__(self, r0: int):
        super().__init__(f"exit with r0={r0}")
        self.r0 = r0


class TailCall(Exception):
    """bpf_tail_call succeeded: the executor continues with `program` (same context)."""

    def __init__(self, program: Program):
        super().__init__(f"tail call to {program.name}")
        self.program = program


class Caller(Protocol):
    """What an executor offers a helper that calls back into the program (bpf_loop)."""

    def call(self, func_addr: int, args: tuple[int, ...]) -> int: ...


BUDGET_UNITS = ("instruction", "row")     # what executors count: slots, or Sephirot's rows


def budget_exhausted(budget: int, unit: str = "instruction") -> str:
    """The one wording of a run that used up its budget (`unit`: instruction, or row on
    Sephirot); `is_budget_error` recognises it, so the session can add how to raise it."""
    return f"{unit} budget of {budget} exhausted"


def is_budget_error(error: str) -> bool:
    return error.startswith(tuple(f"{u} budget of " for u in BUDGET_UNITS)) and " exhausted" in error


@dataclass
class RunResult:
    r0: int                       # the return value (XDP action); 0 when error is set
    error: Optional[str] = None   # why the run ended abnormally (fault, budget), None if it exited
    steps: int = 0                # instructions executed
    extra: dict = field(default_factory=dict)   # executor-specific figures (Sephirot: cycles, ...)


class Executor(Protocol):
    """Runs one program invocation: registers r1 = context address, stack fresh."""

    def run(self, env: "Env", r1: int) -> RunResult: ...


class Env:
    """Base Env: memory only, no helpers, no maps."""

    def __init__(self, mem: Optional[Memory] = None):
        self.mem = mem if mem is not None else Memory()

    def has_helper(self, num: int) -> bool:
        return False

    def helper(self, num: int, args: tuple[int, int, int, int, int], caller: Caller) -> int:
        """Run helper `num`; returns r0.  May raise Fault, ProgramExit or TailCall."""
        raise Fault(f"unknown helper {num}")

    def lddw_value(self, src: int, imm: int) -> int:
        """The value `lddw` with a pseudo source (1, 2, 5, 6) loads into a register."""
        raise Fault(f"lddw with source {src} needs maps, and this environment has none")
