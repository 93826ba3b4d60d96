"""The generated-code engine (fast.py) against the row-by-row reference (core.py): same
action, errors, memory and every cycle figure, on random images and on compiled samples."""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.runtime.env import Env
from emulator.runtime.memory import Memory, Region
from emulator.sephirot import DEFAULT_TIMING, Sephirot
from isa.image import Image
from isa.insn import Insn
from isa.opcodes import BY_KEY

SAMPLES = Path(__file__).resolve().parent.parent / "sample_programs"
MEM_BASE = 0x5000_0000
ALU_OPS = ["add", "sub", "mul", "or", "and", "xor", "lsh", "rsh", "arsh", "mov", "div", "mod"]


def _k(key, **kw):
    return Insn(BY_KEY[key].opcode, **kw)


reg = st.integers(0, 9)
imm = st.sampled_from([0, 1, 2, 7, 63, 255, -1, -8, 0x7FFFFFFF, -0x80000000])


@st.composite
def lane(draw):
    kind = draw(st.sampled_from(["none", "alu", "alu", "alu", "ld", "st", "br", "exit", "pexit",
                                 "atomic", "alu3", "end"]))
    if kind == "none":
        return None
    if kind == "alu":
        op = draw(st.sampled_from(ALU_OPS))
        w = draw(st.sampled_from([64, 32]))
        if draw(st.booleans()):
            return _k(f"{op}{w}_k", dst=draw(reg), imm=draw(imm))
        return _k(f"{op}{w}_x", dst=draw(reg), src=draw(reg))
    if kind == "alu3":
        op = draw(st.sampled_from(["add", "sub", "or", "and", "lsh", "rsh", "xor"]))
        return Insn(BY_KEY[f"{op}643_k"].opcode, dst=draw(reg), src=draw(reg),
                    off=BY_KEY[f"{op}643_k"].variant, imm=draw(imm))
    if kind == "end":
        key = draw(st.sampled_from(["be16", "be32", "le64", "bswap64"]))
        return _k(key, dst=draw(reg), imm=BY_KEY[key].variant)
    size = draw(st.sampled_from(["b", "h", "w", "dw"]))
    base = draw(st.sampled_from([10, 10, 10, 1]))        # stack, or the r1 memory block
    off = -draw(st.integers(1, 8)) * 8 if base == 10 else draw(st.integers(0, 7)) * 8
    if kind == "ld":
        return _k(f"ldx{size}", dst=draw(reg), src=base, off=off)
    if kind == "st":
        if draw(st.booleans()):
            return _k(f"st{size}", dst=base, off=off, imm=draw(imm))
        return _k(f"stx{size}", dst=base, src=draw(reg), off=off)
    if kind == "atomic":
        return _k("lock_add", dst=base, src=draw(reg), off=off)
    if kind == "br":
        op = draw(st.sampled_from(["jeq", "jne", "jgt", "jsgt", "jset", "jle"]))
        return _k(f"{op}64_k", dst=draw(reg), imm=draw(imm), off=draw(st.integers(-3, 3)))
    if kind == "exit":
        return _k("exit")
    return _k("pexit", imm=draw(st.integers(0, 4)))


@st.composite
def images(draw):
    n = draw(st.integers(1, 8))
    rows = [tuple(draw(lane()) for _ in range(4)) for _ in range(n)]
    rows.append((_k("exit"), None, None, None))
    return Image(rows=rows)


class _MemEnv(Env):
    def __init__(self, data: bytes):
        super().__init__(Memory())
        self.region = self.mem.add(Region("mem", MEM_BASE, bytearray(data), True, "mem"))


def _both(img: Image, data: bytes, timing=DEFAULT_TIMING):
    out = []
    for engine in ("core", "fast"):
        env = _MemEnv(data)
        sep = Sephirot(img, engine=engine, timing=timing)
        res = [sep.run(env, MEM_BASE) for _ in range(2)]
        out.append(([(r.r0, r.error, r.steps, r.extra) for r in res], bytes(env.region.data),
                    sep.stats.to_json()))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.binary(min_size=64, max_size=64))
def test_fast_engine_equals_core_on_random_images(img, data):
    core, fast = _both(img, data, DEFAULT_TIMING.with_(max_rows=300))
    assert fast == core


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.binary(min_size=64, max_size=64))
def test_fast_engine_equals_core_with_other_timings(img, data):
    tm = DEFAULT_TIMING.with_(max_rows=300, load_address_stall=True, branch_taken_penalty=2,
                              early_exit=False)
    core, fast = _both(img, data, tm)
    assert fast == core


def _compiled_sessions(name: str, pcap: str, limit: int):
    from emulator.runtime.pcapio import read_packets
    from emulator.runtime.session import Session
    from hxdpc.compiler import compile_program
    from isa.loader import load
    from tests.test_equivalence import session_kwargs
    prog = load(str(SAMPLES / f"{name}.o"))
    img = compile_program(prog).image
    pkts = list(read_packets(str(SAMPLES / "pcaps" / pcap)))[:limit]
    out = []
    for engine in ("core", "fast"):
        sep = Sephirot(img, engine=engine)
        s = Session(prog, executor=sep, **session_kwargs(name))
        res = [s.run(p) for p in pkts]
        out.append(([(r.action, r.data, r.error, r.extra) for r in res], s.dump_maps(),
                    sep.stats.to_json()))
    return out


@pytest.mark.parametrize("name,pcap", [("simple_firewall", "simple_firewall-flows.pcap"),
                                       ("simple_firewall", "simple_firewall-hostile.pcap"),
                                       ("xdp1", "xdp1-hostile.pcap"),
                                       ("router_ipv4", "router_ipv4-normal.pcap"),
                                       ("ubench_redirect", "ubench_redirect-hostile.pcap")])
def test_fast_engine_equals_core_on_compiled_samples(name, pcap):
    if not (SAMPLES / f"{name}.o").exists():
        pytest.skip(f"{name}.o not built")
    core, fast = _compiled_sessions(name, pcap, 150)
    assert fast == core


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.binary(min_size=64, max_size=64))
def test_per_block_functions_equal_core(img, data):
    """The per-block mode (used when an image has very many reachable blocks)."""
    from emulator.sephirot import fast
    saved = fast.MAX_WHOLE_BLOCKS
    fast.MAX_WHOLE_BLOCKS = 0
    try:
        core, fast_ = _both(img, data, DEFAULT_TIMING.with_(max_rows=300))
    finally:
        fast.MAX_WHOLE_BLOCKS = saved
    assert fast_ == core
