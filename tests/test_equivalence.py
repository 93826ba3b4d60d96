"""The compiler's acceptance check: every sample program, compiled with default options and
with each optimisation disabled in turn, gives on Sephirot the same action, bytes and final
maps as the reference interpreter on the original bytecode, on all its pcaps (hostile,
short and truncated packets included); plus generated programs and packets (hypothesis).

CI time: the default-options run covers every packet of every pcap; the per-optimisation
matrix samples packets of each pcap (every k-th, at most PER_PCAP)."""
from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.runtime.fib import parse_fib
from emulator.runtime.pcapio import read_packets
from emulator.interp.interpreter import Interpreter
from emulator.runtime.session import PacketInput, Session
from emulator.sephirot import Sephirot
from isa.insn import Insn
from isa.opcodes import BY_KEY
from isa.program import Function, Program

SAMPLES = Path(__file__).resolve().parent.parent / "sample_programs"
PCAPS = SAMPLES / "pcaps"
PER_PCAP = 25
DEPTH = 4096          # a deeper instruction memory than the prototype's 256 rows (katran_lb)

compiler = pytest.importorskip("hxdpc.compiler")
loader = pytest.importorskip("isa.loader")


def sample_names() -> list[str]:
    return sorted(p.stem for p in SAMPLES.glob("*.o"))


def pcaps_of(name: str) -> list[Path]:
    return sorted(p for p in PCAPS.glob(f"{name}-*") if p.suffix in (".pcap", ".pcapng"))


def session_kwargs(name: str) -> dict:
    """The presets of a sample: NAME.maps.json, NAME.fib.json, its other programs."""
    kw: dict = {}
    m = SAMPLES / f"{name}.maps.json"
    if m.exists():
        kw["maps"] = json.loads(m.read_text())
        kw["maps_source"] = str(m)
    f = SAMPLES / f"{name}.fib.json"
    if f.exists():
        kw["fib"] = parse_fib(json.loads(f.read_text()), str(f))
    try:
        kw["programs"] = {p.name: p for p in loader.load_all(str(SAMPLES / f"{name}.o"))}
    except Exception:
        pass
    return kw


@lru_cache(maxsize=None)
def _kwargs(name: str) -> dict:
    return session_kwargs(name)


@lru_cache(maxsize=None)
def _program(name: str):
    return loader.load(str(SAMPLES / f"{name}.o"))


def _options(disabled: str = ""):
    opts = compiler.CompileOptions(depth=DEPTH)
    if disabled:
        opts = dataclasses.replace(opts, **{disabled: False})
    return opts


@lru_cache(maxsize=None)
def _interp_results(name: str, pcap: str, step: int, limit: int):
    prog = _program(name)
    s = Session(prog, executor=Interpreter, **_kwargs(name))
    pkts = list(read_packets(str(PCAPS / pcap)))[::step][:limit]
    return pkts, [_view(s.run(p)) for p in pkts], s.dump_maps()


def _view(r) -> tuple:
    return (r.action, r.data.hex(), r.meta.hex(), r.redirect, r.error is None, r.ran)


@lru_cache(maxsize=None)
def _image(name: str, disabled: str):
    return compiler.compile_program(_program(name), _options(disabled)).image


def _sephirot_results(name: str, pkts, disabled: str):
    prog = _program(name)
    opts = _options(disabled)

    def compile_fn(p):
        return compiler.compile_program(p, opts).image

    sep = Sephirot(_image(name, disabled), compile_fn=compile_fn)
    s = Session(prog, executor=sep, **_kwargs(name))
    res = [s.run(p) for p in pkts]
    return [_view(r) for r in res], s.dump_maps(), res


def _compare(name: str, pcap: str, disabled: str = "", step: int = 1, limit: int = 10 ** 9) -> None:
    pkts, want, want_maps = _interp_results(name, pcap, step, limit)
    got, got_maps, raw = _sephirot_results(name, pkts, disabled)
    for p, w, g, r in zip(pkts, want, got, raw):
        assert g == w, (f"{name} on {pcap}, packet {p.index}: interpreter {w[0]} "
                        f"(ok={w[4]}), sephirot {g[0]} (ok={g[4]}, error={r.error})")
    assert got_maps == want_maps, f"{name} on {pcap}: final maps differ"


CASES = [(n, p.name) for n in sample_names() for p in pcaps_of(n)]
OPTIMISATIONS = [f.name for f in dataclasses.fields(compiler.CompileOptions)
                 if f.type in (bool, "bool")]


@pytest.mark.parametrize("name,pcap", CASES)
def test_default_options_every_packet(name, pcap):
    _compare(name, pcap)


