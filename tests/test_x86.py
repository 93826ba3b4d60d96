"""The x86 target: its translation (Linux JIT model) run in unicorn gives the interpreter's
results on every sample program, pcap and preset, on the conformance suite, and on each
tricky variant (division by zero, masked shifts, sign extensions, byte swaps, atomics,
bpf_loop callbacks, tail calls, faults, the budget)."""
from __future__ import annotations

from functools import lru_cache

import pytest
from click.testing import CliRunner

from conftest import CONFORMANCE_DIR, needs_shared
from test_equivalence import PCAPS, _kwargs, _program, _view, pcaps_of, sample_names
from emulator import conformance
from emulator.conformance import ConformanceEnv, assemble
from emulator.interp.interpreter import Interpreter
from emulator.runtime.pcapio import read_packets
from emulator.runtime.session import Session
from emulator.x86.executor import X86
from emulator.x86.translate import translate
from hxdpc import targets
from hxdpc.cli import main
from isa.program import Program

CASES = [(n, p.name) for n in sample_names() for p in pcaps_of(n)]


@lru_cache(maxsize=None)
def _packets(pcap: str):
    return list(read_packets(str(PCAPS / pcap)))


def _stream(name: str, pcap: str, executor):
    s = Session(_program(name), executor=executor, **_kwargs(name))
    res = [s.run(p) for p in _packets(pcap)]
    return [_view(r) for r in res], [r.error for r in res], s.dump_maps()


@pytest.mark.parametrize("name,pcap", CASES)
def test_samples_equal_the_interpreter(name, pcap):
    want, want_err, want_maps = _stream(name, pcap, Interpreter)
    got, got_err, got_maps = _stream(name, pcap, X86)
    for k, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"{name} on {pcap}, packet {k}: interpreter {w}, x86 {g} ({got_err[k]})"
    assert got_err == want_err
    assert got_maps == want_maps


# ---------------------------------------------------------------- every register pair
# Each program below runs one ISA-table row on every (dst, src) register pair with the
# corner values (0, -1, INT_MIN, shift counts at and above the width...), storing what the
# row left in its registers into the memory block; x86 must leave the block as the
# interpreter does.  This is where the x86 register choices (rax/rdx of div, rcx of shifts,
# rax of cmpxchg, rbp/r13 addressing) meet every operand.

from random import Random

from isa import layout
from isa.insn import make
from isa.opcodes import TABLE, Kind
from emulator.runtime.env import Env
from emulator.runtime.memory import Region

MEM = layout.MEM_BASE
PAIRS = [(7, 0), (0, 5), (0, 0), (-1, 1 << 63), (1 << 63, -1), ((1 << 31), -1), (-1, 0x80000000),
         (0xFFFFFFFF, 32), (5, 63), (5, 64), (0x123456789ABCDEF0, 33), (-7, 3), (7, -3), (-8, -3)]
IMMS = [0, 1, -1, 3, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, -3]
REGS = range(10)          # r10 is read-only: a source only


def _lddw(reg: int, value: int):
    return make("lddw", dst=reg, imm=value & ((1 << 64) - 1))


def _pointer_reg(*busy: int) -> int:
    return next(r for r in REGS if r not in busy)


def _ops(spec):
    """(setup values, dst, src or None, imm) for every operand combination of the row."""
    if spec.reg_src:
        for d in REGS:
            for s in range(11):
                for a, b in PAIRS:
                    yield d, s, a, b, 0
    else:
        for d in REGS:
            for imm in IMMS:
                for a, _ in PAIRS[:6]:
                    yield d, None, a, None, imm


def _alu_program(spec) -> tuple[list, int]:
    out, n = [], 0
    for d, s, a, b, imm in _ops(spec):
        if s == 10 and spec.kind not in (Kind.MOV, Kind.MOVSX, Kind.ALU, Kind.JCOND):
            continue
        p = _pointer_reg(d, s if s is not None else d)
        out.append(_lddw(d, a))
        if s is not None and s != 10 and s != d:
            out.append(_lddw(s, b))
        out.append(_lddw(p, MEM + 16 * n))
        if spec.kind == Kind.JCOND:
            out += [make("stdw", dst=p, imm=1), make(spec.key, dst=d, src=s or 0, off=1, imm=imm),
                    make("stdw", dst=p, imm=2)]
        else:
            out.append(make(spec.key, dst=d, src=s or 0, imm=imm))
            out.append(make("stxdw", dst=p, src=d))
            if s is not None and s != 10:
                out.append(make("stxdw", dst=p, src=s, off=8))
        n += 1
    return out + [make("mov64_k", dst=0, imm=0), make("exit")], 16 * n


