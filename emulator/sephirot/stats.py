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


#: slot counters packed in one int (field 0: slots, field 1 + k: slots of lane k), so the
#: generated code adds a block's constant counts with one addition
FIELD_BITS = 64
FIELD_MASK = (1 << FIELD_BITS) - 1


def pack_slots(slots: int, lanes_used) -> int:
    """The packed counters of one row (`slots` non-empty slots, one slot per lane used)."""
    p = slots
    for lane in lanes_used:
        p += 1 << (FIELD_BITS * (lane + 1))
    return p


def unpack_lanes(lp: int, lanes: int) -> list:
    """Per-lane counts of packed counters (field 0, the slots, left out): at least `lanes`."""
    out = []
    lp >>= FIELD_BITS
    while lp or len(out) < lanes:
        out.append(lp & FIELD_MASK)
        lp >>= FIELD_BITS
    return out


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
        self.lane_pack = 0           # per-lane slot counts, packed (pack_slots, field 0 unused)
        self._stalls: dict = {}      # plain dicts on the per-packet path (see `stalls`, `actions`)
        self.latency_sum = 0
        self.latency_min: Optional[int] = None
        self.latency_max = 0
        self.errors = 0
        self.violations = 0
        self._actions: dict = {}

    def add(self, p: PacketStats, span: int) -> None:
        lane_pack = sum(n << (FIELD_BITS * (k + 1)) for k, n in enumerate(p.lane_slots))
        self.add_run(p.cycles, p.rows, p.slots, lane_pack, p.stalls, p.latency, p.action, p.error, p.violation, span)

    def add_run(self, cycles: int, rows: int, slots: int, lane_pack: int, stalls: dict, latency: int,
                action: int, error: Optional[str], violation: bool, span: int) -> None:
        """add() from the figures themselves (the executor's per-packet path: no record)."""
        self.packets += 1
        self.span = span
        self.cycles += cycles
        self.rows += rows
        self.slots += slots
        self.lane_pack += lane_pack
        if stalls:
            st = self._stalls
            for k, v in stalls.items():
                st[k] = st.get(k, 0) + v
        self.latency_sum += latency
        if self.latency_min is None or latency < self.latency_min:
            self.latency_min = latency
        if latency > self.latency_max:
            self.latency_max = latency
        if error is not None:
            self.errors += 1
        if violation:
            self.violations += 1
        a = self._actions
        a[action] = a.get(action, 0) + 1

    @property
    def stalls(self) -> Counter:
        """Stall cycles per cause over the stream (a copy)."""
        return Counter(self._stalls)

    @property
    def actions(self) -> Counter:
        """Packets per action over the stream (a copy)."""
        return Counter(self._actions)

    @property
    def lane_slots(self) -> list:
        """Slots issued per lane over the stream."""
        return unpack_lanes(self.lane_pack, self.lanes)

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
            "stalls": {c: self._stalls.get(c, 0) for c in STALL_CAUSES},
            "stalls_per_packet": {c: round(self._stalls.get(c, 0) / n, 4) for c in STALL_CAUSES},
            "errors": self.errors,
            "schedule_violations": self.violations,
            "actions": {str(k): v for k, v in sorted(self._actions.items())},
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