@pytest.mark.parametrize("disabled", OPTIMISATIONS)
@pytest.mark.parametrize("name", sample_names())
def test_each_optimisation_disabled(name, disabled):
    for pcap in pcaps_of(name):
        n = sum(1 for _ in read_packets(str(pcap)))
        _compare(name, pcap.name, disabled, step=max(1, n // PER_PCAP), limit=PER_PCAP)


def test_the_matrix_covers_the_compilers_switches():
    assert {"bounds_removal", "zero_removal", "three_operand", "load48", "param_exit"} <= set(OPTIMISATIONS)


# ---------------------------------------------------------------- generated programs

def _k(key, **kw):
    return Insn(BY_KEY[key].opcode, **kw)


ALU = ["add", "sub", "mul", "or", "and", "xor", "lsh", "rsh", "arsh", "mov", "div", "mod"]
reg = st.integers(2, 9)
small = st.integers(-300, 300)


@st.composite
def straight_insn(draw):
    """One verifier-friendly instruction on r2..r9, the stack, or bytes [0, 14) of the packet
    (r1 holds data after the prologue; a bounds check on 14 bytes guards it)."""
    kind = draw(st.sampled_from(["alu", "alu", "alu", "ldpkt", "stk", "ldstk"]))
    if kind == "alu":
        op = draw(st.sampled_from(ALU))
        w = draw(st.sampled_from([64, 32]))
        if draw(st.booleans()) or op in ("div", "mod"):
            imm = draw(small)
            if op in ("div", "mod") and imm == 0:
                imm = 3
            if op in ("lsh", "rsh", "arsh"):
                imm = abs(imm) % w
            return [_k(f"{op}{w}_k", dst=draw(reg), imm=imm)]
        if op in ("lsh", "rsh", "arsh"):
            s = draw(reg)
            return [_k(f"and{w}_k", dst=s, imm=w - 1), _k(f"{op}{w}_x", dst=draw(reg), src=s)]
        return [_k(f"{op}{w}_x", dst=draw(reg), src=draw(reg))]
    size = draw(st.sampled_from(["b", "h", "w"]))
    nbytes = {"b": 1, "h": 2, "w": 4}[size]
    if kind == "ldpkt":
        off = draw(st.integers(0, 14 - nbytes))
        return [_k(f"ldx{size}", dst=draw(reg), src=1, off=off)]
    slot = -8 * draw(st.integers(1, 4))
    if kind == "stk":
        return [_k(f"stx{size}", dst=10, src=draw(reg), off=slot)]
    return [_k(f"stdw", dst=10, off=slot, imm=0), _k(f"ldx{size}", dst=draw(reg), src=10, off=slot)]


@st.composite
def programs(draw):
    """Prologue (data/data_end, r2..r9 = 0, a 14-byte bounds check), then blocks of straight
    code separated by forward branches, then r0 = a computed action in 0..4 and exit."""
    pro = [_k("ldxw", dst=2, src=1, off=4), _k("ldxw", dst=1, src=1, off=0)]
    pro += [_k("mov64_x", dst=3, src=1), _k("add64_k", dst=3, imm=14)]
    body: list[list[Insn]] = []
    for _ in range(draw(st.integers(1, 4))):
        blk = []
        for _ in range(draw(st.integers(1, 6))):
            blk += draw(straight_insn())
        body.append(blk)
    # regs 4..9 start at 0 (the verifier needs them written): write them first
    init = [_k("mov64_k", dst=r, imm=draw(small)) for r in range(4, 10)]
    out = pro + [None] + init          # None: the bounds check, patched below
    branches = []
    for blk in body:
        out += blk
        branches.append(len(out))
        out.append(None)                # forward branch over nothing or to the epilogue
    epi = [_k("mov64_x", dst=0, src=draw(reg)), _k("and64_k", dst=0, imm=3), _k("exit")]
    drop = [_k("mov64_k", dst=0, imm=1), _k("exit")]
    end = len(out)
    insns = out + epi + drop
    drop_at = end + len(epi)
    insns[4] = _k("jgt64_x", dst=3, src=2, off=drop_at - 5)
    for b in branches:
        tgt = draw(st.sampled_from([b + 1, end]))
        cond = draw(st.sampled_from(["jeq", "jne", "jgt", "jsgt", "jset"]))
        insns[b] = _k(f"{cond}64_k", dst=draw(reg), imm=draw(small), off=tgt - b - 1)
    return Program("generated", insns, functions=[Function("generated", 0)])


packets = st.lists(st.binary(min_size=0, max_size=80), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), packets)
def test_generated_programs_and_packets(prog, pkts):
    image = compiler.compile_program(prog, compiler.CompileOptions()).image
    ref = Session(prog, executor=Interpreter)
    sep = Session(prog, executor=Sephirot(image, strict=True))
    for i, data in enumerate(pkts):
        p = PacketInput(i, data)
        a, b = ref.run(p), sep.run(p)
        assert _view(b) == _view(a), (a.error, b.error)
