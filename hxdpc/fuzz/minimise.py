"""Shrink a mismatching case while it still mismatches and the kernel still accepts it.

The prologue stays whole (see _item_candidates).  Greedy passes until none makes progress (or the budget runs out): keep only the packets up
to the first differing one, then that packet alone; delete whole blocks, then single
instructions (labels stay, so jumps still resolve); drop map preset entries; truncate the
packets.  Every candidate goes through the oracle again, so "still accepted" is the
kernel's verifier's word.
"""
from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from hxdpc.fuzz.build import Label
from hxdpc.fuzz.oracle import Case, TargetResult, mismatches

ETH_HLEN = 14


@dataclass
class Budget:
    seconds: float = 60.0
    tries: int = 400

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def spend(self) -> bool:
        self.tries -= 1
        return self.tries >= 0 and time.monotonic() < self.deadline


def first_packet(result: TargetResult) -> Optional[int]:
    for d in result.diffs:
        m = re.match(r"packet (\d+):", d)
        if m:
            return int(m.group(1))
    return None


def _packet_candidates(case: Case, result: TargetResult) -> Iterator[Case]:
    n = first_packet(result)
    if n is not None and len(case.packets) > 1:
        yield Case(case.program, [case.packets[n]])
        if n + 1 < len(case.packets):
            yield Case(case.program, case.packets[:n + 1])
    for k, p in enumerate(case.packets):
        for size in sorted({ETH_HLEN, len(p) // 2, len(p) * 3 // 4, len(p) - 1}):
            if ETH_HLEN <= size < len(p):
                yield Case(case.program, case.packets[:k] + [p[:size]] + case.packets[k + 1:])


def _block_candidates(case: Case) -> Iterator[Case]:
    blocks = case.program.blocks
    for k in range(1, len(blocks) - 1):       # the prologue and epilogue stay as blocks
        prog = copy.copy(case.program)
        prog.blocks = blocks[:k] + blocks[k + 1:]
        yield Case(prog, case.packets)


def _item_candidates(case: Case) -> Iterator[Case]:
    prog = case.program
    for b, block in enumerate(prog.blocks):
        if b == 0:
            continue    # the prologue initialises the stack: privileged programs may read it
            # uninitialised, and the kernel's garbage would then differ from any target's
        for k, it in enumerate(block):
            if isinstance(it, Label):
                continue
            p = copy.copy(prog)
            p.blocks = prog.blocks[:b] + [block[:k] + block[k + 1:]] + prog.blocks[b + 1:]
            yield Case(p, case.packets)
    for s, sub in enumerate(prog.subprogs):
        for k, it in enumerate(sub.items[:-1]):      # keep the exit
            if isinstance(it, Label):
                continue
            p = copy.copy(prog)
            p.subprogs = list(prog.subprogs)
            p.subprogs[s] = type(sub)(sub.name, sub.items[:k] + sub.items[k + 1:])
            yield Case(p, case.packets)


def _preset_candidates(case: Case) -> Iterator[Case]:
    for name, entries in case.program.preset.items():
        for k in range(len(entries)):
            p = copy.copy(case.program)
            p.preset = dict(p.preset)
            p.preset[name] = entries[:k] + entries[k + 1:]
            yield Case(p, case.packets)


PASSES: list[Callable] = [lambda c, r: _packet_candidates(c, r), lambda c, r: _block_candidates(c),
                          lambda c, r: _item_candidates(c), lambda c, r: _preset_candidates(c)]


def minimise(case: Case, result: TargetResult, workdir: str,
             budget: Optional[Budget] = None) -> tuple[Case, TargetResult]:
    """The smallest case found that still mismatches on `result.target`, with its result."""
    budget = budget or Budget()
    progress = True
    while progress:
        progress = False
        for make in PASSES:
            for cand in make(case, result):
                if not budget.spend():
                    return case, result
                r = mismatches(cand, workdir, result.target)
                if r is not None:
                    case, result, progress = cand, r, True
                    break
    return case, result
