"""isa/helpers.py, THE helper table, against the runtime's helper implementations.

A helper the table wrongly lists as keeping the packet gives wrong results in generated
code (Sephirot's fast engine keeps its view of the packet across the call) and nothing
else would notice: every runtime helper runs here on a real session with random valid
arguments, and for each one the table says keeps the packet, the packet region (object,
base, bytes object, length) and xdp_md.data/data_end/data_meta must be as before."""
from __future__ import annotations

import random

import pytest

from isa import layout
from emulator.runtime.env import RunResult, TailCall
from emulator.runtime.memory import Fault
from emulator.runtime import helpers as H
from emulator.runtime.results import PacketInput
from emulator.runtime.session import Session
from emulator.sephirot.timing import DEFAULT_TIMING, call_timing, exit_timing, helper_latency
from isa import helpers as HT
from isa.insn import Insn
from isa.program import MapDef, Program
from isa.uapi import MAP_TYPE_IDS as T

MAPS = [MapDef("h", T["hash"], 4, 8, 8), MapDef("a", T["array"], 4, 64, 4),
        MapDef("pa", T["percpu_array"], 4, 8, 2), MapDef("dev", T["devmap"], 4, 4, 4),
        MapDef("rb", T["ringbuf"], 0, 0, 4096), MapDef("jmp", T["prog_array"], 4, 4, 2),
        MapDef("ev", T["perf_event_array"], 4, 4, 2)]


class NoCallbacks:
    def call(self, func_addr, args):
        raise Fault("no callbacks here")


def packet_state(env, ctx: int) -> tuple:
    data, end, meta = (env.mem.load(ctx + k, 4) for k in (0, 4, 8))
    region = env.mem.find(data, 1)[0]
    return region, region.base, id(region.data), len(region.data), data, end, meta


class Probe:
    """An executor calling helpers with random arguments drawn from what a program could
    pass (map handles, pointers into the context, packet and map values, sizes, flags,
    pointers earlier helpers returned); per helper: (calls, normal returns, changed)."""

    def __init__(self, nums: list[int], calls: int, seed: int):
        self.nums, self.calls, self.rng = nums, calls, random.Random(seed)
        self.seen: dict[int, list[int]] = {n: [0, 0, 0] for n in nums}

    def run(self, env, r1, budget=None) -> RunResult:
        rng = self.rng
        data = env.mem.load(r1, 4)
        pool = [m.handle for m in env.maps.maps] + [m.base for m in env.maps.maps if m.region is not None]
        pool += [r1, data, data + 14, 0, 1, 2, 4, 8, 14, 16, 20, 64, 0xFFFFFFFF, (-16) & H.M64, (-1) & H.M64]
        for _ in range(self.calls):
            num = rng.choice(self.nums)
            args = tuple(rng.choice(pool) for _ in range(5))
            before = packet_state(env, r1)
            stat = self.seen[num]
            stat[0] += 1
            try:
                r0 = env.helper(num, args, NoCallbacks())
                stat[1] += 1
                if r0 and HT.returns_pointer(num):
                    pool.append(r0)
            except (Fault, TailCall):
                pass
            if packet_state(env, r1) != before:
                stat[2] += 1
            data = env.mem.load(r1, 4)
        return RunResult(2, None, 0, {})


def _session(probe) -> Session:
    prog = Program("probe", [Insn(0xB7, 0, 0, 0, 2), Insn(0x95)], maps=list(MAPS))
    return Session(prog, executor=probe, maps=None)


def _run(probe, n_packets: int = 4) -> None:
    s = _session(probe)
    for i in range(n_packets):
        frame = bytes(random.Random(i).getrandbits(8) for _ in range(64 + 40 * i))
        s.run(PacketInput(i, frame, len(frame)))


def test_every_runtime_helper_is_in_the_table_with_its_name():
    assert set(H.HELPERS) <= set(HT.BY_NUM)
    for num, fn in H.HELPERS.items():
        h = HT.BY_NUM[num]
        assert fn.__name__ in (h.name, "ktime_get_ns"), (num, fn.__name__)
        assert H.helper_name(num) == h.full_name


@pytest.mark.parametrize("seed", [1, 2])
def test_helpers_the_table_says_keep_the_packet_keep_it(seed):
    keeps = [n for n in H.HELPERS if HT.keeps_packet(n)]
    probe = Probe(keeps, 1500, seed)
    _run(probe)
    changed = {n: s for n, s in probe.seen.items() if s[2]}
    assert not changed, f"listed as keeping the packet, but moved it: {changed}"
    # not vacuous: every one of them ran to a normal return with such arguments
    never = [HT.helper_name(n) for n, s in probe.seen.items() if not s[1]]
    assert not never, f"never returned normally: {never}"


def test_the_probe_sees_a_helper_that_moves_the_packet():
    moves = [n for n in H.HELPERS if HT.BY_NUM[n].packet == HT.Packet.MOVES and not HT.BY_NUM[n].calls_back]
    assert set(moves) == {HT.number("xdp_adjust_head"), HT.number("xdp_adjust_meta"),
                          HT.number("xdp_adjust_tail")}
    probe = Probe(moves, 400, 3)
    _run(probe)
    assert all(s[2] for s in probe.seen.values()), probe.seen


def test_pointer_returning_helpers():
    assert {h.name for h in HT.TABLE if h.returns_pointer} == {
        "map_lookup_elem", "ringbuf_reserve", "map_lookup_percpu_elem"}


def test_latency_classes_give_the_calibrated_cycles():
    tm = DEFAULT_TIMING
    n = HT.number
    assert helper_latency(tm, n("map_lookup_elem"), (), 4) == 2
    assert helper_latency(tm, n("map_lookup_elem"), (), 40) == 3
    assert helper_latency(tm, n("map_update_elem"), (), 4) == 3
    assert helper_latency(tm, n("map_delete_elem"), (), 64) == 3
    assert helper_latency(tm, n("csum_diff"), (0, 40, 0, 40, 0), 0) == 3
    assert helper_latency(tm, n("xdp_load_bytes"), (0, 0, 0, 65, 0), 0) == 3
    assert helper_latency(tm, n("fib_lookup"), (), 0) == 4
    assert helper_latency(tm, n("xdp_adjust_head"), (), 0) == 1
    assert helper_latency(tm, n("redirect_map"), (), 0) == 2
    assert helper_latency(tm, n("redirect"), (), 0) == 1 == helper_latency(tm, 9999, (), 0)
    ct = call_timing(tm, n("xdp_adjust_tail"), (), 0)
    assert (ct.ready, ct.commit) == (3, 4)
    assert call_timing(tm, n("map_lookup_elem"), (), 4).commit is None
    assert exit_timing(tm, True).readback == tm.regfile_readback and exit_timing(tm, False).readback is None
    assert exit_timing(tm.with_(early_exit=False), False).offset == tm.stages_after_if


def test_kernel_facts_come_from_the_table():
    from emulator import kernel as K
    assert K.NONDETERMINISTIC_HELPERS == {5, 7, 118, 125, 160, 208}
    assert K.HELPER_NAMES[69] == "bpf_fib_lookup" and K.FIB_LOOKUP == 69
    assert layout.MAP_HANDLE_BASE     # the probe's map handles are real ones
