"""Cycle figures of Sephirot: one record per packet, and their aggregate over a stream.

`StreamStats.to_json()` is what `hxdpc emulate --target sephirot --stats-json` writes
(contract: `packets`, `cycles_per_packet` = mean over the back-to-back stream, `clock_mhz`,
`mpps`); `format_stats()` is the `--stats` table for people.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

STALL_CAUSES = ("frame", "load_address", "helper", "data_bus", "branch", "exit_wait", "aps_buffer")
STALL_HELP = {
    "frame": "read a frame not yet received (early processor start)",
    "load_address": "load address produced by the previous row (memory pre-fetch in ID)",
    "helper": "helper module busy (multi-cycle helper)",
    "data_bus": "more than 4 data-bus accesses in a row",
    "branch": "taken-branch penalty",
    "exit_wait": "exit waiting for r0 to commit / pipeline drain",
    "aps_buffer": "APS buffers busy with earlier packets (emission backlog)",
}


@dataclass(slots=True)
class PacketStats:
    """What one packet cost (cycles are clock cycles of the hXDP core)."""
    cycles: int = 0              # APS transfer start -> core free (the stream period share)
    occupancy: int = 0           # core start -> core free
    rows: int = 0                # rows issued
    slots: int = 0               # non-empty lane slots issued
    lane_slots: list = field(default_factory=list)   # per lane
    stalls: dict = field(default_factory=dict)
    latency: int = 0             # APS transfer start -> last frame emitted (or decision)
    frames_in: int = 0
    frames_out: int = 0
    action: int = 0
    error: Optional[str] = None
    violation: bool = False

    def extra(self) -> dict:
        """The RunResult.extra of this packet."""
        d = {"cycles": self.cycles, "occupancy": self.occupancy, "rows": self.rows,
             "latency": self.latency, "frames_in": self.frames_in, "frames_out": self.frames_out}
        if self.stalls:
            d["stalls"] = dict(self.stalls)
        return d


class StreamStats:
    """Aggregate over the packets of one back-to-back stream."""

    def __init__(self, clock_mhz: float, lanes: int):
        self.clock_mhz = clock_mhz
        self.lanes = lanes
        self.packets = 0
        self.span = 0                # cycles from first arrival to the core finishing the last
        self.cycles = 0              # sum of per-packet cycles
        self.rows = 0
        self.slots = 0
        self.lane_slots = [0] * lanes
        self.stalls: Counter = Counter()
        self.latency_sum = 0
        self.latency_min: Optional[int] = None
        self.latency_max = 0
        self.errors = 0
        self.violations = 0
        self.actions: Counter = Counter()

    def add(self, p: PacketStats, span: int) -> None:
        self.packets += 1
        self.span = span
        self.cycles += p.cycles
        self.rows += p.rows
        self.slots += p.slots
        ls = self.lane_slots
        if len(p.lane_slots) > len(ls):
            ls.extend([0] * (len(p.lane_slots) - len(ls)))
        for i, n in enumerate(p.lane_slots):
            ls[i] += n
        if p.stalls:
            st = self.stalls
            for k, v in p.stalls.items():
                st[k] = st.get(k, 0) + v
        lat = p.latency
        self.latency_sum += lat
        if self.latency_min is None or lat < self.latency_min:
            self.latency_min = lat
        if lat > self.latency_max:
            self.latency_max = lat
        if p.error is not None:
            self.errors += 1
        if p.violation:
            self.violations += 1
        a = self.actions
        a[p.action] = a.get(p.action, 0) + 1

    # ---- derived figures ----
    @property
    def cycles_per_packet(self) -> float:
        return self.span / self.packets if self.packets else 0.0

    @property
    def mpps(self) -> float:
        cpp = self.cycles_per_packet
        return self.clock_mhz / cpp if cpp else 0.0

    @property
    def latency_cycles(self) -> float:
        return self.latency_sum / self.packets if self.packets else 0.0

    @property
    def lane_utilisation(self) -> float:
        return self.slots / (self.rows * self.lanes) if self.rows else 0.0

    def to_json(self) -> dict:
        ns = 1000.0 / self.clock_mhz
        n = self.packets or 1
        return {
            "target": "sephirot",
            "packets": self.packets,
            "clock_mhz": self.clock_mhz,
            "cycles_per_packet": round(self.cycles_per_packet, 4),
            "mpps": round(self.mpps, 4),
            "total_cycles": self.span,
            "core_cycles_per_packet": round(self.cycles / n, 4),
            "rows_per_packet": round(self.rows / n, 4),
            "latency_cycles": round(self.latency_cycles, 4),
            "latency_ns": round(self.latency_cycles * ns, 2),
            "latency_min_cycles": self.latency_min or 0,
            "latency_max_cycles": self.latency_max,
            "lane_utilisation": round(self.lane_utilisation, 4),
            "lane_utilisation_per_lane": [round(s / self.rows, 4) if self.rows else 0.0
                                          for s in self.lane_slots],
            "stalls": {c: self.stalls.get(c, 0) for c in STALL_CAUSES},
            "stalls_per_packet": {c: round(self.stalls.get(c, 0) / n, 4) for c in STALL_CAUSES},
            "errors": self.errors,
            "schedule_violations": self.violations,
            "actions": {str(k): v for k, v in sorted(self.actions.items())},
        }


def format_stats(s: StreamStats) -> str:
    """A table for people (`hxdpc emulate --stats`)."""
    j = s.to_json()
    lines = [
        f"Sephirot @ {j['clock_mhz']} MHz, {j['packets']} packets back-to-back",
        f"  cycles/packet     {j['cycles_per_packet']:>10.2f}   ({j['total_cycles']} cycles in all)",
        f"  throughput        {j['mpps']:>10.2f}   Mpps",
        f"  rows/packet       {j['rows_per_packet']:>10.2f}",
        f"  latency           {j['latency_cycles']:>10.2f}   cycles = {j['latency_ns']:.1f} ns"
        f" (min {j['latency_min_cycles']}, max {j['latency_max_cycles']})",
        f"  lane utilisation  {100 * j['lane_utilisation']:>9.1f} %   per lane: "
        + " ".join(f"{100 * u:.0f}%" for u in j["lane_utilisation_per_lane"]),
        "  stalls (cycles, per packet):",
    ]
    for c in STALL_CAUSES:
        lines.append(f"    {c:<13} {j['stalls'][c]:>8}  {j['stalls_per_packet'][c]:>7.2f}   {STALL_HELP[c]}")
    if j["errors"] or j["schedule_violations"]:
        lines.append(f"  errors {j['errors']}, schedule violations {j['schedule_violations']}")
    return "\n".join(lines)
