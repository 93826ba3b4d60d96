"""Compiler figures side by side with the hXDP paper and its artifact (docs/compiler.md).

    python3 benchmarks/bench_compiler.py [--svg OUT.svg] [--json OUT.json]

1. rows: ours vs the original compiler's images (artifact roms, rows up to the last
   non-empty line) on the original compiler's own inputs (bytecode/*.objdump), and static
   IPC (non-empty slots / rows) next to the paper's Table 3;
2. the lane study: rows for 1..8 lanes (artifact inputs and sample programs);
3. the reduction each optimisation brings, per sample program (rows with everything on vs
   with that one optimisation off).
The SVG is drawn here (no plotting library needed): the lane study and the reductions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hxdpc.compiler import CompileOptions, compile_program  # noqa: E402
from isa.errors import InputError  # noqa: E402
from isa.loader import load  # noqa: E402
from isa.imagefmt import read_image  # noqa: E402

ART = ROOT.parent / "shared" / "reference" / "hxdp-artifacts"
SAMPLES = ROOT / "sample_programs"
# artifact input -> (original image, paper Table 3 name, instructions, hXDP static IPC)
PAPER = {
    "xdp1": ("xdp1.bin.out", "xdp1", 61, 1.70),
    "xdp2": ("xdp2.bin.out", "xdp2", 78, 1.81),
    "xdp_adjust_tail": (None, "xdp_adjust_tail", 117, 2.72),
    "xdp_router_ipv4": ("xdp_router_ipv4.bin.out", "router_ipv4", 119, 2.38),
    "xdp_rxq_info": ("xdp_rxq_info.bin.out", "rxq_info", 81, 1.76),
    "xdp_tx_iptunnel": (None, "tx_ip_tunnel", 283, 2.83),
    "nec_udp_firewall": ("nec_udp_firewall.bin.out", "simple_firewall", 72, 2.66),
    "xdp_redirect_map_kern": ("xdp_redirect_map_kern.bin.out", "redirect_map", None, None),
    "katran": (None, "Katran", 268, 2.62),
}
FLAGS = ["bounds_removal", "zero_removal", "three_operand", "load48", "param_exit", "code_motion"]
DEEP = 4096


def compile_rows(prog, **kw):
    try:
        return compile_program(prog, CompileOptions(depth=DEEP, **kw)).report
    except InputError as e:
        return {"error": e.reason}


def table(rows, head) -> str:
    cells = [head] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(head))]
    out = ["  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)) for r in cells]
    out.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(out)


def artifact_table() -> tuple[str, dict]:
    rows, data = [], {}
    tot_orig = tot_ours = 0
    for stem, (rom, pname, pinsn, pipc) in PAPER.items():
        src = ART / "bytecode" / f"{stem}.objdump"
        if not src.exists():
            continue
        rep = compile_rows(load(str(src)))
        orig = read_image(ART / "roms" / rom).used_rows if rom else None
        ours = rep.get("rows")
        if orig:
            tot_orig += orig
            tot_ours += ours
        delta = f"{100 * (ours - orig) / orig:+.0f}%" if orig else ""
        rows.append([stem, rep["insns_in"], pinsn or "", orig or "", ours, delta, rep["static_ipc"],
                     pipc or "", rep["removed_bounds_checks"], rep["three_operand"], rep["param_exit"]])
        data[stem] = {"ours": ours, "original": orig, "insns": rep["insns_in"], "ipc": rep["static_ipc"],
                      "paper_ipc": pipc}
    rows.append(["total (6 with images)", "", "", tot_orig, tot_ours,
                 f"{100 * (tot_ours - tot_orig) / tot_orig:+.1f}%", "", "", "", "", ""])
    head = ["program", "insns", "paper", "orig rows", "our rows", "vs orig", "IPC", "paper IPC",
            "bounds-", "3-op", "pexit"]
    return table(rows, head), data


def programs() -> dict:
    out = {}
    for p in sorted((ART / "bytecode").glob("*.objdump")):
        if p.stem in PAPER:
            out[f"art:{p.stem}"] = load(str(p))
    for p in sorted(SAMPLES.glob("*.o")):
        try:
            out[p.stem] = load(str(p))
        except InputError:
            pass
    return out


def lane_study(progs) -> tuple[str, dict]:
    rows, data = [], {}
    for name, prog in progs.items():
        r = []
        for lanes in range(1, 9):
            rep = compile_rows(prog, lanes=lanes)
            r.append(rep.get("rows", "-"))
        data[name] = r
        rows.append([name] + r)
    return table(rows, ["program"] + [f"{n} lane{'s' if n > 1 else ''}" for n in range(1, 9)]), data


def reductions(progs) -> tuple[str, dict]:
    rows, data = [], {}
    for name, prog in progs.items():
        if name.startswith("art:"):
            continue
        full = compile_rows(prog)["rows"]
        none = compile_rows(prog, **{f: False for f in FLAGS})["rows"]
        r = {f: compile_rows(prog, **{f: False})["rows"] - full for f in FLAGS}
        data[name] = {"all": full, "none": none, **r}
        rows.append([name, prog.slot_count, none, full, f"{100 * (none - full) / none:.0f}%"] + [r[f] for f in FLAGS])
    head = ["sample", "insns", "rows none", "rows all", "saved"] + [f"-{f}" for f in FLAGS]
    return table(rows, head), data


def svg(lanes: dict, red: dict) -> str:
    W, H, pad = 900, 380, 50
    legend_w = 190   # the lane study's legend sits right of the plot
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W + legend_w}" height="{H * 2}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{W + legend_w}" height="{H * 2}" fill="white"/>',
             f'<text x="{pad}" y="20" font-size="14">Lane study: rows relative to 2 lanes</text>']
    colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457", "#37474f",
               "#9e9d24", "#283593", "#d84315", "#00695c", "#4e342e", "#1b5e20", "#880e4f"]
    x = lambda l: pad + (l - 1) * (W - 2 * pad) / 7
    y = lambda v: 40 + (1.6 - v) * (H - 80) / 1.2
    for v in (0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6):
        parts.append(f'<line x1="{pad}" x2="{W - pad}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{pad - 30}" y="{y(v) + 4:.1f}">{v:.1f}</text>')
    for l in range(1, 9):
        parts.append(f'<text x="{x(l) - 4:.1f}" y="{H - 20}">{l}</text>')
    for i, (name, r) in enumerate(lanes.items()):
        base = r[1] if isinstance(r[1], int) else None
        if not base:
            continue
        pts = [(x(l + 1), y(v / base)) for l, v in enumerate(r) if isinstance(v, int) and 0.4 <= v / base <= 1.6]
        c = colours[i % len(colours)]
        parts.append('<polyline fill="none" stroke="%s" points="%s"/>' % (c, " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
        parts.append(f'<text x="{W - pad + 4}" y="{40 + 12 * i}" fill="{c}">{name}</text>'[:200])
    # reductions: stacked bars of rows saved by each optimisation
    top = H + 40
    parts.append(f'<text x="{pad}" y="{H + 20}" font-size="14">Rows saved by each optimisation (sample programs)</text>')
    n = max(len(red), 1)
    bw = (W - 2 * pad) / n
    maxv = max([sum(max(d[f], 0) for f in FLAGS) for d in red.values()] + [1])
    step = max(1, round(maxv / 5))
    for v in range(0, maxv + 1, step):   # y axis: rows saved
        yy = top + H - 100 - v * (H - 120) / maxv
        parts.append(f'<line x1="{pad}" x2="{W - pad}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                     f'<text x="{pad - 30}" y="{yy + 4:.1f}">{v}</text>')
    for i, (name, d) in enumerate(red.items()):
        h0 = top + H - 100
        for j, f in enumerate(FLAGS):
            v = max(d[f], 0)
            hh = v * (H - 120) / maxv
            h0 -= hh
            parts.append(f'<rect x="{pad + i * bw + 4:.1f}" y="{h0:.1f}" width="{bw - 8:.1f}" height="{hh:.1f}" '
                         f'fill="{colours[j]}"><title>{name} {f}: {v}</title></rect>')
        parts.append(f'<text x="{pad + i * bw + 4:.1f}" y="{top + H - 86}" transform="rotate(30 {pad + i * bw + 4:.1f} '
                     f'{top + H - 86})">{name}</text>')
    for j, f in enumerate(FLAGS):
        parts.append(f'<rect x="{W - 180}" y="{top + 14 * j}" width="10" height="10" fill="{colours[j]}"/>'
                     f'<text x="{W - 165}" y="{top + 9 + 14 * j}">{f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--svg", default=str(ROOT / "benchmarks" / "compiler.svg"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    t1, d1 = artifact_table()
    print("Rows and static IPC: ours vs the original compiler (artifact images) vs the paper\n")
    print(t1)
    progs = programs()
    t2, d2 = lane_study(progs)
    print("\nLane study: rows for 1..8 lanes ('-': the program needs 2 lanes for lddw)\n")
    print(t2)
    t3, d3 = reductions(progs)
    print("\nRows each optimisation saves (rows with it off minus rows with everything on)\n")
    print(t3)
    Path(args.svg).write_text(svg(d2, d3))
    print(f"\nplot: {args.svg}")
    if args.json:
        Path(args.json).write_text(json.dumps({"artifact": d1, "lanes": d2, "reductions": d3}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
