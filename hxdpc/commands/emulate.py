"""`hxdpc emulate`: run every packet of a capture through a program on a target.

Packets run in order with maps persisting between them (emulator.runtime.Session).  Outputs:
the results JSONL (--results), one pcap per action (--out-dir), the final maps (--dump-maps),
captured perf/ringbuf/trace_printk events (--events), figures (--stats, --stats-json).  A
damaged capture stops the run at the damaged packet: everything before it is written
consistently, then the command exits 2 naming the file and packet.  No output may be an input
(hxdpc.commands.outputs, checked before anything is written).  SIGINT/SIGTERM stop the run
between packets (hxdpc.commands.interrupt): whole records, the maps reached, exit 130/143.
A one-line summary (packets, actions, errors, the first error) always ends on stderr.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Optional

import click

from hxdpc import __version__
from hxdpc import targets as T
from hxdpc.commands.interrupt import Interrupted, NoSignals, StopSignals
from hxdpc.commands.outputs import OutputFile, check_outputs, write_text
from isa.errors import InputError, read_json

DEFAULT_CLOCK_MHZ = 156.25
PROGRESS_MIN_BYTES = 1 << 20




def _open_out(path: Optional[str]) -> Optional[OutputFile]:
    return OutputFile(path) if path is not None else None


def _write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


class ClockMHz(click.ParamType):
    """A clock frequency: a finite number above 0 (0 divided, negatives gave -0.21 Mpps)."""

    name = "MHZ"

    def convert(self, value, param, ctx):
        try:
            f = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(f) and f > 0):
            self.fail(f"{value!r}: the clock frequency must be a finite number of MHz above 0", param, ctx)
        return f


def emulate_io(prog, pcap, maps_path=None, ctx_path=None, fib_path=None, results=None, out_dir=None,
               dump_maps=None, events=None, stats_json=None) -> None:
    """Refuse (exit 2) an output that is an input, before anything is written."""
    from isa.imagefmt import sidecar_path
    sidecar = sidecar_path(prog)
    check_outputs({"PROG": prog, "the map configuration of PROG": sidecar if sidecar.exists() else None,
                   "--pcap": pcap, "--maps": maps_path, "--ctx": ctx_path, "--fib": fib_path},
                  {"--results": results, "--dump-maps": dump_maps, "--events": events,
                   "--stats-json": stats_json},
                  out_dir=("--out-dir", out_dir) if out_dir else None)


class Stats:
    """Counts for --stats / --stats-json (only deterministic figures go to the JSON)."""

    def __init__(self):
        self.packets = 0
        self.actions: dict[str, int] = {}
        self.errors = 0
        self.refused = 0
        self.steps = 0
        self.figures: Optional[dict] = None        # the target's own (Target.figures)
        self.figures_text = ""
        self.trace = ""
        self.loop_seconds = 0.0
        self.first_error: Optional[tuple[int, str]] = None     # (packet index, reason)

    def add(self, r) -> None:
        self.packets += 1
        self.actions[r.action_name] = self.actions.get(r.action_name, 0) + 1
        self.errors += r.error is not None and r.ran
        if r.error is not None and r.ran and self.first_error is None:
            self.first_error = (r.index, r.error)
        self.refused += not r.ran
        self.steps += int(r.extra.get("steps", 0) or 0)

    def as_json(self, target: str) -> dict:
        """Our counts over the target's figures (its `actions` by number give way to ours by name)."""
        ran = max(self.packets - self.refused, 1)
        out = {"packets": self.packets, "actions": dict(sorted(self.actions.items())),
               "errors": self.errors, "refused": self.refused, "target": target,
               "insns_per_packet": round(self.steps / ran, 3), "version": __version__}
        if self.figures is None:
            return out
        return dict(sorted({**self.figures, **out}.items()))


def summary(st: Stats, interrupted: Optional[Interrupted] = None) -> str:
    """The line emulate always ends with on stderr: packets, actions, errors, the first error."""
    actions = ", ".join(f"{k} {v}" for k, v in sorted(st.actions.items())) or "none"
    head = f"emulate: interrupted by {interrupted.name} after " if interrupted else "emulate: "
    line = f"{head}{st.packets} packets ({actions}), {st.errors} ended by an error"
    if st.refused:
        line += f", {st.refused} refused by the test-run's rules"
    if st.first_error is not None:
        line += f"; first, packet {st.first_error[0]}: {st.first_error[1]}"
    return line


def _progress(pcap: str):
    """A rich progress display on stderr for long captures, only when stderr is a terminal."""
    try:
        big = Path(pcap).stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        big = False
    if not (big and sys.stderr.isatty()):
        return None
    from hxdpc.commands.progress import packet_progress
    return packet_progress()


