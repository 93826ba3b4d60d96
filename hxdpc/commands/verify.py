"""`hxdpc verify`: the same program, maps and packets in the Linux kernel and on a target.

The kernel (emulator.kernel, BPF_PROG_TEST_RUN pinned to CPU 0) is the reference; the target
is any executor behind the runtime's Session.  Every packet is one item (action, bytes,
metadata), every map one more (final contents); the last line counts them.  Where the packet
context or the `--fib` world needs devices, the kernel side runs inside a private network
namespace (emulator.kernel.netns).  docs/verify.md describes the rules.  SIGINT/SIGTERM stop the run
between packets, the kernel's program and namespace cleaned up, exit 130/143
(hxdpc.commands.interrupt).
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass

from typing import Optional

import click

from emulator import kernel as K
from emulator.kernel.compare import (PASSED, SKIPPED, LruWatch, Outcome, Report, Side,
                                     excuse, map_diffs, packet_diffs, program_helpers)
from hxdpc import targets as T
from hxdpc.commands.interrupt import Interrupted, NoSignals, StopSignals
from isa.errors import InputError, read_json

PROGRESS_MIN_PACKETS = 200



@dataclass
class VerifyInputs:
    prog: str
    pcap: str
    maps_path: Optional[str] = None
    target: str = "interp"
    section: Optional[str] = None
    ctx_path: Optional[str] = None
    clock: Optional[int] = None
    seed: Optional[int] = None
    fib_path: Optional[str] = None
    budget: Optional[int] = None


# -- the target side: emulator.runtime (its Session, its pcap reader) -----------------------
def _runtime():
    from emulator.runtime import pcapio, session
    return pcapio, session


def packet_context(p) -> tuple[int, int]:
    return int(getattr(p, "ingress_ifindex", 1)), int(getattr(p, "rx_queue_index", 0))


def target_side(r) -> Side:
    return Side(r.action if r.error is None else None, bytes(r.data or b""),
                bytes(getattr(r, "meta", None) or b""), r.error)


def target_keys(session, names: list[str]) -> dict[str, set]:
    """Keys of the named maps on the target (only those maps: this runs after every packet)."""
    out = {}
    for n in names:
        try:
            entries = session.mapset.by_name(n).dump()
        except (AttributeError, KeyError):
            entries = session.dump_maps().get(n, [])
        out[n] = {e["key"] for e in entries}
    return out


# -- what cannot be reproduced ------------------------------------------------------------
def context_refusal(kernel: K.KernelProgram, kr: K.KernelResult, ifindex: int, queue: int) -> str:
    """Why the kernel refused this packet for its context alone ('' if it ran, or if the frame
    itself is what it refused: then the target must refuse it too)."""
    if kr.error is None or (ifindex, queue) == (1, 0):
        return ""
    try:
        return kernel.context_refusal(ifindex, queue)
    except OSError:
        return kr.error if kr.refused_for_context else ""


def devmap_ifindexes(maps_json: Optional[dict], types: dict[str, int]) -> set[int]:
    out = set()
    for name, entries in (maps_json or {}).items():
        if types.get(name) in K.DEVMAP_TYPES and isinstance(entries, list):
            for e in entries:
                try:
                    out.add(int.from_bytes(bytes.fromhex(e["value"])[:4], "little"))
                except (KeyError, TypeError, ValueError, AttributeError):
                    pass      # KernelProgram's preload names the bad entry
    return out


def nondeterminism_reason(helpers: set[int]) -> str:
    used = sorted(K.HELPER_NAMES[h] for h in helpers & K.NONDETERMINISTIC_HELPERS)
    if not used:
        return ""
    return (f"the program calls {', '.join(used)}: the kernel uses the real clock and random "
            f"numbers, so this difference may stem from them")


class Verifier:
    """One verify run: builds both sides, compares packet by packet, then the maps."""

    def __init__(self, inp: VerifyInputs, progress: bool = False, stop=None):
        self.inp = inp
        self.progress = progress
        self.stop = stop if stop is not None else NoSignals()    # interrupt.StopSignals
        self.report = Report()
        self.packets_done = 0
        self.packets_total = 0
        self.maps_compared = False
        self.ran = 0              # packets run on both sides

    def run(self) -> Report:
        inp = self.inp
        try:
            with open(inp.prog, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise InputError(inp.prog, f"cannot read: {e.strerror or e}") from None
        if magic != b"\x7fELF":
            raise InputError(inp.prog, "verify needs an ELF object (the kernel loads its maps and relocations)")
        maps_json = read_json(inp.maps_path, "the maps preset")
        if maps_json is not None:
            from emulator.runtime.maps import check_preset
            check_preset(maps_json, inp.maps_path)
        ctx_json = read_json(inp.ctx_path, "the packet context")
        if ctx_json is not None:
            from emulator.runtime.pcapio import check_ctx
            check_ctx(ctx_json, inp.ctx_path)
        fib = read_json(inp.fib_path, "the FIB")
        pcapio, session_mod = _runtime()
        from emulator.runtime.fib import parse_fib
        from isa.loader import open_input
        loaded = open_input(inp.prog)
        program = loaded.program(inp.section)
        programs = {p.name: p for p in loaded.programs()}
        target_fib = parse_fib(fib, inp.fib_path) if fib is not None else None
        packets = list(pcapio.read_packets(inp.pcap, ctx_json))
        helpers = program_helpers(program, programs.values())
        types = {m.name: m.type for m in program.maps}
        self.nondet = nondeterminism_reason(helpers)
        lru = sorted(n for n, t in types.items() if t in K.LRU_TYPES)

        self.packets_total = len(packets)
        # a stop signal waits for a packet boundary: the kernel side is always cleaned up
        with self.stop.held(), ExitStack() as stack:
            self.fib_reason = self._namespace(stack, packets, fib, helpers, maps_json, types)
            chosen = program.name if inp.section else None      # -s may be section/function
            kernel = stack.enter_context(K.KernelProgram(inp.prog, chosen, maps_json,
                                                         maps_source=inp.maps_path or "MAPS.json"))
            if kernel.program_name != program.name:
                raise InputError(inp.prog, f"the kernel chose program {kernel.program_name!r} but the "
                                           f"loader chose {program.name!r}; pick one with -s")
            session = session_mod.Session(program, executor=self._build, maps=maps_json,
                                          clock_ns=inp.clock, seed=inp.seed or 0, fib=target_fib,
                                          ctx=ctx_json, programs=programs,
                                          maps_source=inp.maps_path or "MAPS.json",
                                          budget=inp.budget)
            watch = LruWatch(lru)
            for n, p in enumerate(self._iterate(packets)):
                self._packet(n, p, kernel, session, watch, lru)
                self.packets_done = n + 1
                self.stop.check()
            if packets and not self.ran:
                self.report.notes.append("no packet ran on either side: the maps are compared as preloaded")
            self._maps(kernel.dump_maps(), session.dump_maps(), watch)
            self.maps_compared = True
        return self.report

    def _build(self, program):
        """The --target's executor, built by the registry when the Session asks for it."""
        return T.build(self.inp.target, program)

    def _namespace(self, stack: ExitStack, packets, fib, helpers, maps_json, types) -> str:
        """Enter a private netns when the packets, the FIB or a devmap need one.

        Returns why the kernel's FIB differs from --fib ('' when it does not or is not used).
        """
        from emulator.kernel import netns
        contexts = {packet_context(p) for p in packets}
        devices = devmap_ifindexes(maps_json, types)
        uses_fib = K.FIB_LOOKUP in helpers
        if contexts <= {(1, 0)} and not uses_fib and devices <= {1}:
            return ""
        problem = netns.netns_unavailable_reason()
        ns = None
        if not problem:
            try:
                ns = netns.PrivateNetns(netns.make_plan(contexts, fib, devices))
            except OSError as e:
                problem = str(e)
        if ns is None:
            self.report.notes.append(f"no private network namespace ({problem}): the kernel runs in "
                                     "this one, so packet contexts and the FIB are the host's")
            return f"the kernel's FIB could not reproduce --fib ({problem})" if uses_fib else ""
        stack.callback(ns.close)
        ns.enter()
        self.report.notes.append("the kernel ran in a private network namespace (devices: ifindex "
                                 + ", ".join(str(i) for i in [1] + sorted(ns.plan.ifaces)) + ")")
        if uses_fib and ns.problems:
            return "the kernel's FIB could not reproduce --fib: " + "; ".join(ns.problems)
        for pb in ns.problems:
            self.report.notes.append(f"namespace: {pb}")
        return ""

    def _iterate(self, packets):
        if not (self.progress and len(packets) >= PROGRESS_MIN_PACKETS):
            yield from packets
            return
        from hxdpc.commands.progress import packet_progress
        with packet_progress() as bar:
            task = bar.add_task("verify", total=len(packets))
            for p in packets:
                yield p
                bar.advance(task)

    def _packet(self, n: int, p, kernel: K.KernelProgram, session, watch: LruWatch, lru: list[str]) -> None:
        index = getattr(p, "index", n)
        ifindex, queue = packet_context(p)
        item = f"packet {index}"
        kr = kernel.run(bytes(p.data), ifindex, queue)
        refusal = context_refusal(kernel, kr, ifindex, queue)
        if refusal:
            # the program did not run in the kernel: it must not run on the target either,
            # or the maps would differ by this packet's effects
            self.report.outcomes.append(Outcome(item, SKIPPED, reason=(
                f"the kernel cannot give this packet ingress ifindex {ifindex}, rx queue {queue} "
                f"({refusal}); run on neither side")))
            return
        tr = session.run(p)
        self.ran += 1
        if lru:
            watch.update(index, {m: {k.hex() for k in kernel.map_keys(m)} for m in lru},
                         target_keys(session, lru))
        diffs = packet_diffs(Side(kr.action, kr.data, kr.meta, kr.error), target_side(tr))
        status, reason = excuse(diffs, [self.nondet, watch.reason(), self.fib_reason])
        self.report.outcomes.append(Outcome(item, status, diffs, reason))

    def _maps(self, kdump: dict, tdump: dict, watch: LruWatch) -> None:
        for name in sorted(set(kdump) | set(tdump)):
            if name not in kdump:
                continue      # maps the kernel cannot read back (perf buffers, ...) are not compared
            diffs = map_diffs(name, kdump[name], tdump.get(name))
            status, reason = excuse(diffs, [self.nondet, watch.reason(), self.fib_reason])
            self.report.outcomes.append(Outcome(f"map {name}", status, diffs, reason))


