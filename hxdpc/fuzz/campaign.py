"""A fuzzing run: generate, run in the kernel and on each target, minimise and record each
mismatch.  benchmarks/fuzz_kernel.py and tests/test_fuzz_kernel.py both call `run`."""
from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional

from hxdpc.fuzz.minimise import Budget, minimise
from hxdpc.fuzz.oracle import Case, run_case
from hxdpc.fuzz.packets import random_packets
from hxdpc.fuzz.progen import Generator
from hxdpc.fuzz.report import Stats, write_reproducer


def verify_targets() -> list[str]:
    """Every registered target (hxdpc.targets), so later targets are fuzzed too."""
    from hxdpc.targets import names
    return names()


@dataclass
class Settings:
    seed: int = 0
    programs: Optional[int] = 50
    seconds: Optional[float] = None
    packets: int = 4
    targets: list[str] = field(default_factory=verify_targets)
    out: str = "fuzz-out"
    minimise_seconds: float = 60.0
    max_reproducers_per_target: int = 5
    printk: bool = True
    max_blocks: int = 14          # blocks per program (3 .. max_blocks)


def signature(diffs: list[str], crash: str) -> str:
    """What makes two mismatches "the same": the kind of the first difference."""
    text = crash.splitlines()[0] if crash else (diffs[0] if diffs else "")
    text = re.sub(r"^(packet|map) \S+: ", r"\1: ", text)
    return re.sub(r"\d+", "N", re.sub(r"\(kernel \w+, target \w+\)", "", text))[:120]


def run(settings: Settings, progress: Optional[Callable[[Stats], None]] = None) -> Stats:
    rng = random.Random(settings.seed)
    gen = Generator(rng, max_blocks=settings.max_blocks, printk=settings.printk)
    stats = Stats()
    seen: set[tuple[str, str]] = set()
    work = tempfile.mkdtemp(prefix="hxdpc-fuzz-")
    try:
        while True:
            if settings.programs is not None and stats.generated >= settings.programs:
                break
            if settings.seconds is not None and stats.elapsed >= settings.seconds:
                break
            case = Case(gen.program(), random_packets(rng, settings.packets))
            stats.generated += 1
            result = run_case(case, os.path.join(work, "case"), settings.targets)
            if not result.accepted:
                stats.rejects[result.reject_reason.rsplit("|", 1)[-1].strip()[:100]] += 1
            else:
                stats.accepted += 1
                stats.packets += len(case.packets)
                stats.coverage |= case.program.keys()
                for tr in result.targets:
                    if tr.mismatch:
                        stats.mismatches[tr.target] += 1
                        _record(case, tr, settings, stats, seen, work)
            if progress:
                progress(stats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return stats


def _record(case: Case, tr, settings: Settings, stats: Stats, seen: set, work: str) -> None:
    sig = (tr.target, signature(tr.diffs, tr.crash))
    per_target = sum(1 for t, _ in seen if t == tr.target)
    if sig in seen or per_target >= settings.max_reproducers_per_target:
        return
    seen.add(sig)
    small, sr = minimise(case, tr, os.path.join(work, "min"), Budget(settings.minimise_seconds))
    d = os.path.join(settings.out, f"{tr.target}-{stats.generated:05d}")
    stats.reproducers.append(write_reproducer(small, sr, d))
