"""bpf_trace_printk(fmt, size, a, b, c) as one small XDP program, run in the kernel and in the
emulator: the helper's return value is the program's r0, which BPF_PROG_TEST_RUN reports.

The format (and the bytes pointer arguments point to) sit on the stack, written by lddw +
stx pairs; an int argument is an immediate, a bytes argument a pointer into the stack."""
from __future__ import annotations

import ctypes
import os
from typing import Union

from emulator.interp.interpreter import Interpreter
from emulator.runtime.results import PacketInput
from emulator.runtime.session import Session
from isa.asm import assemble
from isa.program import Program

Arg = Union[int, bytes]
M64 = (1 << 64) - 1


def _stores(blob: bytes, top: int) -> tuple[list[str], int]:
    """Lines writing `blob` (padded to 8) just below r10 - top; returns them and the new top."""
    padded = blob + bytes(-len(blob) % 8)
    off = top + len(padded)
    lines = []
    for k in range(0, len(padded), 8):
        word = int.from_bytes(padded[k:k + 8], "little")
        lines += [f"r1 = {word:#x} ll", f"*(u64 *)(r10 - {off - k}) = r1"]
    return lines, off


def printk_program(fmt: bytes, args: tuple[Arg, ...] = (), size: int | None = None) -> Program:
    """A program returning bpf_trace_printk(fmt, size or len(fmt), *args)."""
    lines, fmt_off = _stores(fmt, 0)
    regs, top = [], fmt_off
    for k, a in enumerate(args):
        reg = f"r{3 + k}"
        if isinstance(a, bytes):
            more, top = _stores(a, top)
            lines += more
            regs += [f"{reg} = r10", f"{reg} += -{top}"]
        else:
            regs.append(f"{reg} = {a & M64:#x} ll")
    lines += regs + ["r1 = r10", f"r1 += -{fmt_off}", f"r2 = {len(fmt) if size is None else size}",
                     "call 6", "exit"]
    return Program("printk", assemble("\n".join(lines) + "\n"), license="GPL")


def emulator_r0(program: Program) -> tuple[int, str]:
    """(r0 as the test-run's u32, the text the emulator captured or '')."""
    s = Session(program, executor=Interpreter)
    r = s.run(PacketInput(0, bytes(64), 0))
    assert r.error is None, r.error
    texts = [e["text"] for e in s.events if e["type"] == "trace_printk"]
    return r.action, texts[-1] if texts else ""


def kernel_r0(program: Program) -> int:
    """r0 of the program in the running kernel (as the u32 the test-run reports)."""
    from emulator.kernel import test_run
    from emulator.kernel.raw import _load
    fds = (ctypes.c_int * 1)()
    fd, err, log = _load(program, fds, log=False)
    if fd < 0:
        _, _, log = _load(program, fds, log=True)
        raise AssertionError(f"the kernel refuses the printk program ({os.strerror(err)}): {log[-400:]}")
    try:
        r = test_run(fd, bytes(64))
        assert r.error is None, r.error
        return r.action
    finally:
        os.close(fd)