def _atomic_program(spec) -> tuple[list, int, bytes]:
    out, n = [], 0
    for d in REGS:
        for s in REGS:
            if s == d:
                continue
            for a, b in PAIRS[:4] + [(5, 5)]:
                base = MEM + 32 * n
                if 0 not in (d, s):
                    out.append(_lddw(0, a if n % 2 else b))      # cmpxchg's comparand: equal or not
                out += [_lddw(s, b), _lddw(d, base), make(spec.key, dst=d, src=s, off=8),
                        make("stxdw", dst=d, src=s, off=16)]
                if 0 != d:
                    out.append(make("stxdw", dst=d, src=0, off=24))
                n += 1
    init = b"".join(bytes(8) + (PAIRS[k % 5][0] & (1 << 64) - 1).to_bytes(8, "little") + bytes(16)
                    for k in range(n))
    return out + [make("mov64_k", dst=0, imm=0), make("exit")], 32 * n, init


def _memory_program(spec) -> tuple[list, int, bytes]:
    out, n = [], 0
    rng = Random(spec.key)
    data = bytes(rng.randrange(256) for _ in range(1024))
    for base in REGS:
        for r in range(11):
            if r == base and spec.kind in (Kind.LDX, Kind.LDXSX):
                pass
            if r == 10 and spec.kind in (Kind.LDX, Kind.LDXSX):
                continue
            for off in (0, 5, -3, 300, -300):
                p = _pointer_reg(base, r)
                out += [_lddw(base, MEM + 512 + 8 * (n % 40)), _lddw(p, MEM + 2048 + 8 * n)]
                if spec.kind in (Kind.LDX, Kind.LDXSX):
                    out += [make(spec.key, dst=r, src=base, off=off), make("stxdw", dst=p, src=r)]
                elif spec.kind == Kind.ST:
                    out.append(make(spec.key, dst=base, off=off, imm=rng.randrange(-2 ** 31, 2 ** 31)))
                else:
                    if r not in (base, 10):
                        out.append(_lddw(r, rng.randrange(2 ** 64)))
                    out.append(make(spec.key, dst=base, src=r, off=off))
                n += 1
    return out + [make("mov64_k", dst=0, imm=0), make("exit")], 2048 + 8 * n, data


def _compare_block(insns, size: int, init: bytes = b"") -> None:
    program = Program("corners", insns)
    block = (init + bytes(size))[:max(size, len(init))]
    results = []
    for executor in (Interpreter, X86):
        env = Env()
        region = env.mem.add(Region("mem", MEM, bytearray(block), True, "mem"))
        res = executor(program).run(env, MEM)
        results.append((res.r0, res.error, bytes(region.data)))
    (w_r0, w_err, w_mem), (g_r0, g_err, g_mem) = results
    assert (g_r0, g_err) == (w_r0, w_err)
    if g_mem != w_mem:
        k = next(i for i in range(len(w_mem)) if g_mem[i] != w_mem[i])
        raise AssertionError(f"memory differs first at byte {k}: interpreter {w_mem[k & ~7:(k & ~7) + 8].hex()}, "
                             f"x86 {g_mem[k & ~7:(k & ~7) + 8].hex()}")


REGISTER_ROWS = [s for s in TABLE if not s.extension and s.kind in
                 (Kind.ALU, Kind.MOV, Kind.NEG, Kind.MOVSX, Kind.END, Kind.JCOND)]


@pytest.mark.parametrize("key", [s.key for s in REGISTER_ROWS])
def test_register_rows_on_every_register_pair(key):
    from isa.opcodes import BY_KEY
    insns, size = _alu_program(BY_KEY[key])
    _compare_block(insns, size)


@pytest.mark.parametrize("key", [s.key for s in TABLE if s.kind == Kind.ATOMIC])
def test_atomics_on_every_register_pair(key):
    from isa.opcodes import BY_KEY
    insns, size, init = _atomic_program(BY_KEY[key])
    _compare_block(insns, size, init)


@pytest.mark.parametrize("key", [s.key for s in TABLE if not s.extension and s.kind in
                                 (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX)])
def test_memory_rows_on_every_base_register(key):
    from isa.opcodes import BY_KEY
    insns, size, init = _memory_program(BY_KEY[key])
    _compare_block(insns, size, init)


# ---------------------------------------------------------------- the conformance suite

