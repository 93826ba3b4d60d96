"""The DDG's typed edges (hxdpc.analysis.ddg.Dep) and the scheduler's separate rules:
dependences, per-lane forwarding, structural hazards, lane order and lane choice."""
from __future__ import annotations

from hxdpc.analysis.absval import per_op_values
from hxdpc.analysis.cfg import build_cfg
from hxdpc.analysis.ddg import DepKind, build_ddg, dep, heights
from hxdpc.analysis.ir import lift
from hxdpc.passes.schedule import _choose_lane, _deps_met, _forwarding_lanes, _min_lane, _row_hazard
from isa.asm import assemble_program


def block(text: str):
    func = lift(assemble_program(text))
    cfg = build_cfg(func)
    ops = cfg.blocks[0].ops
    return ops, build_ddg(ops, per_op_values(cfg))


TEXT = """r2 = *(u32 *)(r1 + 0)
r3 = r2
r2 = 5
*(u64 *)(r10 - 8) = r3
r4 = *(u64 *)(r10 - 8)
r2 = 6
r0 = r4
exit
"""


def test_edges_carry_their_kinds_latency_and_forwarding():
    ops, g = block(TEXT)
    true = dep(g, 0, 1)                  # r3 = r2 reads the load's r2
    assert true.kinds == {DepKind.TRUE} and true.latency == 1 and true.forward
    anti = dep(g, 1, 2)                  # r2 = 5 after r3 = r2 read it: same row allowed
    assert DepKind.ANTI in anti.kinds and anti.latency == 0 and not anti.forward
    assert DepKind.OUTPUT in dep(g, 0, 2).kinds and dep(g, 0, 2).latency == 1
    mem = dep(g, 3, 4)                   # the store, then the load of the same stack bytes
    assert DepKind.MEMORY in mem.kinds and mem.latency == 1
    assert DepKind.OUTPUT in dep(g, 2, 5).kinds
    ctl = dep(g, 2, 7)                   # every op is in the exit's row or earlier
    assert ctl.kinds == {DepKind.CONTROL} and ctl.latency == 0
    exit_read = dep(g, 6, 7)             # exit reads r0 in the row of its producer (control lane)
    assert DepKind.TRUE in exit_read.kinds and exit_read.latency == 0 and not exit_read.forward
    assert heights(g)[0] == 4            # load -> r3 -> store -> load -> r0 (same row as exit)


def test_merged_edges_keep_every_kind_and_the_longer_latency():
    ops, g = block("r2 = r1\nr1 = r2\nr0 = 0\nexit\n")
    d = dep(g, 0, 1)                     # r1 = r2 reads r2 (true) and rewrites r1 that op 0 read (anti)
    assert d.kinds == {DepKind.TRUE, DepKind.ANTI} and d.latency == 1


def test_scheduler_rules_are_separate():
    ops, g = block(TEXT)
    assert not _deps_met(1, g, {}, 0)
    assert not _deps_met(1, g, {0: (0, 2)}, 0) and _deps_met(1, g, {0: (0, 2)}, 1)
    # forwarding binds r3 = r2 in the row after the load to the load's lane
    assert _forwarding_lanes(1, ops, g, {0: (0, 2)}, 1, {}) == (True, {2})
    # a unit's first row reading a register two predecessor lanes wrote cannot issue
    assert _forwarding_lanes(0, ops, g, {}, 0, {1: {0, 1}}) == (False, None)
    assert _forwarding_lanes(0, ops, g, {}, 0, None) == (False, None)
    row = [ops[0], None, None, None]
    assert _row_hazard(ops[2], row)      # both write r2
    assert not _row_hazard(ops[1], row)
    # lane strategy: the forced lane; else lanes the previous row did not write first
    assert _choose_lane({2}, 0, 1, [None] * 4, 4, set()) == 2
    assert _choose_lane(set(), 0, 1, [None] * 4, 4, set()) is None
    assert _choose_lane(None, 0, 1, [None] * 4, 4, {0, 1}) == 2
    assert _choose_lane(None, 0, 2, [None, None, None, ops[0]], 4, {0}) == 1
    assert _choose_lane(None, 3, 1, [None] * 4, 4, set()) == 3
    # a branch or exit goes above the control ops already in its row
    assert _min_lane(ops[7], [ops[7], None, None, None]) == 1 and _min_lane(ops[1], [ops[7], None]) == 0