def count_packets(pcap: str, ctx) -> Optional[int]:
    """Whole packets in the capture (up to any damage), for the progress display's total."""
    from emulator.runtime import pcapio
    n = 0
    try:
        for _ in pcapio.read_packets(pcap, ctx):
            n += 1
    except InputError:
        pass
    return n


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _program_and_executor(prog: str, section, target: T.Target, options: T.BuildOptions):
    """The program (and the object's other programs, for tail calls) and the target's executor
    (for a program, a factory the Session calls once it has checked helpers and maps).

    A target that runs images (Target.build_image: Sephirot) also accepts an
    instruction-memory image as PROG (its maps come from the image's map configuration; no
    tail calls, as no programs come with it).  A program using maps it does not define is
    refused here (emulator.runtime.maprefs).
    """
    from emulator.runtime import helpers as H
    from emulator.runtime.maprefs import check_map_refs
    from isa import imagefmt
    from isa.loader import open_input
    from isa.program import Program
    if target.build_image is not None and imagefmt.is_image(prog):
        image = imagefmt.read_image(prog)
        for num in imagefmt.helpers_used(image):
            if num not in H.HELPERS:
                raise InputError(prog, f"the image calls {H.helper_name(num)} (helper {num}), which "
                                       "the XDP runtime does not provide")
        program = Program(Path(prog).stem, [], list(image.maps), path=prog)
        return program, {}, target.build_image(image, options)
    loaded = open_input(prog)
    program = loaded.program(section)
    try:
        programs = {p.name: p for p in loaded.programs()}
    except InputError:
        programs = {}
    check_map_refs(program, programs)
    return program, programs, lambda p: target.build(p, options)


def run_emulate(prog: str, pcap: str, *, target: str = "interp", maps_path=None, results=None,
                out_dir=None, dump_maps=None, events=None, ctx_path=None, clock=None, seed=0,
                fib_path=None, section=None, clock_mhz=DEFAULT_CLOCK_MHZ, progress=None,
                trace=None, stop=None, budget=None) -> Stats:
    """The command as a library call (tests call it directly).

    `stop` (interrupt.StopSignals) makes SIGINT/SIGTERM stop the run between packets: every
    output is then closed whole and the maps are dumped as the last whole packet left them;
    the Interrupted exception carries the Stats so far (`.stats`)."""
    stop = stop if stop is not None else NoSignals()
    emulate_io(prog, pcap, maps_path, ctx_path, fib_path, results, out_dir, dump_maps, events)
    from emulator.runtime import pcapio
    from emulator.runtime.fib import parse_fib
    from emulator.runtime.session import Session

    maps_json = read_json(maps_path, "the maps preset")
    ctx = read_json(ctx_path, "the packet context")
    if ctx is not None:
        pcapio.check_ctx(ctx, ctx_path)
    fib_json = read_json(fib_path, "the FIB")
    fib = parse_fib(fib_json, fib_path) if fib_json is not None else None
    chosen = T.get(target)
    program, programs, executor = _program_and_executor(
        prog, section, chosen, T.BuildOptions(clock_mhz=clock_mhz, warn=_warn))
    if trace is not None and not chosen.trace:
        tracing = ", ".join(n for n, tg in T.TARGETS.items() if tg.trace)
        raise InputError("--trace", f"the {target} target has no pipeline trace (use --target {tracing})")
    session = Session(program, executor=executor, maps=maps_json,
                      clock_ns=clock, seed=seed or 0, fib=fib, ctx=ctx, programs=programs,
                      maps_source=maps_path or "MAPS.json", budget=budget)
    executor = session.executor
    if trace is not None:
        executor.trace_packets = {trace}
    stats = Stats()
    bar = progress
    total = count_packets(pcap, ctx) if bar is not None else None
    try:
        with stop.held():
            try:
                _emulate_packets(session, pcap, ctx, stats, stop, results, events, out_dir, bar, total)
            finally:
                if dump_maps:
                    _write_json(dump_maps, session.dump_maps())
                stats.lru_first_eviction = dict(session.lru_first_eviction)
                if chosen.figures is not None:
                    stats.figures = chosen.figures(session.executor)
                if chosen.figures_text is not None:
                    stats.figures_text = chosen.figures_text(session.executor)
                if trace is not None:
                    stats.trace = executor.format_trace(trace)
    except Interrupted as e:
        e.stats = stats
        raise
    return stats


def _emulate_packets(session, pcap, ctx, stats: Stats, stop, results, events, out_dir, bar, total) -> None:
    """The packet loop: each packet's run and records whole, a stop signal acted on between
    packets (stop.check); every output closed whatever ends the loop."""
    from emulator.runtime import pcapio
    from emulator.runtime.results import result_line
    res_f = ev_f = pcaps = None
    task = bar.add_task("emulate", total=total) if bar is not None else None
    n_events = 0
    t0 = time.perf_counter()
    try:
        res_f = _open_out(results)
        ev_f = _open_out(events)
        pcaps = pcapio.ActionPcaps(out_dir) if out_dir else None
        for pkt in pcapio.read_packets(pcap, ctx):
            r = session.run(pkt)
            stats.add(r)
            if res_f:
                res_f.write(result_line(r))
            if pcaps is not None and r.ran:
                name = pcapio.output_name(r.action, r.redirect, session.redirect_ifindex(r.redirect))
                pcaps.write(name, r.data, pkt.ts_ns)
            if ev_f:
                for e in session.events[n_events:]:
                    ev_f.write(json.dumps(e, separators=(",", ":")) + "\n")
            n_events = len(session.events)
            if bar is not None:
                bar.advance(task)
            stop.check()
    finally:
        stats.loop_seconds = time.perf_counter() - t0
        pcapio.close_all([f for f in (res_f, ev_f, pcaps) if f is not None])


