"""The schedule view for people (hxdpc/schedview.py): every block visible, one colour per block
in the drawing and the table, a block column, hoisted ops and forwarding-forced lanes marked."""
from __future__ import annotations

import itertools
import re
from functools import lru_cache

import pytest

from conftest import SAMPLES
from hxdpc.compiler import compile_program
from isa.loader import load
from hxdpc.analysis.ir import effects
from hxdpc.schedview import (BOX_H, back_edges, block_colour, block_layers, cfg_layout, row_owner, schedule_html,
                             schedule_table)

NAMES = sorted(p.stem for p in SAMPLES.glob("*.o"))


@lru_cache(maxsize=None)
def compiled(name: str):
    return compile_program(load(str(SAMPLES / f"{name}.o")))


@pytest.mark.parametrize("name", NAMES)
def test_no_two_block_boxes_overlap(name):
    res = compiled(name)
    boxes = cfg_layout(res)
    assert set(boxes) == set(range(len(res.cfg.blocks)))
    for (a, ba), (b, bb) in itertools.combinations(sorted(boxes.items()), 2):
        assert not ba.overlaps(bb), (name, a, b, ba, bb)


def test_xdp2_blocks_of_one_unit_are_drawn_apart():
    """The defect: B0-B1, B2-B3, B5-B8, B9-B10, B11-B12 share rows and were drawn on each other."""
    res = compiled("xdp2")
    svg = schedule_html(res)
    drawn = {int(m) for m in re.findall(r'<g class="block" data-block="(\d+)">', svg)}
    assert drawn == set(range(len(res.cfg.blocks)))
    boxes = cfg_layout(res)
    for a, b in ((0, 1), (2, 3), (5, 6), (6, 7), (7, 8), (9, 10), (11, 12)):
        assert res.schedule.block_rows[a] == res.schedule.block_rows[b]
        assert not boxes[a].overlaps(boxes[b])


@pytest.mark.parametrize("name", ["xdp2", "simple_firewall", "katran_lb"])
def test_every_edge_goes_down_a_layer_unless_it_closes_a_loop(name):
    res = compiled(name)
    layer = {b: i for i, layer in enumerate(block_layers(res.cfg)) for b in layer}
    boxes = cfg_layout(res)
    for u, v in res.cfg.graph.edges():
        if layer[v] <= layer[u]:
            assert (u, v) in back_edges(res.cfg)
        assert boxes[v].y >= boxes[u].y + BOX_H or layer[v] <= layer[u]


def _cells(page: str):
    """(row, block column, [(background, title, classes, text)] per lane) of the HTML table."""
    out = []
    for tr in re.findall(r"<tr style=[^>]*>(.*?)</tr>", page):
        tds = re.findall(r"<td([^>]*)>(.*?)</td>", tr)
        out.append((tds[0][1], tds[1][1], tds[2:-1]))
    return out


@pytest.mark.parametrize("name", ["xdp2", "simple_firewall", "tx_ip_tunnel"])
def test_colours_agree_between_drawing_and_table(name):
    res = compiled(name)
    page = schedule_html(res)
    fills = dict(re.findall(r'data-block="(\d+)"><rect [^>]*fill="([^"]+)"', page))
    owner = row_owner(res)
    rows = _cells(page)
    assert len(rows) == res.report["rows"]
    for r, (num, blk, lanes) in enumerate(rows):
        assert num == str(r) and blk == f"B{owner[r]}"
        for attrs, _ in lanes:
            m = re.search(r'background:([^"]+)".*title="from B(\d+)', attrs)
            if m:
                assert m.group(1) == fills[m.group(2)] == block_colour(int(m.group(2)))


def test_row_owner_holds_an_op_of_its_block_or_is_between_them():
    """A row belongs to a block of its unit that is not past the row: its branch is not above."""
    for name in NAMES:
        res = compiled(name)
        sch = res.schedule
        block_of = {o.id: b for b, blk in enumerate(res.cfg.blocks) for o in blk.ops}
        for r, b in row_owner(res).items():
            start, end = sch.block_rows[b]
            assert start <= r < end, (name, r, b)
            for o in sch.rows[r]:
                if hasattr(o, "id") and o.id not in sch.hoisted:
                    assert block_of[o.id] >= b, (name, r, b)


@pytest.mark.parametrize("name", NAMES)
def test_hoisted_ops_really_sit_at_or_above_an_earlier_branch(name):
    res = compiled(name)
    sch, cfg = res.schedule, res.cfg
    block_of = {o.id: b for b, blk in enumerate(cfg.blocks) for o in blk.ops}
    for op_id, above in sch.hoisted.items():
        home = block_of[op_id]
        assert above < home and sch.block_rows[above] == sch.block_rows[home]
        assert sch.op_place[op_id][0] <= sch.op_place[cfg.blocks[above].term.id][0]
    for op_id in sch.op_place:       # and nothing that sits below every earlier branch is marked
        home = block_of[op_id]
        earlier = [b for b in range(home) if sch.block_rows[b] == sch.block_rows[home]
                   and cfg.blocks[b].term is not None]
        row = sch.op_place[op_id][0]
        op = next(o for o in cfg.blocks[home].ops if o.id == op_id)
        if all(sch.op_place[cfg.blocks[b].term.id][0] < row for b in earlier) or op is cfg.blocks[home].term:
            assert op_id not in sch.hoisted


@pytest.mark.parametrize("name", NAMES)
def test_forced_lanes_read_a_value_made_on_that_lane_in_the_row_before(name):
    """Inside a unit the value comes from the row before; at a unit's first row it comes from a
    predecessor's last row, which the unit cannot see."""
    res = compiled(name)
    sch = res.schedule
    ops = {o.id: (b, o) for b, blk in enumerate(res.cfg.blocks) for o in blk.ops}
    assert sch.forced_lane <= set(sch.op_place)
    for op_id in sch.forced_lane:
        r, lane = sch.op_place[op_id]
        b, op = ops[op_id]
        if r == sch.block_rows[b][0]:
            continue
        made = sch.rows[r - 1][lane]
        assert hasattr(made, "id") and effects(made).writes & effects(op).reads, (name, r, lane)


def test_marks_in_the_page_and_the_table():
    res = compiled("simple_firewall")
    sch = res.schedule
    assert sch.hoisted and sch.forced_lane
    page = schedule_html(res)
    assert page.count('class="hoisted') == len(sch.hoisted)
    assert len(re.findall(r'class="(?:hoisted )?forced"', page)) == len(sch.forced_lane)
    assert "hoisted above the branch of B" in page and "forced by per-lane forwarding" in page
    table = schedule_table(res)
    assert "^ hoisted above an earlier block's branch" in table
    assert sum(line.count(" ^") for line in table.splitlines()[2:-2]) == len(sch.hoisted)


def test_a_loop_is_drawn_with_a_back_edge_and_layered_without_it():
    from isa.asm import assemble_program
    text = ("r0 = 0\nr1 = 5\nloop:\nr0 += 1\nif r0 > 3 goto skip\nr0 += 1\nskip:\nr1 += -1\n"
            "if r1 != 0 goto loop\nr0 = 2\nexit\n")
    res = compile_program(assemble_program(text))
    back = back_edges(res.cfg)
    assert len(back) == 1
    (u, v), = back
    assert v < u and res.cfg.graph.has_edge(u, v)
    layer = {b: i for i, layer in enumerate(block_layers(res.cfg)) for b in layer}
    assert layer[v] < layer[u]                       # the loop head stays above its latch
    boxes = cfg_layout(res)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes.values(), 2))
    assert schedule_html(res).count('class="edge back"') == 1
