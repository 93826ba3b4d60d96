"""Comparing a target's results with the kernel's: per packet, per map, and the rules that
make a difference *skipped* rather than *failed* (contract, `verify`): results that may
depend on the real clock or random numbers, LRU maps past their first eviction, and the
kernel's FIB where the namespace could not reproduce `--fib`.  Everything else that differs
fails.  Pure functions over plain values so they are tested without a kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from isa.helpers import number as helper_number
from isa.insn import spec_or_none
from isa.opcodes import Kind
from isa.uapi import ACTION_NAMES

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


def action_name(a: Optional[int]) -> str:
    if a is None:
        return "no result"
    return f"{ACTION_NAMES.get(a, f'UNKNOWN({a})')} ({a})"


@dataclass
class Outcome:
    """One compared item (a packet or a map): its status and the readable differences."""
    item: str
    status: str = PASSED
    diffs: list[str] = field(default_factory=list)
    reason: str = ""          # why skipped

    def lines(self) -> list[str]:
        if self.status == SKIPPED:
            out = [f"{self.item}: skipped: {self.reason}"]
            return out + [f"{self.item}:   (difference) {d}" for d in self.diffs]
        return [f"{self.item}: {d}" for d in self.diffs]


def first_difference(a: bytes, b: bytes) -> Optional[int]:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def bytes_diff(what: str, kernel: bytes, target: bytes) -> Optional[str]:
    """One line describing how two byte strings differ (None when equal)."""
    if kernel == target:
        return None
    off = first_difference(kernel, target)
    kb = f"{kernel[off]:02x}" if off < len(kernel) else "end"
    tb = f"{target[off]:02x}" if off < len(target) else "end"
    return (f"{what}: kernel {len(kernel)} bytes, target {len(target)} bytes, first difference "
            f"at byte {off} (kernel {kb}, target {tb})")


@dataclass
class Side:
    """What one executor produced for one packet."""
    action: Optional[int]
    data: bytes = b""
    meta: bytes = b""
    error: Optional[str] = None


def packet_diffs(kernel: Side, target: Side) -> list[str]:
    """Every difference between the kernel's and the target's result for one packet."""
    if kernel.error is not None:        # the test-run refused the frame
        if target.error is not None:
            return []
        return [f"the kernel's test-run refuses the frame ({kernel.error}); the target ran it "
                f"and returned {action_name(target.action)}"]
    if target.error is not None:
        return [f"target ended with an error ({target.error}); kernel returned {action_name(kernel.action)}"]
    out = []
    if kernel.action != target.action:
        out.append(f"action: kernel {action_name(kernel.action)}, target {action_name(target.action)}")
    for what, k, t in (("data", kernel.data, target.data), ("meta", kernel.meta, target.meta)):
        d = bytes_diff(what, k, t)
        if d:
            out.append(d)
    return out


def map_diffs(name: str, kernel: list[dict], target: Optional[list[dict]], limit: int = 8) -> list[str]:
    """Differences between two dumps of one map (MAPS.json entry lists)."""
    if target is None:
        return [] if not kernel else [f"the target has no map {name!r}; the kernel's holds {len(kernel)} entries"]
    kd = {e["key"]: e.get("value") for e in kernel}
    td = {e["key"]: e.get("value") for e in target}
    out = []
    for key in sorted(set(kd) | set(td)):
        kv, tv = kd.get(key), td.get(key)
        if kv == tv:
            continue
        if kv is None:
            out.append(f"key {key}: only the target has it (value {tv})")
        elif tv is None:
            out.append(f"key {key}: only the kernel has it (value {kv})")
        elif isinstance(kv, str) and isinstance(tv, str) and _is_hex(kv) and _is_hex(tv):
            out.append(bytes_diff(f"key {key}: value", bytes.fromhex(kv), bytes.fromhex(tv))
                       + f": kernel {kv}, target {tv}")
        else:
            out.append(f"key {key}: kernel {kv!r}, target {tv!r}")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more differing keys"]
    return out


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
        return True
    except ValueError:
        return False


TAIL_CALL = helper_number("tail_call")


def program_helpers(program, programs=()) -> set[int]:
    """Helper ids a run of `program` may call: its own code (subprograms are linked in) and,
    when it tail-calls, every program of the object (any may sit in a prog_array)."""
    def calls(p) -> set[int]:
        return {i.imm for i in p.insns if (s := spec_or_none(i)) is not None and s.kind == Kind.CALL}
    out = calls(program)
    if TAIL_CALL in out:
        for p in programs:
            out |= calls(p)
    return out


class LruWatch:
    """Finds the first packet after which an LRU map's contents may differ by eviction.

    The kernel's LRU evicts by its own per-CPU free lists (possibly before the map is full),
    an emulator by its model; after each packet the keys each side *removed* are compared:
    when they differ, one side evicted something the other kept, and from that packet on the
    map (and what the program derives from it) is past its first eviction.  Keys added on one
    side only are not excused: that is a plain difference.
    """

    def __init__(self, names: list[str]):
        self.prev: dict[str, tuple[set, set]] = {n: (set(), set()) for n in names}
        self.evicted_at: dict[str, int] = {}

    def update(self, index: int, kernel_keys: dict[str, set], target_keys: dict[str, set]) -> None:
        for name, (pk, pt) in self.prev.items():
            k, t = kernel_keys.get(name, set()), target_keys.get(name, set())
            if name not in self.evicted_at and (pk - k) != (pt - t):
                self.evicted_at[name] = index
            self.prev[name] = (k, t)

    def reason(self, map_name: Optional[str] = None) -> str:
        hits = {n: i for n, i in self.evicted_at.items() if map_name in (None, n)}
        if not hits:
            return ""
        return "; ".join(f"LRU map {n!r} past its first eviction (packet {i})" for n, i in sorted(hits.items()))


def excuse(diffs: list[str], reasons: list[str]) -> tuple[str, str]:
    """(status, reason) for an item: passed if no differences, skipped if a reason excuses them."""
    if not diffs:
        return PASSED, ""
    live = [r for r in reasons if r]
    if live:
        return SKIPPED, "; ".join(live)
    return FAILED, ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        return f"{self.count(PASSED)} passed, {self.count(FAILED)} failed, {self.count(SKIPPED)} skipped"

    @property
    def exit_code(self) -> int:
        return 1 if self.count(FAILED) else 0
