"""Every semantic corner of tests/test_interpreter.py (division by zero, shifts, sign
extension, byte swaps, atomics, bpf_loop callbacks, tail calls, ProgramExit, moving
regions, faults, budgets, hXDP extensions) on the x86 target: the `ex` fixture those tests
take is the x86 executor here, and the interpreter stays the oracle they compare with."""
import pytest

from test_interpreter import *  # noqa: F401,F403  (the tests, collected again for x86)
from emulator.x86.executor import X86


@pytest.fixture
def ex():
    return X86