@click.command("verify", epilog="\b\nExample (as root):\n  hxdpc verify sample_programs/xdp1.o --pcap sample_programs/pcaps/xdp1-normal.pcap")
@click.argument("prog", type=click.Path(dir_okay=False))
@click.option("--pcap", "pcap", required=True, type=click.Path(dir_okay=False), help="packets (pcap or pcapng)")
@click.option("--maps", "maps_path", type=click.Path(dir_okay=False), help="MAPS.json preset")
@click.option("--target", type=T.TargetChoice(), default="interp", show_default=True,
              help="the executor compared with the kernel")
@click.option("-s", "--section", help="program by section or function name")
@click.option("--ctx", "ctx_path", type=click.Path(dir_okay=False), help="CTX.json packet context")
@click.option("--clock", type=int, help="start of the virtual clock (ns) on the target")
@click.option("--seed", type=int, help="seed of bpf_get_prandom_u32 on the target")
@click.option("--fib", "fib_path", type=click.Path(dir_okay=False), help="FIB.json for bpf_fib_lookup")
@click.option("--budget", type=click.IntRange(min=1), metavar="N", default=None,
              help="instructions (Sephirot: rows) each activation may run on the target: the "
                   "program's run and each bpf_loop callback call (default 1000000; docs/runtime.md)")
