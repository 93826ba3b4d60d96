"""The fast path against the reference interpreter: generated programs (straight-line,
branching, loops, stack and memory, calls, helpers, 32/64-bit, invalid encodings) must give
the same r0, error (exact text), step count, memory and helper calls."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import layout
from emulator.env import Env, ProgramExit, TailCall
from emulator.fastpath import FastPath, alu_expr, cond_expr
from emulator.interpreter import Interpreter
from emulator.memory import Fault, Memory, Region, RegionHook
from isa.asm import assemble
from isa.insn import Insn
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M32, M64, TABLE, Kind, alu, jump_taken
from isa.program import Program

MEM = layout.MEM_BASE
RO = MEM + 0x10000
HOOK = MEM + 0x20000
SNAPSHOT = 8


class CountingHook(RegionHook):
    def __init__(self):
        self.stores: list[tuple[int, int, int]] = []

    def load(self, off, size):
        return (off * 0x01010101 + size) & ((1 << (8 * size)) - 1)

    def store(self, off, size, value):
        self.stores.append((off, size, value))


# tail-call target: reads the (fresh) stack and r1, may tail-call again
TAIL = Program("tail", assemble("ldxdw %r0, [%r10-8]\nadd %r0, %r1\nstdw [%r10-8], 3\n"
                                "jgt %r0, 0x50000010, +1\ncall 4\nexit"))


class FuzzEnv(Env):
    """Writable block (64 B), read-only block, a hook region; helpers 1 (sum), 2 (call the
    function at r1 r2&3 times), 3 (exit with r1), 4 (tail call to TAIL, at most 3),
    6 (move the block), 8 (snapshot memory)."""

    def __init__(self, mem: Memory | None = None):
        super().__init__(mem)
        self.block = self.mem.add(Region("mem", MEM, bytearray(range(64)), True, "mem"))
        self.mem.add(Region("ro", RO, bytearray(range(100, 132)), False, "ro"))
        self.hook = CountingHook()
        self.mem.add(Region("hook", HOOK, bytearray(16), True, "ctx", self.hook))
        self.log: list = []
        self.tail_calls = 0

    def helper(self, num, args, caller):
        self.log.append((num, args))
        if num == 1:
            return sum(args) - 3
        if num == 2:
            return sum(caller.call(args[0], (i, args[2], 0, 0, 0)) for i in range(args[1] & 3))
        if num == 3:
            raise ProgramExit(args[0])
        if num == 4:
            self.tail_calls += 1
            if self.tail_calls > 3:
                raise Fault("too many tail calls")
            raise TailCall(TAIL)
        if num == 6:
            self.mem.remove(self.block)
            self.block = self.mem.add(Region("mem", MEM + 4, bytearray(self.block.data[4:]), True, "mem"))
            return 0
        if num == SNAPSHOT:
            self.log.append([(r.name, r.base, bytes(r.data)) for r in self.mem.regions()])
            return 1
        raise Fault(f"unknown helper {num}")

    def lddw_value(self, src, imm):
        if src == 1:
            return imm * 3
        return super().lddw_value(src, imm)

    def state(self):
        return self.log, [(r.name, r.base, bytes(r.data)) for r in self.mem.regions()], self.hook.stores


class CountingMemory(Memory):
    """A Memory subclass: the fast path must not bypass it (its caches switch off)."""

    def __init__(self):
        super().__init__()
        self.loads = 0

    def load(self, addr, size):
        self.loads += 1
        return super().load(addr, size)


# ---------------------------------------------------------------- strategies

IMMS = st.one_of(st.sampled_from([0, 1, -1, 2, 7, 8, 31, 32, 33, 63, 64, 65, -2, 0x7FFFFFFF, -0x80000000,
                                  0x80, 0xFF, 0xFFFF, 0x8000]),
                 st.integers(-(1 << 31), (1 << 31) - 1))
REG = st.integers(0, 10)
NON_MEM = [s for s in TABLE if s.kind not in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC,
                                              Kind.LDX48, Kind.STX48, Kind.LDDW, Kind.CALL_LOCAL,
                                              Kind.CALL, Kind.CALLX, Kind.BOUNDS, Kind.CALL_KFUNC)]
MEM_SPECS = [s for s in TABLE if s.kind in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC,
                                            Kind.LDX48, Kind.STX48)]
POINTERS = [MEM, MEM + 8, MEM + 60, RO, HOOK, layout.STACK_TOP, layout.STACK_TOP - 512 - 8,
            layout.STACK_TOP - 4096, 0, MEM + 4]


@st.composite
def insn(draw, jumps: bool = True):
    choice = draw(st.integers(0, 9))
    if choice <= 4:
        spec = draw(st.sampled_from(NON_MEM if jumps else [s for s in NON_MEM if not s.is_branch
                                                          and s.kind not in (Kind.EXIT, Kind.PEXIT)]))
    elif choice <= 7:
        spec = draw(st.sampled_from(MEM_SPECS))
    elif choice == 8:
        spec = draw(st.sampled_from([s for s in TABLE if s.kind in (Kind.LDDW, Kind.CALL, Kind.CALLX,
                                                                      Kind.BOUNDS)]))
    else:
        spec = draw(st.sampled_from([s for s in TABLE if s.kind == Kind.CALL_LOCAL] + NON_MEM))
    f = dict(dst=draw(REG), src=draw(REG), off=draw(st.integers(-8, 70)), imm=draw(IMMS))
    if spec.kind in (Kind.JA, Kind.JCOND, Kind.CALL_LOCAL):
        f["off"] = draw(st.integers(-4, 6))
        if spec.kind == Kind.CALL_LOCAL or spec.is_jmp32 and spec.kind == Kind.JA:
            f["imm"] = draw(st.integers(-4, 6))
    if spec.kind in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC, Kind.LDX48, Kind.STX48) \
            and draw(st.booleans()):
        base = "src" if spec.kind in (Kind.LDX, Kind.LDXSX, Kind.LDX48) else "dst"
        f[base] = 10
        f["off"] = draw(st.sampled_from([-8, -16, -4, -1, -512, -520, 0, -4096]))
    if spec.kind == Kind.CALL:
        f["imm"] = draw(st.sampled_from([1, 2, 3, 4, 6, SNAPSHOT, 99]))
    if spec.kind == Kind.BOUNDS:
        f["imm"] = draw(st.integers(-0x10000000, 0x10000000))
    if spec.kind == Kind.LDDW:
        f["imm"] = draw(st.one_of(st.sampled_from(POINTERS), st.integers(0, M64), st.integers(-3, 6)))
        if spec.variant == LDDW_FUNC:
            f["imm"] = draw(st.integers(-3, 8))
    if spec.kind == Kind.ALU3 and spec.opcode & 0x08:
        f["imm"] = draw(REG)
    if spec.variant_field:
        f[spec.variant_field] = spec.variant
    if spec.kind == Kind.LDDW and spec.variant not in (LDDW_IMM64, LDDW_FUNC, 1):
        f["src"] = draw(st.sampled_from([LDDW_IMM64, 2, 3]))
    return Insn(spec.opcode, **f)


@st.composite
def program(draw, jumps: bool = True, invalid: bool = False):
    pro = [Insn(0x18, dst=r, imm=draw(st.one_of(st.sampled_from(POINTERS), st.integers(0, M64))))
           for r in draw(st.lists(st.sampled_from([0, 2, 3, 4, 5, 6, 7, 8, 9]), max_size=4, unique=True))]
    items = [insn(jumps)]
    if invalid:
        items.append(st.builds(Insn, st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
                               st.integers(-(1 << 15), (1 << 15) - 1), st.integers(-(1 << 31), (1 << 31) - 1)))
    body = draw(st.lists(st.one_of(*items), min_size=1, max_size=25))
    epilogue = [Insn(0x7B, dst=10, src=k, off=-8 * (k + 1)) for k in range(10)] + [
        Insn(0x85, imm=SNAPSHOT), Insn(0x95)]
    tail = draw(st.sampled_from([epilogue, [Insn(0x95)], []]))
    return Program("fuzz", pro + body + tail)


def both(prog: Program, budget: int = 300, mem_factory=None):
    out = []
    for cls in (Interpreter, FastPath):
        env = FuzzEnv(mem_factory() if mem_factory else None)
        res = cls(prog).run(env, MEM, budget)
        out.append((res.r0, res.error, res.steps, env.state()))
    return out


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(program(jumps=False))
def test_straight_line_programs_agree(prog):
    a, b = both(prog)
    assert a == b


@SETTINGS
@given(program())
def test_branching_programs_agree(prog):
    a, b = both(prog)
    assert a == b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(invalid=True), st.integers(0, 200))
def test_invalid_programs_agree_and_never_raise(prog, budget):
    a, b = both(prog, budget)   # run() returning at all (no exception) is half the point
    assert a == b
    assert a[1] is None or not a[1].startswith("internal")


@settings(max_examples=60, deadline=None)
@given(program())
def test_custom_memory_class_is_respected(prog):
    a, b = both(prog, mem_factory=CountingMemory)
    assert a == b


# ---------------------------------------------------------------- the generated expressions

@settings(max_examples=500, deadline=None)
@given(st.sampled_from([s for s in TABLE if s.kind == Kind.ALU]), st.integers(0, M64), st.integers(0, M64),
       st.booleans())
def test_alu_expressions_match_isa_semantics(spec, a, b, const):
    m = M64 if spec.width == 64 else M32
    bconst = b & m if const else None
    expr = alu_expr(spec.op, spec.width, "a", hex(bconst) if const else "b", bconst)
    got = eval(expr, {"alu": alu, "M64": M64, "M32": M32, "S64": 1 << 63, "S32": 1 << 31, "a": a, "b": b})
    assert got == alu(spec.op, a, b, spec.width)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([s for s in TABLE if s.kind == Kind.JCOND]), st.integers(0, M64), st.integers(0, M64),
       st.booleans())
def test_jump_conditions_match_isa_semantics(spec, a, b, const):
    m = M64 if spec.width == 64 else M32
    bconst = b & m if const else None
    expr = cond_expr(spec.op, spec.width, "a", hex(bconst) if const else "b", bconst)
    got = eval(expr, {"M64": M64, "M32": M32, "S64": 1 << 63, "S32": 1 << 31, "a": a, "b": b})
    assert bool(got) == jump_taken(spec.op, a, b, spec.width)


# ---------------------------------------------------------------- behaviour of the executor

def test_compiled_once_per_program():
    prog = Program("t", assemble("mov %r0, 1\nexit"))
    fp = FastPath(prog)
    first = fp.compiled(prog)
    for _ in range(3):
        assert fp.run(Env(), 0).r0 == 1
    assert fp.compiled(prog) is first
    assert "def fn(" in fp.source()


def test_fault_pc_and_steps_are_exact():
    text = "mov %r0, 1\nmov %r2, 2\nldxw %r3, [%r2+0]\nmov %r0, 3\nexit"
    prog = Program("t", assemble(text))
    a = Interpreter(prog).run(Env(), 0)
    b = FastPath(prog).run(Env(), 0)
    assert a == b and a.error.endswith("at pc 2") and a.steps == 3


def test_many_blocks_dispatch():
    # a long chain of branches: every block reachable, dispatch tree deep
    lines = ["mov %r0, 0", "mov %r1, 0"]
    for i in range(300):
        lines += [f"jgt %r1, {i % 7}, +1", "add %r0, 1", "add %r1, 1"]
    lines.append("exit")
    prog = Program("t", assemble("\n".join(lines)))
    a = Interpreter(prog).run(Env(), 0, 100_000)
    b = FastPath(prog).run(Env(), 0, 100_000)
    assert a == b and a.error is None and a.r0 == 7   # only i < 7 has r1 <= i % 7


def test_deeply_nested_single_entry_arms():
    # 300 forward branches whose targets have one way in each: inlined up to MAX_NESTING deep,
    # then through the dispatch; the budget runs out in the middle for the second run
    lines = ["mov %r0, 0"]
    for i in range(300):
        lines += [f"jeq %r0, {i}, +1", "exit", "add %r0, 1"]
    lines.append("exit")
    prog = Program("t", assemble("\n".join(lines)))
    fp = FastPath(prog)
    assert max(len(line) - len(line.lstrip()) for line in fp.source().splitlines()) < 4 * 90
    for budget in (100_000, 500):
        a = Interpreter(prog).run(Env(), 0, budget)
        b = fp.run(Env(), 0, budget)
        assert a == b
    assert a.error.startswith("instruction budget of 500 exhausted")
    assert Interpreter(prog).run(Env(), 0).r0 == 300


def test_budget_runs_out_inside_a_callback():
    env_a, env_b = FuzzEnv(), FuzzEnv()
    # helper 2 calls the callback (i) -> i + 1 for i = 0, 1, 2; lddw src 4 imm 4 -> slot 7 (cb)
    insns = assemble("mov %r2, 3\nmov %r6, 0\ncall 2\nadd %r0, 1\nexit\nmov %r0, %r1\nadd %r0, 1\nexit")
    insns = insns[:2] + [Insn(0x18, dst=1, src=LDDW_FUNC, imm=4)] + insns[2:]
    prog = Program("t", insns)
    for budget in range(1, 20):
        a = Interpreter(prog).run(env_a, MEM, budget)
        b = FastPath(prog).run(env_b, MEM, budget)
        assert a == b, budget
    assert a.error is None and a.r0 == 1 + 2 + 3 + 1


def test_callback_at_a_computed_address():
    # the callback address is computed, not an lddw src 4: the fast path compiles a variant
    # of the program with that instruction as an extra entry
    text = f"lddw %r1, {layout.FUNC_BASE + 5}\nmov %r2, 2\ncall 2\nexit\nmov %r0, 7\nadd %r0, %r1\nexit"
    prog = Program("t", assemble(text))
    a = Interpreter(prog).run(FuzzEnv(), MEM)
    b = FastPath(prog).run(FuzzEnv(), MEM)
    assert a == b and a.error is None and a.r0 == 0 + 1   # the callback runs `add %r0, %r1` only


# ---------------------------------------------------------------- real programs

def _sample_cases():
    from conftest import SAMPLES
    out = []
    for obj in sorted(SAMPLES.glob("*.o")) if SAMPLES.is_dir() else []:
        pcaps = sorted((SAMPLES / "pcaps").glob(f"{obj.stem}-*.pcap*"))
        if pcaps:
            out.append((obj, pcaps))
    return out


def test_sample_programs_agree_with_the_interpreter():
    """Every sample program on the first packets of each of its pcaps, maps persisting:
    same action, bytes, error and steps per packet, same maps at the end."""
    import itertools
    import json

    import pytest

    from emulator.runtime.pcapio import read_packets
    from emulator.runtime.session import Session
    from hxdpc.loader import load, load_all

    cases = _sample_cases()
    if not cases:
        pytest.skip("no sample programs with pcaps")
    for obj, pcaps in cases:
        maps_path = obj.with_suffix(".maps.json")
        maps = json.loads(maps_path.read_text()) if maps_path.exists() else None
        programs = {p.name: p for p in load_all(str(obj))}
        packets = [p for path in pcaps for p in itertools.islice(read_packets(str(path)), 40)]
        out = {}
        for target in ("interp", "fast"):
            s = Session(load(str(obj)), executor=target, maps=maps, programs=programs)
            res = [s.run(p) for p in packets]
            out[target] = ([(r.action, r.data, r.meta, r.redirect, r.error, r.extra.get("steps")) for r in res],
                           s.dump_maps())
        assert out["interp"] == out["fast"], obj.name


def test_falls_back_to_the_interpreter_when_python_cannot_compile(monkeypatch):
    import emulator.fastpath as fastpath

    def refuse(code, extra=frozenset()):
        raise SyntaxError("too many statically nested blocks")
    monkeypatch.setattr(fastpath, "compile_program", refuse)
    text = "mov %r6, 5\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r0, 1\nexit"
    prog = Program("t", assemble(text))
    fp = FastPath(prog)
    assert fp.source() == "# interpreted\n"
    assert fp.run(Env(), 0) == Interpreter(prog).run(Env(), 0)
    assert fp.run(Env(), 0).r0 == 6
    res = fp.run(Env(), 0, budget=3)
    assert res == Interpreter(prog).run(Env(), 0, budget=3) and "budget" in res.error
