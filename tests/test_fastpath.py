"""The fast path against the reference interpreter: generated programs (straight-line,
branching, loops, stack and memory, calls, helpers, 32/64-bit, invalid encodings) must give
the same r0, error (exact text), step count, memory and helper calls."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isa import layout
from emulator.runtime.env import Env, ProgramExit, TailCall
from emulator.interp.fastpath import FastPath
from emulator.interp.interpreter import Interpreter
from emulator.runtime.memory import Fault, Memory, Region, RegionHook
from isa.asm import assemble
from isa.insn import Insn
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M32, M64, TABLE, Kind
from isa.semantics import alu, alu_expr, cond_expr, jump_taken
from isa.program import Program

EXECUTORS = {"interp": Interpreter, "fast": FastPath}     # factories for Session

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


def _forward_only(prog: Program) -> Program:
    """The program with every jump and local call made forward (so mostly loop-free)."""
    from isa.insn import spec_or_none
    out = []
    for ins in prog.insns:
        spec = spec_or_none(ins)
        if spec is not None and spec.kind in (Kind.JA, Kind.JCOND):
            ins = Insn(ins.opcode, ins.dst, ins.src, abs(ins.off), abs(ins.imm) if spec.is_jmp32 else ins.imm)
        out.append(ins)
    return Program(prog.name, out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(invalid=True).map(_forward_only), st.integers(0, 60))
def test_loop_free_programs_agree_at_every_budget(prog, budget):
    # loop-free: one budget check at entry and after helpers, duplicated arms, counts carried
    a, b = both(prog, budget)
    assert a == b


def _diamonds(k: int) -> str:
    """k diamonds in a row (two ways into each join), a helper call in each, a load that
    faults when r6 reaches 3 (r6 counts the taken branches)."""
    lines = ["mov %r6, 0", "mov %r7, 0"]
    for i in range(k):
        lines += [f"jgt %r1, {i}, +2", "add %r7, 1", "ja +1", "add %r6, 1",
                  "mov %r1, %r6", "call 1", "mov %r1, %r0", "add %r1, 4",
                  "jne %r6, 3, +2", "mov %r2, 0", "ldxb %r3, [%r2+0]"]
    lines += ["mov %r0, %r7", "add %r0, %r6", "exit"]
    return "\n".join(lines)


def test_loop_free_join_points_are_duplicated_not_dispatched():
    assert "continue" not in FastPath(Program("t", assemble(_diamonds(1)))).source()
    seen = set()
    for k in (2, 6):        # 6: too big to duplicate everything, some joins are dispatched
        prog = Program("t", assemble(_diamonds(k)))
        fp = FastPath(prog)
        for r1 in (0, 2, 5, 9):
            for budget in range(0, 12 * k + 8, 3):
                ea, eb = FuzzEnv(), FuzzEnv()
                a = Interpreter(prog).run(ea, r1, budget)
                b = fp.run(eb, r1, budget)
                assert a == b and ea.state() == eb.state(), (k, r1, budget)
                seen.add((a.error or "ok").split(" at ")[0])
    assert {"ok", "invalid 1-byte access", "instruction budget of 0 exhausted"} <= seen


def test_budget_checks_sit_where_cycles_pass():
    from emulator.interp.cfg import cut_points as _cut_points, reach as _reach, successors as _successors
    from emulator.interp.interpreter import decode_program

    def plan(text):
        code = decode_program(Program("t", assemble(text)))
        succ = _successors(code, [True] * code.size)
        cuts = _cut_points(succ)
        return cuts, _reach(succ, cuts | {0})
    # a loop: its header is a check point, each check covers one way round
    assert plan("mov %r0, 3\nsub %r0, 1\njne %r0, 0, -2\nexit") == ({1}, [1, 3, 2, 1])
    # a backward jump that is not a loop needs no check
    assert plan("ja +2\nmov %r0, 1\nexit\njeq %r1, 0, -3\nexit") == (set(), [4, 2, 1, 3, 1])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(), st.sampled_from([HOOK, HOOK + 4, MEM, RO, layout.STACK_TOP - 16, 0]))
def test_context_loads_agree_whatever_r1_points_to(prog, r1):
    # loads through the entry r1 try the hook cache first: only a hint, exact for any r1
    out = []
    for cls in (Interpreter, FastPath):
        env = FuzzEnv()
        res = cls(prog).run(env, r1, 300)
        out.append((res, env.state()))
    assert out[0] == out[1]


class FnEnv(FuzzEnv):
    """Offers helper_fn (as the runtime's XdpEnv does); counts which way helpers were called."""

    def __init__(self):
        super().__init__()
        self.via_fn = 0

    def helper(self, num, args, caller):       # helper_fn must match the helper of its class
        return super().helper(num, args, caller)

    def helper_fn(self, num):
        if num != 1:
            return None

        def call(args, caller):
            self.via_fn += 1
            return FuzzEnv.helper(self, num, args, caller) & M64
        return call


def test_helper_functions_are_looked_up_once_and_used():
    prog = Program("t", assemble("mov %r1, 5\ncall 1\nmov %r6, %r0\ncall 8\nadd %r0, %r6\nexit"))
    env = FnEnv()
    res = FastPath(prog).run(env, MEM)
    assert res == Interpreter(prog).run(FuzzEnv(), MEM) and env.via_fn == 1
    assert [e[0] for e in env.log if isinstance(e, tuple)] == [1, 8]
    # an instance that overrides `helper` itself is called through it
    env = FnEnv()
    calls = []
    env.helper = lambda num, args, caller: calls.append(num) or 7
    assert FastPath(prog).run(env, MEM).r0 == 14 and calls == [1, 8] and env.via_fn == 0


def test_pointer_returned_by_a_helper_sets_the_caches_exactly():
    # helper 1 returns r1 + r2 + r3 + r4 + r5 - 3: a pointer into each kind of region (or
    # none); the program reads, increments and writes through it, atomically too
    for target in (MEM + 8, RO + 4, HOOK + 4, layout.STACK_TOP - 24, MEM + 62, 0x1234):
        text = (f"lddw %r1, {target + 3}\ncall 1\njeq %r0, 0, +5\nldxdw %r6, [%r0+0]\nadd %r6, 1\n"
                "stxdw [%r0+0], %r6\nmov %r7, 1\nlock add [%r0+0], %r7\nldxw %r0, [%r0+4]\nexit")
        prog = Program("t", assemble(text))
        out = []
        for cls in (Interpreter, FastPath):
            env = FuzzEnv()
            out.append((cls(prog).run(env, MEM), env.state()))
        assert out[0] == out[1], hex(target)


def test_region_a_run_starts_with_follows_the_memory_between_runs():
    # a run starts with the load cache set to the region the previous run loaded from first,
    # when that region is still mapped as memory would find it
    prog = Program("t", assemble("ldxdw %r0, [%r1+8]\nldxb %r2, [%r1+40]\nadd %r0, %r2\nexit"))
    env = FuzzEnv()
    fp = FastPath(prog)
    block = env.block

    def same():
        assert fp.run(env, MEM) == Interpreter(prog).run(env, MEM)

    same()
    same()
    env.mem.remove(block)                      # gone: a fault
    same()
    block.data = bytearray(range(200, 248))    # back with other bytes (and shorter)
    env.mem.add(block)
    same()
    env.mem.remove(block)
    block.base = MEM - 16                      # moved: [r1+40] is now outside it
    env.mem.add(block)
    same()
    env.mem.add(Region("inner", MEM + 40, bytearray(b"\x07" * 8), True, "mem"))   # a region inside it
    same()
    assert fp.run(env, MEM).r0 == Interpreter(prog).run(env, MEM).r0 != 0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([s for s in TABLE if s.kind == Kind.END]), st.integers(0, M64))