def command(prog, pcap, maps_path, target, section, ctx_path, clock, seed, fib_path, budget):
    """Run PROG in the Linux kernel (BPF_PROG_TEST_RUN) and on a target; report differences."""
    reason = K.kernel_unavailable_reason()
    if reason:
        click.echo(f"error: verify: the Linux kernel cannot be used as the reference here: {reason}", err=True)
        sys.exit(2)
    inp = VerifyInputs(prog, pcap, maps_path, target, section, ctx_path, clock, seed, fib_path, budget)
    stop = StopSignals()
    verifier = Verifier(inp, progress=sys.stderr.isatty(), stop=stop)
    try:
        with stop:
            report = verifier.run()
    except K.KernelUnavailable as e:
        click.echo(f"error: verify: the Linux kernel cannot be used as the reference here: {e}", err=True)
        sys.exit(2)
    except Interrupted as e:
        _print_differences(verifier.report)
        maps = "maps compared" if verifier.maps_compared else "maps not compared"
        click.echo(f"verify: interrupted by {e.name} after {verifier.packets_done} of "
                   f"{verifier.packets_total} packets ({maps})", err=True)
        sys.exit(e.exit_code)
    _print_differences(report)
    click.echo(report.summary())
    sys.exit(report.exit_code)


def _print_differences(report: Report) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    for o in report.outcomes:
        if o.status != PASSED:
            for line in o.lines():
                click.echo(line)
