"""Run one generated program in the kernel and on targets, compared with verify's rules.

Each run writes the object, the packets (pcap) and the maps preset (MAPS.json) into a
directory and runs `hxdpc verify`'s Verifier on them for each target: the kernel
(BPF_PROG_TEST_RUN, maps read back) is the oracle, emulator.kernel.compare decides what
differs.  A program the kernel's verifier refuses is *rejected* (not a mismatch).
"""
from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Optional

from emulator.kernel.compare import FAILED
from isa.errors import InputError
from hxdpc.fuzz.objfile import elf_with_maps
from hxdpc.fuzz.packets import write_pcap
from hxdpc.fuzz.progen import FuzzProgram

REFUSED = ("refused to load", "the kernel refused")


@dataclass
class Case:
    """A program with its packets: what the oracle runs and a reproducer holds."""
    program: FuzzProgram
    packets: list[bytes]


@dataclass
class TargetResult:
    target: str
    diffs: list[str] = field(default_factory=list)     # "packet 3: action: kernel ..., target ..."
    crash: str = ""                                     # a Python exception on the target side

    @property
    def mismatch(self) -> bool:
        return bool(self.diffs or self.crash)


@dataclass
class CaseResult:
    accepted: bool
    reject_reason: str = ""
    targets: list[TargetResult] = field(default_factory=list)


def write_case(case: Case, directory: str) -> dict[str, str]:
    """prog.o, packets.pcap and MAPS.json of a case; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {"prog": os.path.join(directory, "prog.o"), "pcap": os.path.join(directory, "packets.pcap"),
             "maps": os.path.join(directory, "MAPS.json")}
    with open(paths["prog"], "wb") as f:
        f.write(elf_with_maps(case.program.object_code()))
    write_pcap(paths["pcap"], case.packets)
    with open(paths["maps"], "w") as f:
        json.dump(case.program.preset, f, indent=1, sort_keys=True)
    return paths


def run_target(paths: dict[str, str], target: str) -> TargetResult:
    """verify's comparison of the kernel and one target of the registry (hxdpc.targets).
    InputError (the kernel refuses the program) propagates."""
    from hxdpc.commands.verify import Verifier, VerifyInputs
    inp = VerifyInputs(paths["prog"], paths["pcap"], paths["maps"], target)
    out = TargetResult(target)
    try:
        report = Verifier(inp).run()
    except InputError as e:
        if any(r in str(e) for r in REFUSED):
            raise
        out.crash = f"InputError: {e}"
        return out
    except Exception as e:      # a target must never raise: record it as a mismatch
        out.crash = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=6))
        return out
    for o in report.outcomes:
        if o.status == FAILED:
            out.diffs += [f"{o.item}: {d}" for d in o.diffs]
    return out


def run_case(case: Case, directory: str, targets: Optional[list[str]] = None) -> CaseResult:
    """The case on every target named (registry names; default: all of them)."""
    from hxdpc.targets import names
    targets = names() if targets is None else targets
    paths = write_case(case, directory)
    result = CaseResult(accepted=True)
    for t in targets:
        try:
            result.targets.append(run_target(paths, t))
        except InputError as e:
            return CaseResult(False, reject_reason=str(e))
    return result


def mismatches(case: Case, directory: str, target: str) -> Optional[TargetResult]:
    """The target's mismatch when the kernel accepts the case and they differ, else None."""
    try:
        r = run_target(write_case(case, directory), target)
    except InputError:
        return None
    return r if r.mismatch else None
