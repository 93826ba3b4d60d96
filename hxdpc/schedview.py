"""Readable views of a schedule: a text table of rows x lanes, and an HTML page with the
same table (coloured by basic block) beside an SVG drawing of the CFG (blocks placed at
their rows, taken edges as arcs)."""
from __future__ import annotations

import html

from hxdpc.passes.text import insn_text
from isa.insn import is_high_word

_COLOURS = ["#e3f2fd", "#fff3e0", "#e8f5e9", "#fce4ec", "#ede7f6", "#f1f8e9", "#fffde7", "#e0f7fa"]


def _row_block(res) -> dict[int, int]:
    out = {}
    for b, (s, e) in enumerate(res.schedule.block_rows):
        for r in range(s, e):
            out.setdefault(r, b)
    return out


def _cells(row) -> list[str]:
    out = []
    for lane, insn in enumerate(row):
        if insn is None:
            out.append("")
        elif lane > 0 and row[lane - 1] is not None and row[lane - 1].slots == 2 and is_high_word(insn):
            out.append("(lddw high word)")
        else:
            out.append(insn_text(insn))
    return out


def schedule_table(res) -> str:
    """Rows up to the last used one: row number, block, one column per lane, bounds checks."""
    img = res.image
    n = img.used_rows
    bounds = {}
    for b in img.bounds:
        bounds.setdefault(b.row, []).append(f"len<{b.length}->exit {b.action}")
    blocks = _row_block(res)
    table = [["row", "blk"] + [f"lane {i}" for i in range(img.lanes)] + ["hw bounds"]]
    for r in range(n):
        table.append([str(r), f"B{blocks.get(r, '')}"] + _cells(img.rows[r]) + [", ".join(bounds.get(r, []))])
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    r = res.report
    lines.append(f"{n} rows, {r['slots']} slots, static IPC {r['static_ipc']}")
    return "\n".join(lines)


def _cfg_svg(res, row_h: int = 22) -> str:
    img, sch, cfg = res.image, res.schedule, res.cfg
    h = max(img.used_rows, 1) * row_h + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="260" height="{h}" font-family="monospace" '
             f'font-size="11">']
    start_of = {}
    for b, (s, e) in enumerate(sch.block_rows):
        if cfg.blocks[b].ops:
            start_of[b] = s
        y, hh = 5 + s * row_h, max(e - s, 1) * row_h - 4
        parts.append(f'<rect x="10" y="{y}" width="90" height="{hh}" rx="4" fill="{_COLOURS[b % len(_COLOURS)]}" '
                     f'stroke="#555"/><text x="16" y="{y + 14}">B{b} r{s}-{e - 1}</text>')
    for u, v, d in cfg.graph.edges(data=True):
        if d.get("kind") == "fall" and v == u + 1:
            continue
        y1 = 5 + (sch.block_rows[u][1] - 1) * row_h + row_h // 2
        y2 = 5 + sch.block_rows[v][0] * row_h + 6
        bend = 110 + min(abs(y2 - y1) // 3, 140)
        parts.append(f'<path d="M100 {y1} C{bend} {y1} {bend} {y2} 100 {y2}" fill="none" stroke="#c62828" '
                     f'marker-end="url(#a)"/>')
    parts.insert(1, '<defs><marker id="a" markerWidth="6" markerHeight="6" refX="5" refY="3" orient="auto">'
                    '<path d="M0,0 L6,3 L0,6 z" fill="#c62828"/></marker></defs>')
    parts.append("</svg>")
    return "".join(parts)


def schedule_html(res, row_h: int = 22) -> str:
    img = res.image
    n = img.used_rows
    blocks = _row_block(res)
    bounds = {}
    for b in img.bounds:
        bounds.setdefault(b.row, []).append(f"len&lt;{b.length}&rarr;exit {b.action}")
    rows = []
    for r in range(n):
        colour = _COLOURS[blocks.get(r, 0) % len(_COLOURS)]
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in _cells(img.rows[r]))
        rows.append(f'<tr style="background:{colour};height:{row_h}px"><td>{r}</td>{cells}'
                    f'<td>{", ".join(bounds.get(r, []))}</td></tr>')
    head = "".join(f"<th>lane {i}</th>" for i in range(img.lanes))
    r = res.report
    title = html.escape(img.name or "schedule")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif} table{border-collapse:collapse;font-family:monospace;font-size:11px}"
            "td,th{border:1px solid #bbb;padding:0 6px;white-space:nowrap}</style></head><body>"
            f"<h3>{title}: {n} rows x {img.lanes} lanes, {r['slots']} slots, static IPC {r['static_ipc']}</h3>"
            f"<div style='display:flex;gap:12px;align-items:flex-start'><div style='padding-top:{row_h}px'>"
            f"{_cfg_svg(res, row_h)}</div><table><tr><th>row</th>{head}<th>hw bounds</th></tr>{''.join(rows)}"
            "</table></div></body></html>\n")