def test_byte_swaps_match_isa_semantics(spec, v):
    from isa.semantics import endian
    f = dict(dst=3)
    if spec.variant_field:
        f[spec.variant_field] = spec.variant
    prog = Program("t", [Insn(0x18, dst=3, imm=v), Insn(spec.opcode, **f), Insn(0xBF, dst=0, src=3),
                         Insn(0x95)])
    assert FastPath(prog).run(Env(), 0).r0 == endian(spec.op, v, spec.width)


def test_callback_after_a_helper_moved_regions_starts_with_empty_caches():
    # run 2 starts with the cache on the block run 1 read first; helper 6 then moves the
    # block, and the callback helper 2 runs reads the old address: a fault, as memory says
    text = (f"ldxb %r6, [%r1+0]\nlddw %r7, {MEM}\njne %r1, %r7, +1\ncall 6\n"
            f"lddw %r1, {layout.FUNC_BASE + 9}\nmov %r2, 1\nlddw %r3, {MEM}\ncall 2\nexit\n"
            "ldxb %r0, [%r2+0]\nexit")
    prog = Program("t", assemble(text))
    out = []
    for cls in (Interpreter, FastPath):
        env = FuzzEnv()
        ex = cls(prog)
        out.append([ex.run(env, MEM + 8), ex.run(env, MEM), env.state()])
    assert out[0] == out[1]
    assert out[0][0].error is None and out[0][1].error.startswith("invalid 1-byte access")


