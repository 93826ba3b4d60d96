"""Instructions per second of the reference interpreter and the fast path, and their ratio.

    python3 benchmarks/bench_interp.py [--seconds S]

Programs (no runtime around them, so the figures are the executors' own):
- alu_loop: a counted loop of 64-bit/32-bit ALU work and a conditional branch;
- stack: stores and loads through r10 in a loop;
- packet: an XDP-like parse (ctx loads through a hook region, bounds checks, byte and
  half-word loads, a MAC swap with stores) of a 64-byte packet, one run per packet;
- calls: a BPF-to-BPF call in a loop;
- empty: `r0 = 2; exit`, i.e. the per-run overhead.
Figures are CPU time (time.process_time), so a busy machine slows them less than wall
time; the line "python" is a plain Python loop of one addition, for scale.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from isa import layout  # noqa: E402
from emulator.runtime.env import Env  # noqa: E402
from emulator.interp.fastpath import FastPath  # noqa: E402
from emulator.interp.interpreter import Interpreter  # noqa: E402
from emulator.runtime.memory import Region, RegionHook  # noqa: E402
from isa.asm import assemble  # noqa: E402
from isa.program import Program  # noqa: E402

ALU_LOOP = """
    mov %r0, 0
    mov %r1, 1000
loop:
    add %r0, %r1
    mul %r0, 3
    xor32 %r0, 0x5a5a
    rsh %r0, 1
    sub %r1, 1
    jne %r1, 0, loop
    exit
"""

STACK = """
    mov %r1, 500
loop:
    stxdw [%r10-8], %r1
    ldxdw %r2, [%r10-8]
    stxw [%r10-16], %r2
    ldxw %r3, [%r10-16]
    add %r0, %r3
    sub %r1, 1
    jne %r1, 0, loop
    exit
"""

PACKET = """
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, drop
    ldxh %r5, [%r2+12]
    jne %r5, 0x8, pass
    mov %r4, %r2
    add %r4, 34
    jgt %r4, %r3, drop
    ldxb %r5, [%r2+23]
    jne %r5, 17, pass
    ldxh %r6, [%r2+0]
    ldxh %r7, [%r2+6]
    stxh [%r2+0], %r7
    stxh [%r2+6], %r6
    ldxw %r6, [%r2+2]
    ldxw %r7, [%r2+8]
    stxw [%r2+2], %r7
    stxw [%r2+8], %r6
    mov %r0, 3
    exit
pass:
    mov %r0, 2
    exit
drop:
    mov %r0, 1
    exit
"""

CALLS = """
    mov %r6, 300
loop:
    mov %r1, %r6
    call local f
    add %r7, %r0
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, %r7
    exit
f:
    mov %r0, %r1
    lsh %r0, 1
    exit
"""

EMPTY = "mov %r0, 2\nexit"


class Ctx(RegionHook):
    def __init__(self, n: int):
        self.v = {0: layout.PACKET_BASE, 4: layout.PACKET_BASE + n}

    def load(self, off, size):
        return self.v.get(off, 0)


def packet_env() -> Env:
    env = Env()
    pkt = bytearray(64)
    pkt[12:14] = b"\x08\x00"
    pkt[23] = 17
    env.mem.add(Region("packet", layout.PACKET_BASE, pkt, True, "packet"))
    env.mem.add(Region("ctx", layout.CTX_BASE, bytearray(24), False, "ctx", Ctx(64)))
    return env


PROGRAMS = [("alu_loop", ALU_LOOP, Env, 0), ("stack", STACK, Env, 0),
            ("packet", PACKET, packet_env, layout.CTX_BASE), ("calls", CALLS, Env, 0),
            ("empty", EMPTY, Env, 0)]


def measure(executor, env, r1: int, seconds: float) -> tuple[float, float]:
    """(instructions per second, runs per second) over about `seconds` of CPU time."""
    steps = runs = 0
    t0 = time.process_time()
    while True:
        for _ in range(20):
            res = executor.run(env, r1)
            assert res.error is None, res.error
            steps += res.steps
            runs += 1
        dt = time.process_time() - t0
        if dt >= seconds:
            return steps / dt, runs / dt


def python_baseline(seconds: float) -> float:
    n = 0
    x = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        for _ in range(100_000):
            x = (x + 3) & 0xFFFFFFFFFFFFFFFF
        n += 100_000
    return n / (time.process_time() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU time per figure")
    args = ap.parse_args(argv)
    print(f"{'program':10} {'steps/run':>9} {'interp insn/s':>14} {'fast insn/s':>14} {'ratio':>7} "
          f"{'interp runs/s':>14} {'fast runs/s':>12}")
    for name, text, make_env, r1 in PROGRAMS:
        prog = Program(name, assemble(text))
        steps = Interpreter(prog).run(make_env(), r1).steps
        i_ips, i_rps = measure(Interpreter(prog), make_env(), r1, args.seconds)
        f_ips, f_rps = measure(FastPath(prog), make_env(), r1, args.seconds)
        print(f"{name:10} {steps:9d} {i_ips:14,.0f} {f_ips:14,.0f} {f_ips / i_ips:6.1f}x "
              f"{i_rps:14,.0f} {f_rps:12,.0f}")
    print(f"python: {python_baseline(args.seconds):,.0f} additions/s (a plain loop, for scale)")


if __name__ == "__main__":
    main()
