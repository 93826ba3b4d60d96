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

ART = ROOT.parent / "shared" / "reference" / "hxdp-artifacts"   # --shared DIR points elsewhere
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


COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"]
FIG_W = 1100
PANEL_W, PANEL_H, PANEL_COLS = 170, 120, 6
Y_LO, Y_HI = 0.4, 1.6          # rows relative to 2 lanes


def relative_rows(r: list) -> list:
    """Rows at 1..8 lanes divided by rows at 2 lanes (None where the program needs 2 lanes)."""
    base = r[1] if isinstance(r[1], int) and r[1] else None
    return [v / base if base and isinstance(v, int) else None for v in r]


def median_curve(lanes: dict) -> list:
    out = []
    for k in range(8):
        vals = sorted(c[k] for c in map(relative_rows, lanes.values()) if c[k] is not None)
        out.append(vals[len(vals) // 2] if vals else None)
    return out


def _panel(x0: float, y0: float, title: str, curve: list, context: list, colour: str, left: bool,
           bottom: bool) -> list[str]:
    """One small multiple: every program in light grey, this one in colour, its 4-lane value."""
    pl, pt, pw, ph = 34, 18, PANEL_W - 44, PANEL_H - 44
    x = lambda k: x0 + pl + k * pw / 7                    # k = lanes - 1
    y = lambda v: y0 + pt + (Y_HI - min(max(v, Y_LO), Y_HI)) * ph / (Y_HI - Y_LO)
    out = [f'<text x="{x0 + pl}" y="{y0 + 12}" font-size="10" font-weight="bold">{title}</text>',
           f'<rect x="{x0 + pl}" y="{y0 + pt}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']
    for v in (0.6, 1.0, 1.4):
        out.append(f'<line x1="{x0 + pl}" x2="{x0 + pl + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="{"#999" if v == 1.0 else "#eee"}"/>')
        if left:
            out.append(f'<text x="{x0 + pl - 4}" y="{y(v) + 3:.1f}" text-anchor="end" font-size="9">{v:.1f}</text>')
    for k in (0, 1, 3, 7):
        out.append(f'<text x="{x(k):.1f}" y="{y0 + pt + ph + 11}" text-anchor="middle" font-size="9">{k + 1}</text>')
    for c in context:
        pts = " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in enumerate(c) if v is not None)
        out.append(f'<polyline fill="none" stroke="#ddd" points="{pts}"/>')
    pts = " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in enumerate(curve) if v is not None)
    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
    if curve[3] is not None:
        out.append(f'<circle cx="{x(3):.1f}" cy="{y(curve[3]):.1f}" r="3" fill="{colour}"/>'
                   f'<text x="{x(3) + 4:.1f}" y="{y(curve[3]) - 5:.1f}" font-size="9" fill="{colour}">'
                   f'{curve[3]:.2f}</text>')
    if bottom:
        out.append(f'<text x="{x0 + pl + pw / 2}" y="{y0 + pt + ph + 23}" text-anchor="middle" '
                   'font-size="10">lanes</text>')
    if left:
        cy = y0 + pt + ph / 2
        out.append(f'<text x="{x0 + 8}" y="{cy}" transform="rotate(-90 {x0 + 8} {cy})" text-anchor="middle" '
                   'font-size="10">rows / rows at 2</text>')
    return out


def lane_panels(lanes: dict, top: float) -> tuple[list[str], float]:
    """Small multiples of the lane study: the median first, then one panel per program."""
    curves = {name: relative_rows(r) for name, r in lanes.items() if relative_rows(r)[1] is not None}
    panels = [("median of all", median_curve(lanes), "#000")]
    panels += [(f"{name} ({lanes[name][1]})", c, "#1565c0") for name, c in curves.items()]
    nrows = (len(panels) + PANEL_COLS - 1) // PANEL_COLS
    out = [f'<text x="20" y="{top + 16}" font-size="14">Lane study: rows at 1-8 lanes relative to 2 lanes '
           '</text>',
           f'<text x="20" y="{top + 32}" font-size="11">(N): rows at 2 lanes; grey: the other programs; '
           "dot: 4 lanes; art: the original compiler's inputs</text>"]
    for i, (title, curve, colour) in enumerate(panels):
        col, row = i % PANEL_COLS, i // PANEL_COLS
        out += _panel(20 + col * (PANEL_W + 8), top + 40 + row * PANEL_H, title, curve,
                      list(curves.values()), colour, col == 0, row == nrows - 1 or i + PANEL_COLS >= len(panels))
    return out, top + 40 + nrows * PANEL_H + 10


def reduction_bars(red: dict, top: float) -> tuple[list[str], float]:
    """Stacked bars: rows each optimisation saves, per sample program, legend beside the plot."""
    pad, W, H = 70, 860, 300
    out = [f'<text x="20" y="{top + 16}" font-size="14">Rows saved by each optimisation '
           '(rows with it off minus rows with everything on)</text>']
    top += 30
    n = max(len(red), 1)
    bw = (W - pad) / n
    maxv = max([sum(max(d[f], 0) for f in FLAGS) for d in red.values()] + [1])
    step = max(1, round(maxv / 5))
    base = top + H - 80
    scale = (H - 100) / maxv
    for v in range(0, maxv + 1, step):
        yy = base - v * scale
        out.append(f'<line x1="{pad}" x2="{W}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                   f'<text x="{pad - 6}" y="{yy + 4:.1f}" text-anchor="end">{v}</text>')
    cy = base - (H - 100) / 2
    out.append(f'<text x="22" y="{cy:.0f}" transform="rotate(-90 22 {cy:.0f})" text-anchor="middle">rows saved</text>')
    for i, (name, d) in enumerate(red.items()):
        h0 = base
        for j, f in enumerate(FLAGS):
            v = max(d[f], 0)
            hh = v * scale
            h0 -= hh
            out.append(f'<rect x="{pad + i * bw + 4:.1f}" y="{h0:.1f}" width="{bw - 8:.1f}" height="{hh:.1f}" '
                       f'fill="{COLOURS[j]}"><title>{name} {f}: {v}</title></rect>')
        total = sum(max(d[f], 0) for f in FLAGS)
        out.append(f'<text x="{pad + i * bw + bw / 2:.1f}" y="{h0 - 3:.1f}" text-anchor="middle" '
                   f'font-size="9">{total}</text>')
        tx = pad + i * bw + 6
        out.append(f'<text x="{tx:.1f}" y="{base + 14}" transform="rotate(30 {tx:.1f} {base + 14})">{name}</text>')
    out.append(f'<text x="{(pad + W) / 2}" y="{base + 76}" text-anchor="middle">sample program</text>')
    for j, f in enumerate(FLAGS):
        out.append(f'<rect x="{W + 20}" y="{top + 14 * j}" width="10" height="10" fill="{COLOURS[j]}"/>'
                   f'<text x="{W + 35}" y="{top + 9 + 14 * j}">{f}</text>')
    return out, base + 90


def svg(lanes: dict, red: dict) -> str:
    parts, y = lane_panels(lanes, 0)
    bars, y = reduction_bars(red, y)
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{FIG_W}" height="{y:.0f}" '
            'font-family="sans-serif" font-size="11">', f'<rect width="{FIG_W}" height="{y:.0f}" fill="white"/>']
    return "\n".join(head + parts + bars + ["</svg>"]) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--svg", default=str(ROOT / "benchmarks" / "compiler.svg"))
    ap.add_argument("--json")
    ap.add_argument("--shared", help="the shared reference data (default: ../shared beside the project)")
    args = ap.parse_args(argv)
    if args.shared:
        global ART
        ART = Path(args.shared) / "reference" / "hxdp-artifacts"
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