def test_stack_is_zero_at_each_run_even_where_a_run_wrote_it():
    # run 1 writes the deepest frame through a computed pointer; run 2 must read zeros
    prog = Program("t", assemble("mov %r2, %r10\nsub %r2, 4096\nldxdw %r0, [%r2+0]\n"
                                 "stdw [%r2+0], 77\nstdw [%r10-8], 5\nexit"))
    fp = FastPath(prog)
    for _ in range(3):
        assert fp.run(Env(), 0) == Interpreter(prog).run(Env(), 0)
        assert fp.run(Env(), 0).r0 == 0


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
    from isa.loader import load, load_all

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
            s = Session(load(str(obj)), executor=EXECUTORS[target], maps=maps, programs=programs)
            res = [s.run(p) for p in packets]
            out[target] = ([(r.action, r.data, r.meta, r.redirect, r.error, r.extra.get("steps")) for r in res],
                           s.dump_maps())
        assert out["interp"] == out["fast"], obj.name


def test_falls_back_to_the_interpreter_when_python_cannot_compile(monkeypatch):
    import emulator.interp.fastpath as fastpath

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


# ---------------------------------------------------------------- caches across helper calls

class RegionEnv(FuzzEnv):
    """Helpers that change the regions through each Memory entry point (20 move in place,
    21 add a region inside the block, 22 remove the block) or leave them alone (23)."""

    def helper(self, num, args, caller):
        if num == 20:
            self.mem.move(self.block, MEM + 8, bytearray(range(50, 66)))
            return 0
        if num == 21:
            self.mem.add(Region("inner", MEM + 16, bytearray(b"\x07" * 8), True, "mem"))
            return 0
        if num == 22:
            self.mem.remove(self.block)
            return 0
        if num == 23:
            self.log.append((num, args))
            return 5
        return super().helper(num, args, caller)


def _slow_loads(monkeypatch):
    """Count the generated code's slow loads (st.ld: a cache miss)."""
    import emulator.interp.fastpath as fastpath
    calls = []
    real = fastpath._State.ld

    def ld(self, a, size, *caches):
        calls.append(a)
        return real(self, a, size, *caches)
    monkeypatch.setattr(fastpath._State, "ld", ld)
    return calls


def test_memory_version_grows_at_every_change_of_the_regions():
    mem = Memory()
    r = Region("a", MEM, bytearray(8))
    seen = [mem.version]
    mem.add(r)
    seen.append(mem.version)
    mem.move(r, MEM + 4, bytearray(8))        # in place
    seen.append(mem.version)
    mem.add(Region("b", MEM + 100, bytearray(8)))
    mem.move(r, MEM + 200, bytearray(8))      # past b: remove + add
    seen.append(mem.version)
    mem.remove(r)
    seen.append(mem.version)
    mem.load(MEM + 100, 4)
    mem.store(MEM + 100, 4, 1)
    mem.write(MEM + 100, b"xy")
    seen.append(mem.version)
    assert seen == sorted(seen) and len(set(seen)) == len(seen) - 1 and seen[-1] == seen[-2]


