"""Kernel-differential fuzzing: random verifier-acceptable XDP programs (hxdpc.fuzz.progen)
run in the Linux kernel (the oracle) and on every target, compared with verify's rules.

    python3 benchmarks/fuzz_kernel.py [--programs N] [--seconds S] [--packets P]
                                      [--targets interp,fast,sephirot] [--seed K] [--out DIR]

Stops after N programs or S seconds, whichever comes first (default: 100 programs).  Each
distinct mismatch is minimised and written as a reproducer directory under DIR (prog.s,
prog.o, packets.pcap/.hex, MAPS.json, DIFF.txt, REPRODUCE: docs/fuzzing.md).  Progress
(count, rate, ETA) goes to stderr; the summary (programs, accepted, packets, mismatches per
target, time per program) to stdout.  Exit 1 when a mismatch was found, 2 without bpf().
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.kernel import kernel_unavailable_reason  # noqa: E402
from hxdpc.fuzz.campaign import Settings, run, verify_targets  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=None, help="programs to generate (default 100 without --seconds)")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long")
    ap.add_argument("--packets", type=int, default=4, help="packets per program")
    ap.add_argument("--targets", default=",".join(verify_targets()), help="comma-separated targets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-out", help="directory of the reproducers")
    ap.add_argument("--minimise-seconds", type=float, default=60.0, help="time to minimise one mismatch")
    ap.add_argument("--max-blocks", type=int, default=14, help="blocks per program (3 .. this)")
    ap.add_argument("--no-printk", action="store_true", help="no bpf_trace_printk (it writes the host's trace buffer)")
    a = ap.parse_args(argv)
    reason = kernel_unavailable_reason()
    if reason:
        print(f"error: fuzz_kernel: the kernel cannot be the oracle here: {reason}", file=sys.stderr)
        return 2
    targets = [t for t in a.targets.split(",") if t]
    unknown = set(targets) - set(verify_targets())
    if unknown:
        print(f"error: fuzz_kernel: unknown target(s) {', '.join(sorted(unknown))} "
              f"(known: {', '.join(verify_targets())})", file=sys.stderr)
        return 2
    programs = a.programs if a.programs is not None or a.seconds is not None else 100
    settings = Settings(seed=a.seed, programs=programs, seconds=a.seconds, packets=a.packets,
                        targets=targets, out=a.out, minimise_seconds=a.minimise_seconds,
                        printk=not a.no_printk, max_blocks=max(3, a.max_blocks))
    last = [0.0]

    def progress(stats) -> None:
        now = time.monotonic()
        tty = sys.stderr.isatty()
        if now - last[0] >= (2 if tty else 15) or stats.generated == programs:
            last[0] = now
            line = stats.progress_line(programs, a.seconds)
            print("\r" + line if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    stats = run(settings, progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print("\n".join(stats.summary(targets)))
    return 1 if sum(stats.mismatches.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
