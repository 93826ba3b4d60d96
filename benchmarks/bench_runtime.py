"""Packets per second of the emulator (interp and fast targets, through the runtime's
Session, as `hxdpc emulate` runs them) next to the kernel's ns per packet from
BPF_PROG_TEST_RUN, in the same run, on the firewall and the load balancer samples.

    python3 benchmarks/bench_runtime.py [--packets N] [--repeat R] [NAME ...]

The kernel figures are its own `duration` (ns per program run, measured inside the kernel
around the program, pinned to CPU 0): "r=1" is the mean over the pcap's packets run once
each, in order, maps persisting, exactly as verify runs them; "r=R" is the mean of a
repeated run of every packet (the test-run reruns the program on the same buffer, so
programs that grow the frame see a different frame on later runs: the r=1 figure is the
like-for-like one, and the ratios use it for programs that resize frames; for the others the
r=R figure, free of the per-call timer overhead, is the program's cost).  The emulator figures are wall-clock over the whole pcap.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.kernel import KernelProgram, kernel_unavailable_reason  # noqa: E402
from emulator.kernel.compare import program_helpers  # noqa: E402
from emulator.runtime.pcapio import read_packets  # noqa: E402
from emulator.runtime.session import Session  # noqa: E402
from hxdpc import targets  # noqa: E402
from isa.loader import load, load_all  # noqa: E402

SAMPLES = ROOT / "sample_programs"
DEFAULT = ["simple_firewall", "katran_lb"]
RESIZE_HELPERS = {44, 54, 65}     # bpf_xdp_adjust_head, _meta, _tail


def sample_inputs(name: str, pcap: str | None):
    obj = SAMPLES / f"{name}.o"
    maps_path = SAMPLES / f"{name}.maps.json"
    maps = json.loads(maps_path.read_text()) if maps_path.exists() else None
    pcaps = [pcap] if pcap else sorted(glob.glob(str(SAMPLES / "pcaps" / f"{name}-*.pcap*")))
    if not obj.exists() or not pcaps:
        raise SystemExit(f"{name}: needs {obj} and sample_programs/pcaps/{name}-*.pcap")
    packets = [p for path in pcaps for p in read_packets(path)]
    return str(obj), maps, packets


def emulator_pps(obj: str, maps, packets, target: str) -> float:
    program = load(obj)
    programs = {p.name: p for p in load_all(obj)}
    session = Session(program, executor=targets.build(target, program), maps=maps, programs=programs)
    t0 = time.perf_counter()
    for p in packets:
        session.run(p)
    return len(packets) / (time.perf_counter() - t0)


def kernel_ns(obj: str, maps, packets, repeat: int) -> tuple[float, float]:
    with KernelProgram(obj, None, maps) as k:
        once = [k.run(bytes(p.data), p.ingress_ifindex, p.rx_queue_index).duration_ns
                for p in packets if len(p.data) >= 14]
    with KernelProgram(obj, None, maps) as k:
        rep = k.run_many([bytes(p.data) for p in packets if len(p.data) >= 14
                          and (p.ingress_ifindex, p.rx_queue_index) == (1, 0)], repeat)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    return mean(once), mean(rep)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=DEFAULT)
    ap.add_argument("--packets", type=int, default=0, help="use only the first N packets")
    ap.add_argument("--repeat", type=int, default=1000, help="test-run repeat for the r=R column")
    ap.add_argument("--pcap", help="use this pcap instead of the sample's")
    args = ap.parse_args(argv)
    reason = kernel_unavailable_reason()
    rows = []
    for name in args.names:
        obj, maps, packets = sample_inputs(name, args.pcap)
        if args.packets:
            packets = packets[:args.packets]
        interp = emulator_pps(obj, maps, packets, "interp")
        fast = emulator_pps(obj, maps, packets, "fast")
        k1, kr = kernel_ns(obj, maps, packets, args.repeat) if not reason else (float("nan"),) * 2
        # a repeated run reuses the frame the previous run left: only comparable when the
        # program never resizes it
        resizes = bool(program_helpers(load(obj), load_all(obj)) & RESIZE_HELPERS)
        rows.append((name, len(packets), interp, fast, k1, kr, "r=1" if resizes else f"r={args.repeat}"))
    head = ("program", "packets", "interp pkt/s", "fast pkt/s", "kernel ns/pkt r=1",
            f"kernel ns/pkt r={args.repeat}", "basis", "interp/kernel", "fast/kernel")
    table = [head]
    for name, n, interp, fast, k1, kr, basis in rows:
        ns_i, ns_f = 1e9 / interp, 1e9 / fast
        kb = kr if basis != "r=1" else k1
        table.append((name, str(n), f"{interp:,.0f}", f"{fast:,.0f}", f"{k1:,.0f}", f"{kr:,.0f}",
                      basis, f"{ns_i / kb:,.0f}x slower", f"{ns_f / kb:,.0f}x slower"))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if reason:
        print(f"(kernel figures unavailable: {reason})")
    print(f"(CPU: {os.cpu_count()} cores; emulator single-threaded; kernel pinned to CPU 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
