"""`hxdpc emulate`: run every packet of a capture through a program on a target.

Packets run in order with maps persisting between them (emulator.runtime.Session).  Outputs:
the results JSONL (--results), one pcap per action (--out-dir), the final maps (--dump-maps),
captured perf/ringbuf/trace_printk events (--events), figures (--stats, --stats-json).  A
damaged capture stops the run at the damaged packet: everything before it is written
consistently, then the command exits 2 naming the file and packet.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import click

from hxdpc import __version__
from hxdpc.errors import InputError, read_json

DEFAULT_CLOCK_MHZ = 156.25
PROGRESS_MIN_BYTES = 1 << 20


_read_json = read_json


def _open_out(path: Optional[str]):
    if path is None:
        return None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w")
    except OSError as e:
        raise InputError(path, f"cannot write: {e.strerror}") from None


def _write_json(path: str, obj) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise InputError(path, f"cannot write: {e.strerror}") from None


class Stats:
    """Counts for --stats / --stats-json (only deterministic figures go to the JSON)."""

    def __init__(self):
        self.packets = 0
        self.actions: dict[str, int] = {}
        self.errors = 0
        self.refused = 0
        self.steps = 0
        self.cycles: list[int] = []
        self.trace = ""
        self.loop_seconds = 0.0

    def add(self, r) -> None:
        self.packets += 1
        self.actions[r.action_name] = self.actions.get(r.action_name, 0) + 1
        self.errors += r.error is not None and r.ran
        self.refused += not r.ran
        self.steps += int(r.extra.get("steps", 0) or 0)
        if "cycles" in r.extra:
            self.cycles.append(int(r.extra["cycles"]))

    def as_json(self, target: str, clock_mhz: float) -> dict:
        ran = max(self.packets - self.refused, 1)
        out = {"packets": self.packets, "actions": dict(sorted(self.actions.items())),
               "errors": self.errors, "refused": self.refused, "target": target,
               "insns_per_packet": round(self.steps / ran, 3), "version": __version__}
        stream = getattr(self, "stream", None)
        if stream is not None and hasattr(stream, "to_json"):
            merged = stream.to_json()          # Sephirot's back-to-back stream figures
            merged.pop("actions", None)         # by number; ours are by name
            merged.update({k: v for k, v in out.items() if k != "target"})
            return dict(sorted(merged.items()))
        if self.cycles:
            cpp = sum(self.cycles) / len(self.cycles)
            out.update(cycles_per_packet=round(cpp, 3), clock_mhz=clock_mhz,
                       mpps=round(clock_mhz / cpp, 3) if cpp else None)
        elif target == "sephirot":
            out.update(cycles_per_packet=None, clock_mhz=clock_mhz, mpps=None)
        return out


def _progress(pcap: str):
    """A rich progress display on stderr for long captures, only when stderr is a terminal."""
    try:
        big = Path(pcap).stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        big = False
    if not (big and sys.stderr.isatty()):
        return None
    from rich.console import Console
    from rich.progress import Progress
    return Progress(console=Console(stderr=True), transient=True)


def _program_and_executor(prog: str, section, target: str, executor, clock_mhz: float):
    """The program (and the object's other programs, for tail calls) and the executor.

    Sephirot runs at `clock_mhz`; it also accepts an instruction-memory image as PROG (its
    maps come from the image's map configuration; no tail calls, as no programs come with it).
    """
    from emulator.runtime import helpers as H
    from hxdpc.loader import load, load_all
    from isa import imagefmt
    from isa.program import Program
    if target == "sephirot" and executor is None and imagefmt.is_image(prog):
        from emulator.sephirot import Sephirot
        image = imagefmt.read_image(prog)
        for num in imagefmt.helpers_used(image):
            if num not in H.HELPERS:
                raise InputError(prog, f"the image calls {H.helper_name(num)} (helper {num}), which "
                                       "the XDP runtime does not provide")
        program = Program(Path(prog).stem, [], list(image.maps), path=prog)
        return program, {}, Sephirot(image, clock_mhz=clock_mhz)
    program = load(prog, section)
    try:
        programs = {p.name: p for p in load_all(prog)}
    except InputError:
        programs = {}
    if executor is None and target == "sephirot":
        from hxdpc.targets import make_sephirot_executor
        executor = make_sephirot_executor(program, clock_mhz=clock_mhz)
    return program, programs, executor if executor is not None else target


def run_emulate(prog: str, pcap: str, *, target: str = "interp", maps_path=None, results=None,
                out_dir=None, dump_maps=None, events=None, ctx_path=None, clock=None, seed=0,
                fib_path=None, section=None, clock_mhz=DEFAULT_CLOCK_MHZ, executor=None,
                progress=None, trace=None) -> Stats:
    """The command as a library call (tests call it directly)."""
    from emulator.runtime import pcapio
    from emulator.runtime.fib import parse_fib
    from emulator.runtime.results import result_line
    from emulator.runtime.session import Session

    maps_json = _read_json(maps_path, "the maps preset")
    ctx = _read_json(ctx_path, "the packet context")
    if ctx is not None:
        pcapio.check_ctx(ctx, ctx_path)
    fib_json = _read_json(fib_path, "the FIB")
    fib = parse_fib(fib_json, fib_path) if fib_json is not None else None
    program, programs, executor = _program_and_executor(prog, section, target, executor, clock_mhz)
    if trace is not None:
        if not hasattr(executor, "format_trace"):
            raise InputError("--trace", f"the {target} target has no pipeline trace (use --target sephirot)")
        executor.trace_packets = {trace}
    session = Session(program, executor=executor, maps=maps_json,
                      clock_ns=clock, seed=seed or 0, fib=fib, ctx=ctx, programs=programs,
                      maps_source=maps_path or "MAPS.json")
    stats = Stats()
    res_f = _open_out(results)
    ev_f = _open_out(events)
    pcaps = pcapio.ActionPcaps(out_dir) if out_dir else None
    bar = progress
    task = bar.add_task("emulate", total=None) if bar is not None else None
    n_events = 0
    t0 = time.perf_counter()
    try:
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
    finally:
        for f in (res_f, ev_f):
            if f:
                f.close()
        if pcaps is not None:
            pcaps.close()
        if dump_maps:
            _write_json(dump_maps, session.dump_maps())
        stats.loop_seconds = time.perf_counter() - t0
        stats.lru_first_eviction = dict(session.lru_first_eviction)
        stats.stream = getattr(session.executor, "stats", None)
        if trace is not None:
            stats.trace = executor.format_trace(trace)
    return stats


@click.command("emulate", epilog="\b\nExample:\n  hxdpc emulate sample_programs/xdp1.o --pcap sample_programs/pcaps/xdp1-normal.pcap \\\n"
                                  "      --results out.jsonl --out-dir out --stats")
@click.argument("prog", type=click.Path(dir_okay=False))
@click.option("--pcap", "pcap", required=True, type=click.Path(dir_okay=False), help="packets (pcap or pcapng)")
@click.option("--target", type=click.Choice(["interp", "fast", "sephirot"]), default="interp",
              show_default=True, help="executor")
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
@click.option("--clock-mhz", type=float, default=DEFAULT_CLOCK_MHZ, show_default=True,
              help="Sephirot's clock frequency")
@click.option("--trace", type=click.IntRange(min=0), metavar="N",
              help="print Sephirot's pipeline for packet N (0-based), row by row")
def command(prog, pcap, target, maps_path, results, out_dir, dump_maps, events, stats, stats_json,
            ctx_path, clock, seed, fib_path, section, clock_mhz, trace):
    """Run every packet of a capture through PROG, in order, maps persisting."""
    bar = _progress(pcap)
    t0 = time.perf_counter()
    try:
        if bar is not None:
            with bar:
                st = run_emulate(prog, pcap, target=target, maps_path=maps_path, results=results,
                                 out_dir=out_dir, dump_maps=dump_maps, events=events, ctx_path=ctx_path,
                                 clock=clock, seed=seed, fib_path=fib_path, section=section,
                                 clock_mhz=clock_mhz, progress=bar, trace=trace)
        else:
            st = run_emulate(prog, pcap, target=target, maps_path=maps_path, results=results,
                             out_dir=out_dir, dump_maps=dump_maps, events=events, ctx_path=ctx_path,
                             clock=clock, seed=seed, fib_path=fib_path, section=section,
                             clock_mhz=clock_mhz, trace=trace)
    except InputError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    elapsed = time.perf_counter() - t0
    if trace is not None:
        click.echo((getattr(st, "trace", "") or f"packet {trace} was not run").rstrip("\n"))
    data = st.as_json(target, clock_mhz)
    if stats_json:
        _write_json(stats_json, data)
    if stats:
        click.echo(f"packets: {st.packets} ({', '.join(f'{k} {v}' for k, v in data['actions'].items())})")
        click.echo(f"errors: {st.errors}, refused by the test-run's rules: {st.refused}")
        click.echo(f"instructions per packet: {data['insns_per_packet']}")
        stream = getattr(st, "stream", None)
        if stream is not None:
            from emulator.sephirot import format_stats
            click.echo(format_stats(stream).rstrip("\n"))
        elif data.get("cycles_per_packet") is not None:
            click.echo(f"cycles per packet: {data['cycles_per_packet']} at {clock_mhz} MHz "
                       f"= {data['mpps']} Mpps")
        for name, idx in sorted(getattr(st, "lru_first_eviction", {}).items()):
            click.echo(f"LRU map {name}: first eviction at packet {idx}")
        loop = st.loop_seconds
        rate = st.packets / loop if loop > 0 else 0.0
        click.echo(f"emulation speed: {rate:,.0f} packets/s ({loop:.3f} s for the packets, "
                   f"{elapsed:.3f} s in all with loading and compiling)")