def test_caches_survive_a_helper_that_leaves_the_regions_alone(monkeypatch):
    calls = _slow_loads(monkeypatch)
    # (through r8, not r1: loads through the context register try the hook cache only)
    prog = Program("t", assemble(f"lddw %r8, {MEM}\nldxdw %r6, [%r8+0]\nstxdw [%r8+8], %r6\ncall 23\n"
                                 "ldxdw %r7, [%r8+16]\nstxdw [%r8+24], %r7\nadd %r0, %r7\nexit"))
    out = []
    for cls in (Interpreter, FastPath):
        env = RegionEnv()
        out.append((cls(prog).run(env, MEM), env.state()))
    assert out[0] == out[1] and out[0][0].error is None
    assert calls == [MEM]          # the load after the call hits the block's cache


def test_caches_are_dropped_when_a_helper_moves_adds_or_removes_a_region(monkeypatch):
    # read the block, change the regions, read it again at several places: what memory
    # says now (new bytes, the inner region, a fault), never the cached block
    calls = _slow_loads(monkeypatch)
    for num in (20, 21, 22):
        for off in (0, 8, 16, 20, 40, 60):
            prog = Program("t", assemble(f"lddw %r7, {MEM}\nldxb %r6, [%r7+0]\ncall {num}\n"
                                         f"ldxdw %r0, [%r7+{off}]\nstxb [%r7+{off}], %r6\nexit"))
            out = []
            for cls in (Interpreter, FastPath):
                env = RegionEnv()
                out.append((cls(prog).run(env, MEM), env.state()))
            assert out[0] == out[1], (num, off)
    assert len(calls) == 2 * 3 * 6        # the load after each call missed


def test_map_references_are_resolved_once_per_session_program(monkeypatch):
    from emulator.runtime import session as S
    from emulator.runtime.results import PacketInput
    from isa.program import MapDef

    asked = []
    real = S.XdpEnv.lddw_value

    def counting(self, src, imm):
        asked.append((src, imm))
        return real(self, src, imm)
    monkeypatch.setattr(S.XdpEnv, "lddw_value", counting)
    arr = MapDef(name="arr", type=2, key_size=4, value_size=8, max_entries=4)
    # count packets twice in arr[0]: through a lookup (handle, src 5) and its address (src 6)
    body = assemble("mov %r2, 0\nstxw [%r10-4], %r2\nmov %r2, %r10\nadd %r2, -4\nMAP\ncall 1\n"
                    "jeq %r0, 0, +3\nldxdw %r3, [%r0+0]\nadd %r3, 1\nstxdw [%r0+0], %r3\nVALUE\n"
                    "ldxdw %r3, [%r1+0]\nadd %r3, 1\nstxdw [%r1+0], %r3\nmov %r0, 2\nexit"
                    .replace("MAP", "lddw %r1, 0").replace("VALUE", "lddw %r1, 0"))
    body[4] = Insn(0x18, dst=1, src=5, imm=0)
    body[11] = Insn(0x18, dst=1, src=6, imm=4 << 32)
    prog = Program("t", body, maps=[arr])
    out = {}
    for target in ("interp", "fast"):
        asked.clear()
        s = S.Session(prog, executor=EXECUTORS[target])
        res = [s.run(PacketInput(i, bytes(range(60)))) for i in range(5)]
        out[target] = ([(r.action, r.error, r.extra["steps"]) for r in res], s.dump_maps(), len(asked))
    assert out["interp"][:2] == out["fast"][:2] and out["interp"][0][0] == (2, None, 16)
    assert out["interp"][2] == 10 and out["fast"][2] == 2     # the fast path asks once per reference


def test_map_references_of_other_envs_are_asked_each_time():
    # FuzzEnv's lddw_value is not declared constant: every execution asks it
    prog = Program("t", [Insn(0x18, dst=0, src=1, imm=7), Insn(0x18, dst=2, src=1, imm=7),
                         Insn(0x0F, dst=0, src=2), Insn(0x95)])
    env = FuzzEnv()
    calls = []
    env.lddw_value = lambda src, imm: calls.append(imm) or imm * len(calls)
    fp = FastPath(prog)
    assert fp.run(env, MEM).r0 == 7 + 14 and fp.run(env, MEM).r0 == 21 + 28 and calls == [7] * 4
