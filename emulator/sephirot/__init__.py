"""Sephirot: a cycle-level model of the hXDP core (paper §4) executing an `isa.image.Image`.

Public API: `Sephirot(image, *, timing, clock_mhz, compile_fn, engine, strict)` (an
`emulator.runtime.env.Executor`; `.stats` is the stream's `StreamStats`, `.format_trace(n)` the
pipeline of a traced packet), `Timing`/`DEFAULT_TIMING` (the one latency table),
`format_stats`, and `make_executor(program)` for `Session(executor="sephirot")`.
"""
from emulator.sephirot.core import Sephirot
from emulator.sephirot.decode import ScheduleViolation
from emulator.sephirot.stats import PacketStats, StreamStats, format_stats
from emulator.sephirot.timing import DEFAULT_TIMING, Timing

__all__ = ["Sephirot", "ScheduleViolation", "Timing", "DEFAULT_TIMING", "StreamStats", "PacketStats",
           "format_stats", "make_executor", "factory"]


def _compiler():
    """`compile(program) -> Image` of the toolchain, imported lazily: the emulator never
    imports compiler passes itself; the target glue (hxdpc.targets) or the compiler's
    public entry point hands it only Images."""
    try:
        from hxdpc import targets
        if hasattr(targets, "compile_image"):
            return targets.compile_image
    except ImportError:
        pass
    from hxdpc.compiler import compile_program
    return lambda program: compile_program(program).image


def make_executor(program, **kw):
    """Sephirot for a loaded program, compiled with default options (Session's
    `executor="sephirot"`; keyword arguments go to Sephirot)."""
    try:
        from hxdpc.targets import make_sephirot_executor
        if not kw:
            return make_sephirot_executor(program)
    except ImportError:
        pass
    compile_fn = _compiler()
    return Sephirot(compile_fn(program), compile_fn=compile_fn, **kw)


def factory(program):
    """The conformance runner's factory (emulator.conformance TARGETS['sephirot'])."""
    return make_executor(program)
