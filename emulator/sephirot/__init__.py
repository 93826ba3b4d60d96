"""Sephirot: a cycle-level model of the hXDP core (paper §4) executing an `isa.image.Image`.

Public API: `Sephirot(image, *, timing, clock_mhz, compile_fn, engine, strict)` (an
`emulator.runtime.env.Executor`; `.stats` is the stream's `StreamStats`, `.format_trace(n)` the
pipeline of a traced packet), `Timing`/`DEFAULT_TIMING` (the one latency table) and
`format_stats`.  The emulator never imports the compiler: whoever builds a Sephirot (the
target registry, `hxdpc.targets`) hands it an Image and a `compile_fn` for tail-call targets.
"""
from emulator.sephirot.core import Sephirot
from emulator.sephirot.decode import ScheduleViolation
from emulator.sephirot.stats import PacketStats, StreamStats, format_stats
from emulator.sephirot.timing import DEFAULT_TIMING, Timing

__all__ = ["Sephirot", "ScheduleViolation", "Timing", "DEFAULT_TIMING", "StreamStats", "PacketStats",
           "format_stats"]
