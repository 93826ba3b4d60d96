"""Malformed inputs for `hxdpc emulate`: MAPS/CTX/FIB JSON files and mutated pcap/pcapng
captures (seeds: sample_programs' own), each run in-process; bad input must end with exit
0, 1 or 2, exit 2 with exactly one line on stderr, never a traceback.

    python3 benchmarks/fuzz_inputs.py [--json N] [--pcaps N] [--seed K] [--out DIR]

Files that break the rule are kept under DIR (with the arguments in DIR/FAILURES.txt);
exit 1 when there is one.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hxdpc.fuzz.inputs import cases, run_emulate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=int, default=210, help="malformed JSON files (MAPS, CTX, FIB in turn)")
    ap.add_argument("--pcaps", type=int, default=320, help="mutated captures")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-inputs-out", help="where failing inputs are kept")
    a = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="hxdpc-fuzz-inputs-")
    codes: Counter = Counter()
    failures = []
    t0 = time.monotonic()
    try:
        for n, (kind, path, args) in enumerate(cases(work, a.json, a.pcaps, random.Random(a.seed)), 1):
            o = run_emulate(args)
            codes[(kind, o.exit_code)] += 1
            if o.problem:
                out = Path(a.out)
                out.mkdir(parents=True, exist_ok=True)
                kept = out / Path(path).name
                shutil.copy(path, kept)
                failures.append(f"{kept}: {o.problem}: hxdpc {' '.join(args)}")
            if n % 50 == 0:
                print(f"{n} inputs, {len(failures)} failing, {n / (time.monotonic() - t0):.1f}/s",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for (kind, code), n in sorted(codes.items()):
        print(f"{kind}: exit {code} x{n}")
    print(f"{sum(codes.values())} inputs in {time.monotonic() - t0:.1f} s, {len(failures)} breaking the rule")
    if failures:
        Path(a.out, "FAILURES.txt").write_text("\n".join(failures) + "\n")
        print("\n".join(failures[:20]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
