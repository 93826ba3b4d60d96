"""Sephirot's timing: ONE table of latencies, each with where the number comes from.

Calibration changes numbers here, never code (architecture rule).  Sources:
  [§4.1.x]/[§4.2]/[§4.3]/[§5.2.x] = sections of the OSDI'20 hXDP paper
  (../shared/reference/hxdp-artifacts/OSDI20_hXDP.txt), [cal] = calibrated on the paper's
  microbenchmarks (docs/sephirot.md has the table ours vs paper), [est] = our estimate of a
  hardware unit the paper does not time (reasoning given).

Cycle numbering (core.py): a row issued at cycle t is in IF at t, ID at t+1, IE at t+2,
commit at t+3.  A result written in IE is forwarded (same lane) from t+3 on; its value is
*ready* for a consumer stage from cycle ``t + 2 + latency`` with latency 1 for the ALU and
the memory unit, ``helper_cycles`` for a helper.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from isa import helpers as HT
from isa.helpers import Latency

# Which helpers the helper module waits for the whole packet for (they read or move packet
# bytes, no frame tracking inside a helper [est]) and each helper's latency class are facts
# of the helper table, isa/helpers.py (`whole_packet`, `latency`); the cycles are here.


@dataclass(frozen=True)
class Timing:
    # ---- clock and packet interface ----
    clock_mhz: float = 156.25
    """[§4.3] NetFPGA-SUME reference NIC clock."""
    frame_bytes: int = 32
    """[§4.3] frame size; [§4.1.1] the PIQ receives one frame per clock."""
    data_bus_ports: int = 4
    """[§4.1.2, §4.1.5] the APS and the maps module give 4 parallel accesses (one per lane);
    a row with more memory accesses (lanes > 4) takes one more cycle per extra group of 4."""

    # ---- core pipeline ----
    start_cycles: int = 1
    """[cal] cycles from core start (the first frame is in the APS, one cycle after the APS
    began moving it, §4.1.1) to the first IF: the APS start signal, during which the
    register file and stack self-reset (§4.2).  XDP_DROP with early exit = 1 (first frame)
    + 1 + 1 row = 3 cycles/packet = 52.1 Mpps at 156.25 MHz (paper: 52)."""
    stages_after_if: int = 3
    """[§4.1.3, §4.2] ID, IE, commit: 'save the 3 remaining clock cycles'."""
    regfile_readback: int = 1
    """[cal] a plain `exit` reads r0 from the register file the cycle after its writer
    committed (the control unit has no cross-lane forwarding, §4.2 'Setting a value to a
    register always needs to traverse the entire Sephirot pipeline').  `r0 = 1; exit`
    = 1 (frame) + 1 (start) + IF..commit (4) + 1 = 7 cycles = 22.3 Mpps (paper: 22 without early exit)."""
    load_address_stall: bool = False
    """[§4.2] off: 'per-lane result forwarding ... allows the scheduling back-to-back of
    instructions on a single lane, even if the result of the first instruction is needed by
    the second one' -- no stall, also for a load's address.  On: loads pre-fetch memory in
    ID (§4.1.3), so a load whose address was written by the previous row waits 1 cycle
    (a what-if for slower memory paths)."""
    branch_taken_penalty: int = 0
    """[cal] extra cycles after a taken branch.  Branches resolve in the control unit; the
    next row is the target with no bubble in our calibration (the firewall figure, §5.2.1,
    leaves no room for a 2-cycle flush per taken branch)."""
    early_exit: bool = True
    """[§4.2] exit recognised in IF: a parametrised exit ends the packet in its IF cycle.
    When False an exit ends at the commit of its row (+ readback for plain exit)."""
    early_start: bool = True
    """[§4.2] the core starts when the first frame is in the APS and pauses only when it
    reads a frame not yet received.  When False it waits for the whole packet."""
    tail_call_cycles: int = 1
    """[est] switching instruction-memory base for a tail call (the helper returns, the
    fetch restarts at row 0 of the target: one refetch cycle)."""

    # ---- helper functions module (§4.1.4) ----
    default_helper_cycles: int = 1
    """[est] a helper that only reads/writes a few registers or APS fields (redirect,
    get_smp_processor_id, ktime, prandom) completes in the IE cycle, like an ALU op."""
    map_lookup_cycles: int = 2
    """[§5.2.2] hash of the key + one map-memory read: 'constant ... for keys of up to 32B'
    (one 256-bit access); one cycle for hashing, one for the read."""
    map_update_cycles: int = 3
    """[est] hash + read (find the slot) + write."""
    map_key_line_bytes: int = 32
    """[§5.2.2] keys up to 32 B are read in one access; each further 32 B adds a cycle."""
    bytes_per_cycle: int = 32
    """[est] helpers walking a buffer (csum_diff, load/store_bytes) move one 32-byte frame
    per cycle, the APS/data-bus width."""
    fib_lookup_cycles: int = 4
    """[est] LPM route + neighbour lookup: a few dependent map-memory reads."""
    helper_cycles: dict = field(default_factory=lambda: {
        Latency.MAP_DELETE: 3, Latency.ADJUST: 1, Latency.REDIRECT_MAP: 2,
    })
    """[est] fixed latencies of the helper table's latency classes not covered by the rules
    above: delete = hash + read + write; redirect_map = one map read; adjust_* move APS
    pointers (the scratch memory / difference buffer make them O(1), §4.1.2)."""

    # ---- watchdog ----
    max_rows: int = 1_000_000
    """[est] rows executed per packet before the emulator stops a run (the interpreter's
    instruction budget, emulator.interp.interpreter.DEFAULT_BUDGET, in rows)."""

    def with_(self, **kw) -> "Timing":
        return replace(self, **kw)


DEFAULT_TIMING = Timing()


def buffer_cycles(t: Timing, nbytes: int) -> int:
    return max(1, -(-max(0, nbytes) // t.bytes_per_cycle))


def helper_latency(t: Timing, num: int, args: tuple, key_size: int = 0) -> int:
    """Cycles the helper module needs for helper `num` with these arguments (>= 1).

    `key_size` is the key size of the map argument (r1) when it is a map, else 0."""
    h = HT.get(num)
    cls = h.latency if h is not None else Latency.DEFAULT
    if cls == Latency.MAP_LOOKUP:
        extra = max(0, -(-key_size // t.map_key_line_bytes) - 1)
        return t.map_lookup_cycles + extra
    if cls == Latency.MAP_UPDATE:
        extra = max(0, -(-key_size // t.map_key_line_bytes) - 1)
        return t.map_update_cycles + extra
    if cls == Latency.BUFFER:
        return buffer_cycles(t, sum(args[i] & 0xFFFFFFFF for i in h.size_args))
    if cls == Latency.FIB:
        return t.fib_lookup_cycles
    return t.helper_cycles.get(cls, t.default_helper_cycles)


def latency_needs_key(num: int) -> bool:
    """The latency depends on the key size of the map in r1 (lookup/update/delete)."""
    h = HT.get(num)
    return h is not None and h.latency in (Latency.MAP_LOOKUP, Latency.MAP_UPDATE, Latency.MAP_DELETE)


def latency_needs_args(num: int) -> bool:
    """The latency depends on the call's arguments (buffer lengths): known only at run time."""
    h = HT.get(num)
    return h is not None and h.latency == Latency.BUFFER


def waits_whole_packet(num: int) -> bool:
    h = HT.get(num)
    return h is not None and h.whole_packet


# ---- call and exit timing: both engines (core.py, fast.py) take them from here

HELPER_ISSUE_TO_START = 2
"""A helper starts in its row's IE stage, two cycles after issue."""


@dataclass(frozen=True)
class CallTiming:
    """Cycles, relative to the call row's issue cycle, of a helper call's effects."""
    ready: int                 # r0 ready and the helper module free again
    commit: Optional[int]      # every store in the difference buffer from then (packet helpers), or None


def call_timing(t: Timing, num: int, args: tuple, key_size: int = 0) -> CallTiming:
    ready = HELPER_ISSUE_TO_START + helper_latency(t, num, args, key_size)
    return CallTiming(ready, ready + 1 if waits_whole_packet(num) else None)


@dataclass(frozen=True)
class ExitTiming:
    """An exit issued at cycle t resolves at max(t + offset, r0 ready + readback)."""
    offset: int
    readback: Optional[int]    # plain exit: r0 is read back from the register file; None: no wait


def exit_timing(t: Timing, plain: bool) -> ExitTiming:
    return ExitTiming(0 if t.early_exit else t.stages_after_if, t.regfile_readback if plain else None)
