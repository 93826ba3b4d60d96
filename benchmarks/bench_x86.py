"""hXDP (the Sephirot model at 156.25 MHz) against x86 (this machine's kernel and JIT), with
the hXDP paper's figures beside ours (docs/x86-comparison.md).

    python3 benchmarks/bench_x86.py [--programs a,b] [--quick] [--json OUT] [--svg OUT]

Per sample program (sample_programs/NAME.o, its first pcap, NAME.maps.json / NAME.fib.json):
eBPF instructions, hXDP rows and static IPC (the compiler's report), x86 static instructions
(our translator, emulator.x86, and the kernel's JIT image counted with capstone), x86
instructions executed per packet (`emulate --target x86`), the kernel's ns/packet
(BPF_PROG_TEST_RUN, benchmarks/bench_speed.kernel_ns), the x86 IPC that follows (dynamic
instructions / (ns x the clock /proc/cpuinfo reports for the CPU the test-run is pinned
to)), Sephirot cycles/packet and Mpps, which of the two forwards more packets per second,
and the emulators' packets/s of `fast` and `x86`.  The paper's objdump inputs (the
artifact's bytecode/*.objdump) have no maps the kernel could load, so they give the static
figures only.  Where the x86 translator is absent its columns say "n/a" and one line says why.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_compiler import DEEP, PAPER as PAPER_TABLE3  # noqa: E402
from bench_speed import kernel_ns, pps  # noqa: E402
from emulator.kernel import KernelUnavailable, kernel_unavailable_reason  # noqa: E402
from emulator.kernel.jit import jit_settings, kernel_jit  # noqa: E402
from emulator.runtime.pcapio import read_packets  # noqa: E402
from hxdpc.commands.compile import x86_static_figures  # noqa: E402
from hxdpc.compiler import CompileOptions, compile_program  # noqa: E402
from isa.errors import InputError, read_json  # noqa: E402
from isa.loader import load  # noqa: E402

SAMPLES = ROOT / "sample_programs"
ARTIFACT = Path("reference") / "hxdp-artifacts"
HXDP_MHZ = 156.25
NA = "n/a"
# sample -> its name in the paper's Table 3 (x86 IPC, hXDP static IPC)
SAMPLE_PAPER_NAME = {"xdp1": "xdp1", "xdp2": "xdp2", "xdp_adjust_tail": "xdp_adjust_tail",
                     "router_ipv4": "router_ipv4", "rxq_info": "rxq_info",
                     "tx_ip_tunnel": "tx_ip_tunnel", "simple_firewall": "simple_firewall",
                     "katran_lb": "Katran"}
# Table 3, x86 runtime IPC (Xeon E5-1630 v3)
PAPER_X86_IPC = {"xdp1": 2.20, "xdp2": 2.19, "xdp_adjust_tail": 2.37, "router_ipv4": 2.38,
                 "rxq_info": 2.81, "tx_ip_tunnel": 2.24, "simple_firewall": 2.16, "Katran": 2.32}
# Mpps, 64 B packets: (hXDP @156.25 MHz, x86 core @3.7 GHz) as the paper's text states them
# (5.2.1 for the firewall, Figure 10; 5.2.2 for the baseline programs, Figure 13)
PAPER_MPPS = {"simple_firewall": (6.53, 7.4), "ubench_drop": (52.0, 38.0),
              "ubench_tx": (22.5, 12.0), "ubench_redirect": (15.0, 11.0)}


def x86_reason() -> str:
    """Why our x86 translator/executor cannot be measured here ('' when it can)."""
    try:
        import emulator.x86.translate  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name in ("emulator.x86", "emulator.x86.translate"):
            return "the eBPF->x86 translator (emulator.x86) is not in this build"
        raise
    from hxdpc.targets import TARGETS
    return "" if "x86" in TARGETS else "emulator.x86 exists but no `x86` target is registered"


def cpu_clock(cpu: int = 0) -> tuple[float, str]:
    """MHz of `cpu` from /proc/cpuinfo ("cpu MHz", what the kernel reports now) and where from."""
    current = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "processor":
                current = int(value)
            elif key == "cpu MHz" and current == cpu:
                return float(value), f"/proc/cpuinfo cpu MHz of CPU {cpu}"
    raise SystemExit(f"/proc/cpuinfo: no 'cpu MHz' for CPU {cpu}")


@dataclass
class Inputs:
    """One sample and what it runs on (paper inputs have only `prog`)."""
    name: str
    prog: str
    pcap: Optional[str] = None
    maps_path: Optional[str] = None
    fib_path: Optional[str] = None


def sample_inputs(name: str) -> Inputs:
    pcaps = sorted((SAMPLES / "pcaps").glob(f"{name}-*.pcap*"))
    maps, fib = SAMPLES / f"{name}.maps.json", SAMPLES / f"{name}.fib.json"
    return Inputs(name, str(SAMPLES / f"{name}.o"), str(pcaps[0]) if pcaps else None,
                  str(maps) if maps.exists() else None, str(fib) if fib.exists() else None)


def artifact_dir(shared: Optional[str]) -> Optional[Path]:
    """The paper's artifact: under --shared, else under the first `shared` directory beside
    the project or one of its parents (a worktree sits deeper than the main checkout)."""
    if shared:
        return Path(shared) / ARTIFACT
    for up in ROOT.parents:
        if (up / "shared" / ARTIFACT).is_dir():
            return up / "shared" / ARTIFACT
    return None


def all_inputs(art: Optional[Path]) -> list[Inputs]:
    samples = [sample_inputs(p.stem) for p in sorted(SAMPLES.glob("*.o"))]
    paper = [Inputs(f"art:{p.stem}", str(p)) for p in sorted((art / "bytecode").glob("*.objdump"))] if art else []
    return samples + paper


@dataclass
class Row:
    name: str
    ebpf_insns: Optional[int] = None
    rows: Optional[int] = None
    static_ipc: Optional[float] = None
    x86_static_ours: Optional[int] = None
    x86_bytes_ours: Optional[int] = None
    x86_static_kernel: Optional[int] = None
    x86_bytes_kernel: Optional[int] = None
    xlated_insns: Optional[int] = None
    x86_insns_per_packet: Optional[float] = None
    kernel_ns: Optional[float] = None
    floor_ns: Optional[float] = None
    x86_ipc: Optional[float] = None
    kernel_mpps: Optional[float] = None
    cycles_per_packet: Optional[float] = None
    hxdp_mpps: Optional[float] = None
    faster: Optional[str] = None
    fast_pps: Optional[float] = None
    x86_pps: Optional[float] = None
    paper: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def paper_figures(name: str) -> dict:
    stem = name.removeprefix("art:")
    t3 = SAMPLE_PAPER_NAME.get(stem) or (PAPER_TABLE3[stem][1] if stem in PAPER_TABLE3 else None)
    out = {}
    for _art, (_rom, pname, pinsn, pipc) in PAPER_TABLE3.items():
        if pname == t3 and pinsn:
            out.update(insns=pinsn, hxdp_ipc=pipc, x86_ipc=PAPER_X86_IPC.get(pname))
    if stem in PAPER_MPPS:
        out["hxdp_mpps"], out["x86_mpps_3700"] = PAPER_MPPS[stem]
    return out


def static_figures(row: Row, inp: Inputs, x86_missing: str, kernel_missing: str) -> None:
    program = load(inp.prog)
    rep = compile_program(program, CompileOptions(depth=DEEP)).report
    row.ebpf_insns, row.rows, row.static_ipc = rep["insns_in"], rep["rows"], rep["static_ipc"]
    if not x86_missing:
        figs = x86_static_figures(program)
        row.x86_static_ours, row.x86_bytes_ours = figs.get("x86_static_insns"), figs.get("x86_bytes")
        if "x86_error" in figs:
            row.notes.append(f"translator: {figs['x86_error']}")
    if kernel_missing:
        return
    try:
        j = kernel_jit(inp.prog)
    except InputError as e:
        refusal = e.reason.split(" (")[0]
        why = "" if inp.prog.endswith(".o") else "; this text has no map definitions to load"
        row.notes.append(f"kernel JIT n/a: {refusal}{why}")
        return
    row.x86_static_kernel, row.x86_bytes_kernel, row.xlated_insns = j.insns, len(j.code), j.xlated_insns


EMPTY_PROGRAM = "r0 = 2\nexit\n"     # XDP_PASS at once: what the test-run costs by itself


def test_run_floor_ns(packets, repeat: int) -> float:
    """The test-run's own ns/packet on these packets: an XDP program that only returns
    (assembled here, loaded like any object); context for ns/pkt, not subtracted from it."""
    import tempfile
    from isa.asm import assemble_program
    from isa.elfwrite import write_elf
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "empty.o"
        write_elf(obj, assemble_program(EMPTY_PROGRAM, name="empty"))
        return kernel_ns(str(obj), None, packets, repeat)


def emulate_figures(inp: Inputs, target: str) -> dict:
    from hxdpc.commands.emulate import run_emulate
    st = run_emulate(inp.prog, inp.pcap, target=target, maps_path=inp.maps_path, fib_path=inp.fib_path)
    return st.as_json(target)


def dynamic_figures(row: Row, inp: Inputs, args, x86_missing: str, kernel_missing: str, mhz: float) -> None:
    seph = emulate_figures(inp, "sephirot")
    row.cycles_per_packet, row.hxdp_mpps = seph["cycles_per_packet"], seph["mpps"]
    if not x86_missing:
        try:
            row.x86_insns_per_packet = emulate_figures(inp, "x86").get("x86_insns_per_packet")
        except InputError as e:               # one program the translator refuses: say so, go on
            row.notes.append(f"emulate --target x86: {e}"[:120])
    maps = read_json(inp.maps_path, "the maps preset")
    packets = list(read_packets(inp.pcap))[:args.packets]
    row.fast_pps = pps(inp.prog, maps, packets, "fast", args.reps)
    if row.x86_insns_per_packet is not None:
        row.x86_pps = pps(inp.prog, maps, packets, "x86", args.reps)
    if kernel_missing:
        return
    try:
        ns = kernel_ns(inp.prog, maps, packets, args.repeat)
        floor = test_run_floor_ns(packets, args.repeat)
    except (InputError, KernelUnavailable) as e:
        row.notes.append(f"kernel test-run: {e}"[:100])
        return
    if ns == ns and ns > 0:                  # nan when no packet had the test-run's context
        row.kernel_ns, row.floor_ns, row.kernel_mpps = round(ns, 1), round(floor, 1), round(1e3 / ns, 3)
        # IPC over the whole test-run time, as the paper's coarse estimate (its footnote 13):
        # the floor overlaps the program in the pipeline, so ns - floor is no program time
        if row.x86_insns_per_packet is not None:
            row.x86_ipc = round(row.x86_insns_per_packet / (ns * mhz / 1e3), 3)
        row.faster = "hXDP" if row.hxdp_mpps > row.kernel_mpps else "x86"


def measure(inp: Inputs, args, x86_missing: str, kernel_missing: str, mhz: float) -> Row:
    row = Row(inp.name, paper=paper_figures(inp.name))
    try:
        static_figures(row, inp, x86_missing, kernel_missing)
        if inp.pcap:
            dynamic_figures(row, inp, args, x86_missing, kernel_missing, mhz)
    except InputError as e:
        row.notes.append(str(e)[:120])
    return row


def cell(v, fmt="{}") -> str:
    return NA if v is None else fmt.format(v)


COLUMNS = [("program", lambda r: r.name), ("eBPF", lambda r: cell(r.ebpf_insns)),
           ("paper", lambda r: cell(r.paper.get("insns"))), ("rows", lambda r: cell(r.rows)),
           ("hXDP IPC", lambda r: cell(r.static_ipc)), ("paper", lambda r: cell(r.paper.get("hxdp_ipc"))),
           ("x86 ours", lambda r: cell(r.x86_static_ours)), ("x86 JIT", lambda r: cell(r.x86_static_kernel)),
           ("x86/pkt", lambda r: cell(r.x86_insns_per_packet)), ("ns/pkt", lambda r: cell(r.kernel_ns)),
           ("floor ns", lambda r: cell(r.floor_ns)),
           ("x86 IPC", lambda r: cell(r.x86_ipc)), ("paper", lambda r: cell(r.paper.get("x86_ipc"))),
           ("cyc/pkt", lambda r: cell(r.cycles_per_packet, "{:.2f}")),
           ("hXDP Mpps", lambda r: cell(r.hxdp_mpps, "{:.2f}")), ("paper", lambda r: cell(r.paper.get("hxdp_mpps"))),
           ("x86 Mpps", lambda r: cell(r.kernel_mpps, "{:.2f}")),
           ("paper@3.7G", lambda r: cell(r.paper.get("x86_mpps_3700"))), ("faster", lambda r: cell(r.faster)),
           ("fast pkt/s", lambda r: cell(r.fast_pps, "{:,.0f}")), ("x86 pkt/s", lambda r: cell(r.x86_pps, "{:,.0f}"))]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(h for h, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(f(r) for _, f in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


# -- the plot: static sizes and packets/s per program, grouped bars drawn by hand --------------
BAR_W, GAP, PANEL_H, LEFT, LABELS = 9, 14, 180, 60, 150
STATIC_SERIES = [("eBPF insns", "ebpf_insns", "#888"), ("hXDP rows", "rows", "#2a7"),
                 ("x86 ours", "x86_static_ours", "#c73"), ("x86 kernel JIT", "x86_static_kernel", "#37c")]
MPPS_SERIES = [("hXDP model", "hxdp_mpps", "#2a7"), ("x86 here (test-run)", "kernel_mpps", "#37c"),
               ("paper hXDP", "paper:hxdp_mpps", "#9dc"), ("paper x86 @3.7 GHz", "paper:x86_mpps_3700", "#9bd")]


def figure(row: Row, key: str):
    """A row's figure by series key; `paper:NAME` is the paper's value beside it."""
    return row.paper.get(key[6:]) if key.startswith("paper:") else getattr(row, key)


def _bars(rows: list[Row], series, top: float, title: str) -> list[str]:
    vals = [figure(r, key) for r in rows for _, key, _ in series]
    vmax = max([v for v in vals if v] or [1.0])
    group = BAR_W * len(series) + GAP
    out = [f'<text x="{LEFT}" y="{top - 22}" font-size="12" font-weight="bold">{title}</text>',
           f'<line x1="{LEFT}" y1="{top + PANEL_H}" x2="{LEFT + group * len(rows)}" y2="{top + PANEL_H}" stroke="#000"/>',
           f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{top + PANEL_H}" stroke="#000"/>',
           f'<text x="{LEFT - 4}" y="{top + 8}" font-size="9" text-anchor="end">{vmax:,.4g}</text>',
           f'<text x="{LEFT - 4}" y="{top + PANEL_H}" font-size="9" text-anchor="end">0</text>']
    for i, r in enumerate(rows):
        x0 = LEFT + i * group
        for j, (_, key, colour) in enumerate(series):
            v = figure(r, key)
            if v is None:
                continue
            h = PANEL_H * v / vmax
            out.append(f'<rect x="{x0 + j * BAR_W}" y="{top + PANEL_H - h:.1f}" width="{BAR_W - 1}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{r.name}: {v:g}</title></rect>')
        out.append(f'<text transform="translate({x0 + 4},{top + PANEL_H + 8}) rotate(60)" '
                   f'font-size="9">{r.name}</text>')
    for k, (label, _, colour) in enumerate(series):
        out.append(f'<rect x="{LEFT + 150 * k}" y="{top - 16}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{LEFT + 150 * k + 14}" y="{top - 7}" font-size="10">{label}</text>')
    return out


def svg(rows: list[Row]) -> str:
    timed = [r for r in rows if r.hxdp_mpps is not None]
    width = LEFT + max(len(rows) * (BAR_W * len(STATIC_SERIES) + GAP), 600) + 20
    top1 = 40
    parts = _bars(rows, STATIC_SERIES, top1, "static instructions (x86: ours and the kernel's JIT)")
    top2 = top1 + PANEL_H + LABELS + 40
    parts += _bars(timed, MPPS_SERIES, top2, f"Mpps: Sephirot model @{HXDP_MHZ} MHz vs this kernel's test-run")
    height = top2 + PANEL_H + LABELS
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                      f'font-family="sans-serif">', *parts, "</svg>"]) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", help="comma-separated names (sample stems, art:STEM for the paper's inputs)")
    ap.add_argument("--quick", action="store_true", help="1 pass, 20 test-run repeats, 50 packets")
    ap.add_argument("--reps", type=int, default=3, help="emulator passes (the best counts)")
    ap.add_argument("--repeat", type=int, default=200, help="test-run repeat per packet")
    ap.add_argument("--packets", type=int, default=None, help="first N packets of each pcap for the timings")
    ap.add_argument("--shared", help="the shared reference data (default: a `shared` directory above the project)")
    ap.add_argument("--json", dest="json_out", help="write the figures as JSON")
    ap.add_argument("--svg", dest="svg_out", help="write the plot")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.repeat, args.packets = 1, 20, args.packets or 50
    art = artifact_dir(args.shared)
    inputs = all_inputs(art)
    if args.programs:
        wanted = [n for n in args.programs.split(",") if n]
        known = {i.name: i for i in inputs}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            print(f"--programs: unknown {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
            return 2
        inputs = [known[n] for n in wanted]
    x86_missing, kernel_missing = x86_reason(), kernel_unavailable_reason()
    mhz, clock_source = cpu_clock(0)
    rows = [measure(i, args, x86_missing, kernel_missing, mhz) for i in inputs]
    settings = jit_settings()
    print(markdown(rows))
    for r in rows:
        for n in r.notes:
            print(f"({r.name}: {n})")
    if art is None:
        print("(the paper's objdump inputs not found: give --shared DIR)")
    if x86_missing:
        print(f"(x86 translator columns n/a: {x86_missing})")
    if kernel_missing:
        print(f"(kernel columns n/a: {kernel_missing})")
    print(f"(x86 clock {mhz:.0f} MHz from {clock_source}; JIT: bpf_jit_enable={settings.enable}, "
          f"bpf_jit_harden={settings.harden}; hXDP at {HXDP_MHZ} MHz; {args.reps} pass(es), "
          f"test-run repeat {args.repeat})")
    if args.json_out:
        meta = {"cpu_mhz": mhz, "clock_source": clock_source, "bpf_jit_enable": settings.enable,
                "bpf_jit_harden": settings.harden, "hxdp_mhz": HXDP_MHZ, "x86_missing": x86_missing,
                "kernel_missing": kernel_missing, "reps": args.reps, "repeat": args.repeat}
        Path(args.json_out).write_text(json.dumps({"meta": meta, "programs": [asdict(r) for r in rows]},
                                                  indent=1) + "\n")
    if args.svg_out:
        Path(args.svg_out).write_text(svg(rows))
        print(f"plot: {args.svg_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
