"""Readable views of a schedule: a text table of rows x lanes, and an HTML page with the same
table beside an SVG drawing of the CFG.

One colour per basic block, the same in the drawing and in the table's cells (a cell takes the
colour of the block its instruction comes from, the row number and block column that of the
block the row belongs to). Blocks scheduled as one unit share rows, so the CFG is not drawn
against the rows: it is a layered drawing (topological generations of the CFG without its back
edges), where no two blocks overlap. Marked in the table: instructions hoisted above an earlier
block's branch (code motion) and lanes forced by per-lane forwarding, as the scheduler recorded
them (`Schedule.hoisted`, `Schedule.forced_lane`).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Optional

import networkx as nx

from hxdpc.passes.schedule import CONT
from hxdpc.passes.text import insn_text

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 118, 34, 22, 36, 12
HOIST_MARK, FORCED_MARK = "^", "="
LEGEND = (f"{HOIST_MARK} hoisted above an earlier block's branch (code motion); "
          f"{FORCED_MARK} lane forced by per-lane forwarding")


def block_colour(b: int) -> str:
    """A light colour per block; neighbouring block numbers get distant hues (golden angle)."""
    return f"hsl({(b * 137.508) % 360:.0f},70%,86%)"


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: "Box") -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


# ------------------------------------------------------------------ what the schedule says

def _block_of(res) -> dict[int, int]:
    return {o.id: b for b, blk in enumerate(res.cfg.blocks) for o in blk.ops}


def _units(res) -> list[list[int]]:
    """Consecutive blocks the scheduler placed in one range of rows."""
    out: list[list[int]] = []
    for b, span in enumerate(res.schedule.block_rows):
        if out and res.schedule.block_rows[out[-1][-1]] == span and span[1] > span[0]:
            out[-1].append(b)
        else:
            out.append([b])
    return out


def row_owner(res) -> dict[int, int]:
    """Row -> the block it belongs to: in a unit, block k owns the rows after block k-1's
    branch up to its own branch (the last block the rest of the unit)."""
    sch, out = res.schedule, {}
    for unit in _units(res):
        start, end = sch.block_rows[unit[0]]
        cur = start
        for k, b in enumerate(unit):
            t = res.cfg.blocks[b].term
            last = end - 1
            if k < len(unit) - 1 and t is not None and t.id in sch.op_place:
                last = sch.op_place[t.id][0]
            for r in range(cur, last + 1):
                out[r] = b
            cur = max(cur, last + 1)
    return out


def block_span(res, b: int) -> Optional[tuple[int, int]]:
    """First and last row holding an instruction of block b (None for a block without any)."""
    rows = [res.schedule.op_place[o.id][0] for o in res.cfg.blocks[b].ops if o.id in res.schedule.op_place]
    return (min(rows), max(rows)) if rows else None


@dataclass(frozen=True)
class Cell:
    text: str
    block: Optional[int] = None        # the block the instruction comes from
    hoisted_above: Optional[int] = None  # the block whose branch it was moved above
    forced: bool = False


def row_cells(res, r: int) -> list[Cell]:
    sch, block_of = res.schedule, _block_of(res)
    out = []
    srow = sch.rows[r] if r < len(sch.rows) else [None] * res.image.lanes
    for lane, insn in enumerate(res.image.rows[r]):
        o = srow[lane] if lane < len(srow) else None
        if isinstance(o, str) and o == CONT:
            prev = srow[lane - 1]
            out.append(Cell("(lddw high word)", block_of.get(prev.id)))
        elif insn is None:
            out.append(Cell(""))
        elif o is None or not hasattr(o, "id"):
            out.append(Cell(insn_text(insn)))
        else:
            out.append(Cell(insn_text(insn), block_of.get(o.id), sch.hoisted.get(o.id), o.id in sch.forced_lane))
    return out


def _bounds(res, arrow: str, less: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for b in res.image.bounds:
        out.setdefault(b.row, []).append(f"len{less}{b.length}{arrow}exit {b.action}")
    return out


# ------------------------------------------------------------------------------- text

def _cell_text(c: Cell) -> str:
    marks = (HOIST_MARK if c.hoisted_above is not None else "") + (FORCED_MARK if c.forced else "")
    return f"{c.text} {marks}" if marks else c.text


def schedule_table(res) -> str:
    """Rows up to the last used one: row number, block, one column per lane, bounds checks."""
    img = res.image
    n = img.used_rows
    bounds = _bounds(res, "->", "<")
    owner = row_owner(res)
    table = [["row", "blk"] + [f"lane {i}" for i in range(img.lanes)] + ["hw bounds"]]
    marked = False
    for r in range(n):
        cells = row_cells(res, r)
        marked |= any(c.hoisted_above is not None or c.forced for c in cells)
        table.append([str(r), f"B{owner[r]}" if r in owner else ""] + [_cell_text(c) for c in cells]
                     + [", ".join(bounds.get(r, []))])
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if marked:
        lines.append(LEGEND)
    rep = res.report
    lines.append(f"{n} rows, {rep['slots']} slots, static IPC {rep['static_ipc']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------- the CFG drawing

def back_edges(cfg) -> set[tuple[int, int]]:
    """Edges that close a loop: to a block on the depth-first path from the entry (block order
    is not enough: the compiler places shared exit tails before some of their predecessors)."""
    g, out, done = cfg.graph, set(), set()
    for root in [0] + list(range(len(cfg.blocks))):
        if root in done or root not in g:
            continue
        on_path, stack = {root}, [(root, iter(sorted(g.successors(root))))]
        done.add(root)
        while stack:
            node, succs = stack[-1]
            nxt = next(succs, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
            elif nxt in on_path:
                out.add((node, nxt))
            elif nxt not in done:
                done.add(nxt)
                on_path.add(nxt)
                stack.append((nxt, iter(sorted(g.successors(nxt)))))
    return out


def _forward_dag(cfg) -> nx.DiGraph:
    """The CFG without its back edges."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(cfg.blocks)))
    back = back_edges(cfg)
    g.add_edges_from(e for e in cfg.graph.edges() if e not in back)
    return g