@needs_shared
def test_conformance_suite_on_x86():
    res = CliRunner().invoke(main, ["conformance", str(CONFORMANCE_DIR), "--target", "x86"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "313 passed, 0 failed"


# ---------------------------------------------------------------- faults and budgets: the interpreter's text

from test_interpreter import TestEnv  # noqa: E402
from isa.asm import assemble as asm  # noqa: E402


def _both(insns, env_factory=TestEnv, r1=MEM, budget=10_000):
    out = []
    for executor in (Interpreter, X86):
        env = env_factory()
        res = executor(Program("t", insns)).run(env, r1, budget)
        out.append((res.r0, res.error, bytes(env.block.data), res.steps))
    assert out[1] == out[0]
    return out[0]


@pytest.mark.parametrize("text", [
    "ldxw %r0, [%r1+62]\nexit",                          # runs off the block's end
    "ldxb %r0, [%r1-1]\nexit",                           # before its start
    "lddw %r1, 0x8000000000000000\nldxb %r0, [%r1+0]\nexit",   # not a canonical x86 address
    "lddw %r1, 0x50010000\nstb [%r1+0], 1\nexit",        # a read-only region
    "stxdw [%r1+60], %r1\nexit",                         # a store across the end
    "lock add [%r1+64], %r1\nexit",                      # an atomic outside
    "ldxdw %r3, [%r10+0]\nexit",                         # above the stack
])
def test_faults_give_the_interpreters_error(text):
    r0, error, _, _ = _both(asm("mov %r5, 1\nmov %r6, 2\n" + text))
    assert error and " at pc " in error


def test_fault_after_stores_keeps_them():
    r0, error, mem, steps = _both(asm("stb [%r1+0], 9\nstb [%r1+1], 8\nldxw %r0, [%r1+100]\nexit"))
    assert error and mem[:2] == b"\x09\x08" and steps == 3


@pytest.mark.parametrize("budget", [1, 2, 3, 50, 999])
def test_budget_ends_where_the_interpreter_ends(budget):
    text = "\n".join(["add %r0, 1"] * 40) + "\nstb [%r1+0], 1\nja -42"
    r0, error, _, _ = _both(asm(text), budget=budget)
    assert error == _both(asm(text), budget=budget)[1] and "budget" in error


def test_callback_budget_is_its_own():
    # helper 2 runs the callback 4 times; each invocation loops forever: the budget ends it
    insns = asm("mov %r2, 4\nmov %r3, 10") + [make("lddw_src4", dst=1, imm=3)] + asm("call 2\nexit") + \
        asm("add %r0, 1\nja -2")
    r0, error, _, _ = _both(insns, budget=500)
    assert "budget" in error


def test_recursion_past_the_frame_limit():
    r0, error, _, _ = _both([make("call_local", imm=-1), make("exit")])
    assert "call depth" in error


# ---------------------------------------------------------------- the translation and the CLI

def test_translation_facts():
    prog = _program("simple_firewall")
    t = translate(prog)
    from emulator.x86.translate import x86_starts
    assert t.static_insns == len(x86_starts(t.code)) > len(prog.insns)
    assert sorted(t.offsets) == prog.slots() if callable(getattr(prog, "slots", None)) else True
    assert list(t.offsets.values()) == sorted(t.offsets.values())
    # r1 is rdi, r10 is rbp, r0 is rax: `r0 = *(u32 *)(r1 + 0)` is `mov eax, [rdi]`
    t2 = translate(Program("p", asm("ldxw %r0, [%r1+0]\nldxdw %r2, [%r10-8]\nexit")))
    assert t2.code[t2.insn_offsets[0]:t2.insn_offsets[1]] == bytes.fromhex("8b07")
    assert t2.code[t2.insn_offsets[1]:t2.insn_offsets[2]] == bytes.fromhex("488b75f8")


def test_disasm_x86_prints_the_translation():
    res = CliRunner().invoke(main, ["disasm", "--x86", "sample_programs/ubench_redirect.o"])
    assert res.exit_code == 0, res.output
    assert "mov eax, 1" in res.output and "push rbp" in res.output and "r0 = 1" in res.output


def test_emulate_stats_json_has_x86_instructions_per_packet(tmp_path):
    import json
    out = tmp_path / "stats.json"
    pcap = str(PCAPS / pcaps_of("simple_firewall")[0].name)
    res = CliRunner().invoke(main, ["emulate", "sample_programs/simple_firewall.o", "--pcap", pcap,
                                    "--target", "x86", "--stats-json", str(out), "--stats"])
    assert res.exit_code == 0, res.output
    stats = json.loads(out.read_text())
    assert stats["x86_insns_per_packet"] > 0 and stats["x86_static_insns"] == translate(
        _program("simple_firewall")).static_insns
    assert "x86 instructions executed per packet" in res.output or "instructions executed per packet" in res.output