@click.command("emulate", epilog="\b\nExample:\n  hxdpc emulate sample_programs/xdp1.o --pcap sample_programs/pcaps/xdp1-normal.pcap \\\n"
                                  "      --results out.jsonl --out-dir out --stats")
@click.argument("prog", type=click.Path(dir_okay=False))
@click.option("--pcap", "pcap", required=True, type=click.Path(dir_okay=False), help="packets (pcap or pcapng)")
@click.option("--target", type=T.TargetChoice(), default="interp", show_default=True, help="executor")
@click.option("--maps", "maps_path", type=click.Path(dir_okay=False), help="MAPS.json preset")
@click.option("--results", type=click.Path(dir_okay=False), help="write one JSON line per packet")
@click.option("--out-dir", type=click.Path(file_okay=False), help="write one pcap per action here")
@click.option("--dump-maps", type=click.Path(dir_okay=False), help="write the final maps (MAPS.json format)")
@click.option("--events", type=click.Path(dir_okay=False),
              help="write perf_event_output / ringbuf / trace_printk records (JSON lines)")
@click.option("--stats", is_flag=True, help="print figures")
@click.option("--stats-json", type=click.Path(dir_okay=False), help="write figures as JSON")
@click.option("--ctx", "ctx_path", type=click.Path(dir_okay=False), help="CTX.json packet context")
@click.option("--clock", type=int, help="start of the virtual clock in ns (default: pcap timestamps)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of bpf_get_prandom_u32")
@click.option("--fib", "fib_path", type=click.Path(dir_okay=False), help="FIB.json for bpf_fib_lookup")
@click.option("-s", "--section", help="program by section or function name")
@click.option("--clock-mhz", type=ClockMHz(), default=DEFAULT_CLOCK_MHZ, show_default=True,
              help="Sephirot's clock frequency")
@click.option("--trace", type=click.IntRange(min=0), metavar="N",
              help="print Sephirot's pipeline for packet N (0-based), row by row")
@click.option("--budget", type=click.IntRange(min=1), metavar="N", default=None,
              help="instructions (Sephirot: rows) each activation may run: the program's run and "
                   "each bpf_loop callback call (default 1000000; docs/runtime.md)")
def command(prog, pcap, target, maps_path, results, out_dir, dump_maps, events, stats, stats_json,
            ctx_path, clock, seed, fib_path, section, clock_mhz, trace, budget):
    """Run every packet of a capture through PROG, in order, maps persisting."""
    emulate_io(prog, pcap, maps_path, ctx_path, fib_path, results, out_dir, dump_maps, events, stats_json)
    bar = _progress(pcap)
    t0 = time.perf_counter()
    args = dict(target=target, maps_path=maps_path, results=results, out_dir=out_dir,
                dump_maps=dump_maps, events=events, ctx_path=ctx_path, clock=clock, seed=seed,
                fib_path=fib_path, section=section, clock_mhz=clock_mhz, trace=trace, budget=budget)
    try:
        with StopSignals() as stop:
            if bar is not None:
                with bar:
                    st = run_emulate(prog, pcap, progress=bar, stop=stop, **args)
            else:
                st = run_emulate(prog, pcap, stop=stop, **args)
    except InputError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except Interrupted as e:
        click.echo(summary(getattr(e, "stats", None) or Stats(), interrupted=e), err=True)
        sys.exit(e.exit_code)
    elapsed = time.perf_counter() - t0
    if trace is not None:
        click.echo((getattr(st, "trace", "") or f"packet {trace} was not run").rstrip("\n"))
    data = st.as_json(target)
    if stats_json:
        _write_json(stats_json, data)
    if stats:
        click.echo(f"packets: {st.packets} ({', '.join(f'{k} {v}' for k, v in data['actions'].items())})")
        click.echo(f"errors: {st.errors}, refused by the test-run's rules: {st.refused}")
        click.echo(f"instructions per packet: {data['insns_per_packet']}")
        if st.figures_text:
            click.echo(st.figures_text.rstrip("\n"))
        for name, idx in sorted(getattr(st, "lru_first_eviction", {}).items()):
            click.echo(f"LRU map {name}: first eviction at packet {idx}")
        loop = st.loop_seconds
        rate = st.packets / loop if loop > 0 else 0.0
        click.echo(f"emulation speed: {rate:,.0f} packets/s ({loop:.3f} s for the packets, "
                   f"{elapsed:.3f} s in all with loading and compiling)")
    click.echo(summary(st), err=True)