def block_layers(cfg) -> list[list[int]]:
    """Topological generations, each ordered by the mean position of its predecessors (fewer
    crossings), then by block number."""
    dag = _forward_dag(cfg)
    layers: list[list[int]] = []
    pos: dict[int, float] = {}
    for gen in nx.topological_generations(dag):
        def key(b):
            ps = [pos[p] for p in dag.predecessors(b) if p in pos]
            return (sum(ps) / len(ps) if ps else -1.0, b)
        layer = sorted(gen, key=key)
        for i, b in enumerate(layer):
            pos[b] = i
        layers.append(layer)
    return layers


def side_room(span: int) -> float:
    """How far beside the boxes an edge spanning `span` layers runs: further out the longer it
    is, so parallel edges stay apart, up to a limit that keeps big CFGs narrow."""
    return 8 + min(5 * span, 120)


def cfg_layout(res) -> dict[int, Box]:
    """A box per block: one layer per row of boxes, layers centred on the widest."""
    layers = block_layers(res.cfg)
    widest = max((len(layer) for layer in layers), default=1)
    out = {}
    for depth, layer in enumerate(layers):
        x0 = MARGIN + side_room(len(layers)) + (widest - len(layer)) * (BOX_W + GAP_X) / 2
        for i, b in enumerate(layer):
            out[b] = Box(x0 + i * (BOX_W + GAP_X), MARGIN + depth * (BOX_H + GAP_Y), BOX_W, BOX_H)
    return out


_EDGE_STYLE = {"fall": ("#555", ""), "taken": ("#c62828", ""), "back": ("#6a1b9a", ' stroke-dasharray="5,3"')}


def _side_path(a: Box, b: Box, lane_x: float, left: bool) -> str:
    """From a's side out to x = lane_x and into b's same side: clear of the boxes between."""
    if left:
        x1, y1, x2, y2 = a.x, a.y + a.h / 2, b.x - 2, b.y + b.h / 2
    else:
        x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x + b.w + 2, b.y + b.h / 2
    return f"M{x1:.0f} {y1:.0f} C{lane_x:.0f} {y1:.0f} {lane_x:.0f} {y2:.0f} {x2:.0f} {y2:.0f}"


def _down_path(a: Box, b: Box) -> str:
    x1, y1, x2, y2 = a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y - 2
    mid = (y2 - y1) / 2
    return f"M{x1:.0f} {y1:.0f} C{x1:.0f} {y1 + mid:.0f} {x2:.0f} {y2 - mid:.0f} {x2:.0f} {y2:.0f}"


def edge_paths(res, boxes: dict[int, Box]) -> list[tuple[int, int, str, str]]:
    """(u, v, kind, SVG path) per CFG edge. An edge to the next layer goes straight down; one
    that skips layers, or goes back (a loop), runs beside the boxes it passes, further out the
    more layers it spans, so it is never hidden behind a block: on the left for a block left
    of the drawing's middle, else on the right."""
    out, back = [], back_edges(res.cfg)
    middle = (min(x.x for x in boxes.values()) + max(x.x + x.w for x in boxes.values())) / 2
    for u, v, d in res.cfg.graph.edges(data=True):
        kind = "back" if (u, v) in back else ("fall" if d.get("kind") == "fall" else "taken")
        a, b = boxes[u], boxes[v]
        span = abs(round((b.y - a.y) / (BOX_H + GAP_Y)))
        if kind != "back" and span == 1:
            out.append((u, v, kind, _down_path(a, b)))
            continue
        lo, hi = min(a.y, b.y), max(a.y, b.y)
        between = [x for x in boxes.values() if lo <= x.y <= hi]
        if a.x + a.w / 2 < middle - 1:
            lane_x = min(x.x for x in between) - side_room(span)
            out.append((u, v, kind, _side_path(a, b, lane_x, True)))
        else:
            lane_x = max(x.x + x.w for x in between) + side_room(span)
            out.append((u, v, kind, _side_path(a, b, lane_x, False)))
    return out


def cfg_svg(res) -> str:
    boxes = cfg_layout(res)
    depth = len({b.y for b in boxes.values()})
    width = max((b.x + b.w for b in boxes.values()), default=0) + side_room(depth) + MARGIN
    height = max((b.y + b.h for b in boxes.values()), default=0) + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             'font-family="monospace" font-size="11"><defs>']
    for kind, (colour, _) in _EDGE_STYLE.items():
        parts.append(f'<marker id="arrow-{kind}" markerWidth="7" markerHeight="7" refX="6" refY="3.5" '
                     f'orient="auto"><path d="M0,0 L7,3.5 L0,7 z" fill="{colour}"/></marker>')
    parts.append("</defs>")
    for u, v, kind, path in edge_paths(res, boxes):
        colour, dash = _EDGE_STYLE[kind]
        parts.append(f'<path class="edge {kind}" d="{path}" '
                     f'fill="none" stroke="{colour}" stroke-width="1.3"{dash} marker-end="url(#arrow-{kind})"/>')
    for b, box in sorted(boxes.items()):
        span = block_span(res, b)
        rows = "no rows" if span is None else (f"row {span[0]}" if span[0] == span[1] else f"rows {span[0]}-{span[1]}")
        parts.append(f'<g class="block" data-block="{b}"><rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w}" '
                     f'height="{box.h}" rx="4" fill="{block_colour(b)}" stroke="#444"/>'
                     f'<text x="{box.x + 6:.0f}" y="{box.y + 14:.0f}" font-weight="bold">B{b}</text>'
                     f'<text x="{box.x + 6:.0f}" y="{box.y + 28:.0f}">{rows}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------- HTML

def _cell_html(c: Cell, lane: int) -> str:
    if c.block is None:
        return f"<td>{html.escape(c.text)}</td>"
    notes, classes, text = [f"from B{c.block}"], [], html.escape(c.text)
    if c.hoisted_above is not None:
        classes.append("hoisted")
        notes.append(f"hoisted above the branch of B{c.hoisted_above}")
        text = f'<b class="mark">{HOIST_MARK}</b> {text}'
    if c.forced:
        classes.append("forced")
        notes.append(f"lane {lane} forced by per-lane forwarding")
        text = f'{text} <b class="mark">{FORCED_MARK}</b>'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return (f'<td{cls} style="background:{block_colour(c.block)}" title="{html.escape("; ".join(notes))}">'
            f"{text}</td>")


_CSS = ("body{font-family:sans-serif;margin:12px} table{border-collapse:collapse;font-family:monospace;"
        "font-size:11px} td,th{border:1px solid #bbb;padding:1px 6px;white-space:nowrap} th{background:#eee}"
        "td.hoisted{outline:2px dashed #1565c0;outline-offset:-2px} td.forced{box-shadow:inset 0 -3px 0 #ef6c00}"
        ".mark{color:#b71c1c} .legend{font-size:12px;margin:6px 0 10px} .legend span{margin-right:14px}"
        ".cfg{flex:none} h3{margin:4px 0}")


def _legend() -> str:
    return ("<div class='legend'>"
            "<span>cell colour = the block its instruction comes from (as in the drawing)</span>"
            f"<span style='outline:2px dashed #1565c0;padding:0 3px'><b class='mark'>{HOIST_MARK}</b> hoisted "
            "above an earlier block's branch (code motion)</span>"
            f"<span style='box-shadow:inset 0 -3px 0 #ef6c00;padding:0 3px'><b class='mark'>{FORCED_MARK}</b> "
            "lane forced by per-lane forwarding</span><br>"
            "<span>edges: <b style='color:#555'>grey</b> fall-through, <b style='color:#c62828'>red</b> "
            "taken branch, <b style='color:#6a1b9a'>dashed purple</b> back edge</span></div>")


def schedule_html(res, row_h: int = 20) -> str:
    img = res.image
    n = img.used_rows
    owner = row_owner(res)
    bounds = _bounds(res, "&rarr;", "&lt;")
    rows = []
    for r in range(n):
        own = owner.get(r)
        style = f"background:{block_colour(own)}" if own is not None else ""
        cells = "".join(_cell_html(c, lane) for lane, c in enumerate(row_cells(res, r)))
        rows.append(f'<tr style="height:{row_h}px"><td style="{style}">{r}</td>'
                    f'<td style="{style}">{"" if own is None else f"B{own}"}</td>{cells}'
                    f'<td>{", ".join(bounds.get(r, []))}</td></tr>')
    head = "".join(f"<th>lane {i}</th>" for i in range(img.lanes))
    rep = res.report
    title = html.escape(img.name or "schedule")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
            f"</head><body><h3>{title}: {n} rows x {img.lanes} lanes, {rep['slots']} slots, static IPC "
            f"{rep['static_ipc']}</h3>{_legend()}"
            f"<div style='display:flex;gap:16px;align-items:flex-start'><div class='cfg'>{cfg_svg(res)}</div>"
            f"<table><tr><th>row</th><th>block</th>{head}<th>hw bounds</th></tr>{''.join(rows)}"
            "</table></div></body></html>\n")
