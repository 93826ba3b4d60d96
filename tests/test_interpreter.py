"""Semantic corners of the reference interpreter, each checked on the fast path too.

Every test runs on both executors (`ex` fixture): the interpreter is the oracle, and the
fast path must give the same r0, memory and error/no-error."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import needs_kernel
from isa import layout
from emulator.runtime.env import Env, ProgramExit, TailCall
from emulator.interp.fastpath import FastPath
from emulator.interp.interpreter import STACK_BASE, Interpreter
from emulator.runtime.memory import Fault, Region, RegionHook
from isa.asm import assemble
from isa.insn import Insn
from isa.opcodes import BY_KEY, M64, TABLE, Kind
from isa.program import Program

EXECUTORS = {"interp": Interpreter, "fast": FastPath}
MEM = layout.MEM_BASE


def make(key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """An instruction from its ISA-table key (sets the variant field)."""
    spec = BY_KEY[key]
    fields = dict(dst=dst, src=src, off=off, imm=imm)
    if spec.variant_field:
        fields[spec.variant_field] = spec.variant
    return Insn(spec.opcode, **fields)


class TestEnv(Env):
    """A small world: a writable block at MEM_BASE, a read-only one after it, and helpers
    1 = sum of r1..r5, 2 = bpf_loop-like (calls function r1 r2 times with (i, r3), sums the
    results), 3 = ProgramExit(r1), 4 = tail call to `tail`, 6 = move the block (as
    adjust_head rebuilds the packet region), 7 = returns -1 (negative helper result)."""
    __test__ = False

    def __init__(self, size: int = 64, tail: Program | None = None):
        super().__init__()
        self.block = self.mem.add(Region("mem", MEM, bytearray(range(size)), True, "mem"))
        self.ro = self.mem.add(Region("ro", MEM + 0x10000, bytearray(b"\x11" * 16), False, "ro"))
        self.tail = tail
        self.calls: list[tuple] = []

    def helper(self, num, args, caller):
        self.calls.append((num, args))
        if num == 1:
            return sum(args)
        if num == 2:
            return sum(caller.call(args[0], (i, args[2])) for i in range(args[1] & 7))
        if num == 3:
            raise ProgramExit(args[0])
        if num == 4 and self.tail is not None:
            raise TailCall(self.tail)
        if num == 6:
            self.mem.remove(self.block)
            self.block = self.mem.add(Region("mem", MEM + 8, bytearray(self.block.data[8:]), True, "mem"))
            return 0
        if num == 7:
            return -1
        raise Fault(f"unknown helper {num}")

    def lddw_value(self, src, imm):
        if src in (1, 5):
            return layout.MAP_HANDLE_BASE + imm * 0x100
        return super().lddw_value(src, imm)


@pytest.fixture(params=sorted(EXECUTORS))
def ex(request):
    return EXECUTORS[request.param]


def run(ex, text_or_insns, env=None, r1=MEM, budget=10_000, program_name="t"):
    insns = assemble(text_or_insns) if isinstance(text_or_insns, str) else text_or_insns
    env = env if env is not None else TestEnv()
    return ex(Program(program_name, insns)).run(env, r1, budget), env


def r0_of(ex, text, **kw) -> int:
    res, _ = run(ex, text, **kw)
    assert res.error is None, res.error
    return res.r0


# ---------------------------------------------------------------- ALU

@pytest.mark.parametrize("text,expected", [
    ("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0),
    ("mov %r0, 7\ndiv %r0, 0\nexit", 0),
    ("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", 7),
    ("mov %r0, -1\nmov32 %r1, 0\nmod32 %r0, %r1\nexit", 0xFFFFFFFF),   # 32-bit: truncated
    ("mov %r0, -1\nmov %r1, 0\nmod %r0, %r1\nexit", M64),               # 64-bit: unchanged
    ("mov %r0, -7\nsdiv %r0, 2\nexit", (-3) & M64),
    ("mov %r0, -7\nsmod %r0, 2\nexit", (-1) & M64),
    ("mov %r0, 7\nsmod %r0, -2\nexit", 1),
    ("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", 1 << 63),
    ("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0),
    ("mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", 0x80000000),
    ("mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit", 0),
    ("mov %r0, -5\nmov %r1, 0\nsdiv %r0, %r1\nexit", 0),
    ("mov %r0, -5\nmov %r1, 0\nsmod %r0, %r1\nexit", (-5) & M64),
    ("mov %r0, -5\nmov32 %r1, 0\nsmod32 %r0, %r1\nexit", 0xFFFFFFFB),
])
def test_division(ex, text, expected):
    assert r0_of(ex, text) == expected


@pytest.mark.parametrize("text,expected", [
    ("mov %r0, 1\nlsh %r0, 65\nexit", 2),                  # masked to 6 bits
    ("mov %r0, 1\nlsh32 %r0, 33\nexit", 2),                # masked to 5 bits
    ("mov %r0, 1\nmov %r1, 64\nlsh %r0, %r1\nexit", 1),
    ("mov %r0, -1\nrsh32 %r0, 28\nexit", 0xF),
    ("mov %r0, -16\narsh %r0, 2\nexit", (-4) & M64),
    ("mov32 %r0, 0x80000000\narsh32 %r0, 31\nexit", 0xFFFFFFFF),
    ("mov %r0, -1\nlsh32 %r0, 4\nexit", 0xFFFFFFF0),
    ("mov %r0, -1\nmov %r1, -1\narsh %r0, %r1\nexit", M64),
])
def test_shifts(ex, text, expected):
    assert r0_of(ex, text) == expected


@pytest.mark.parametrize("text,expected", [
    ("mov %r0, -1\nadd32 %r0, 0\nexit", 0xFFFFFFFF),       # 32-bit ops zero-extend
    ("mov32 %r0, -1\nexit", 0xFFFFFFFF),
    ("mov %r0, -1\nexit", M64),                            # imm sign-extended for 64-bit ops
    ("mov %r0, 0\nsub %r0, 1\nexit", M64),
    ("lddw %r0, 0x100000000\nmul32 %r0, 3\nexit", 0),
    ("mov %r0, 3\nneg %r0\nexit", (-3) & M64),
    ("mov %r0, 3\nneg32 %r0\nexit", 0xFFFFFFFD),
    ("mov %r1, 0xff\nmovsx864 %r0, %r1\nexit", M64),
    ("mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", 0xFFFF8000),
    ("lddw %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", 0xFFFFFFFF80000000),
    ("lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", 0x8877),
    ("lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655),
    ("lddw %r0, 0x1122334455667788\nbe64 %r0\nexit", 0x8877665544332211),
    ("lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788),
    ("lddw %r0, 0x1122334455667788\nbswap32 %r0\nexit", 0x88776655),
    ("mov %r2, 40\nr1 = r2 + 2\nmov %r0, %r1\nexit", 42),           # hXDP three-operand forms
    ("mov %r2, 5\nmov %r3, 7\nw1 = w2 - w3\nmov %r0, %r1\nexit", 0xFFFFFFFE),
    ("mov %r2, 1\nmov %r3, 65\nr1 = r2 << r3\nmov %r0, %r1\nexit", 2),
])
def test_alu(ex, text, expected):
    assert r0_of(ex, text) == expected


# ---------------------------------------------------------------- jumps

@pytest.mark.parametrize("text,expected", [
    ("mov %r0, -1\njeq %r0, -1, +1\nexit\nmov %r0, 1\nexit", 1),    # imm sign-extended
    ("mov32 %r0, -1\njeq %r0, -1, +1\nexit\nmov %r0, 1\nexit", 0xFFFFFFFF),
    ("mov32 %r0, -1\njeq32 %r0, -1, +1\nexit\nmov %r0, 1\nexit", 1),
    ("mov %r0, -1\njsgt %r0, 0, +1\nexit\nmov %r0, 1\nexit", M64),
    ("mov %r0, -1\njgt %r0, 0, +1\nexit\nmov %r0, 1\nexit", 1),
    ("lddw %r0, 0x1ffffffff\njslt32 %r0, 0, +1\nexit\nmov %r0, 1\nexit", 1),
    ("mov %r0, 6\njset %r0, 1, +1\nexit\nmov %r0, 1\nexit", 6),
    ("mov %r0, 0\nja32 +1\nexit\nmov %r0, 2\nexit", 2),
])
def test_jumps(ex, text, expected):
    assert r0_of(ex, text) == expected


# ---------------------------------------------------------------- memory

def test_loads_stores_and_sign_extension(ex):
    res, env = run(ex, """
        ldxb %r2, [%r1+0]
        stb [%r1+1], 0xff
        ldxsb %r3, [%r1+1]
        sth [%r1+2], -2
        ldxsh %r4, [%r1+2]
        stw [%r1+4], -3
        ldxsw %r5, [%r1+4]
        mov %r0, %r3
        add %r0, %r4
        add %r0, %r5
        exit""")
    assert res.error is None
    assert res.r0 == (-1 - 2 - 3) & M64
    assert env.block.data[1:8] == bytes([0xFF, 0xFE, 0xFF, 0xFD, 0xFF, 0xFF, 0xFF])


def test_u48_load_store(ex):
    res, env = run(ex, "r2 = *(u48 *)(r1 + 8)\n*(u48 *)(r1 + 32) = r2\nr0 = r2\nexit")
    assert res.r0 == int.from_bytes(bytes(range(8, 14)), "little")
    assert env.block.data[32:38] == bytes(range(8, 14)) and env.block.data[38] == 38


@pytest.mark.parametrize("text,expected_mem,expected_r0", [
    ("mov %r2, 5\nlock add [%r1+8], %r2\nldxdw %r0, [%r1+8]\nexit", None, 0x0F0E0D0C0B0A090D),
    ("mov %r2, 5\nlock fetch add [%r1+8], %r2\nmov %r0, %r2\nexit", None, 0x0F0E0D0C0B0A0908),
    ("mov %r2, -1\nlock fetch add32 [%r1+8], %r2\nmov %r0, %r2\nexit", None, 0x0B0A0908),
    ("mov %r2, 7\nlock xchg [%r1+8], %r2\nmov %r0, %r2\nexit", (8, 7), 0x0F0E0D0C0B0A0908),
    ("mov32 %r2, 7\nlock xchg32 [%r1+8], %r2\nmov %r0, %r2\nexit", (8, 7), 0x0B0A0908),
    ("mov %r0, 1\nmov %r2, 9\nlock cmpxchg [%r1+8], %r2\nexit", (8, 8), 0x0F0E0D0C0B0A0908),
    ("lddw %r0, 0x0F0E0D0C0B0A0908\nmov %r2, 9\nlock cmpxchg [%r1+8], %r2\nexit", (8, 9), 0x0F0E0D0C0B0A0908),
    ("mov32 %r0, 0x0B0A0908\nmov %r2, 9\nlock cmpxchg32 [%r1+8], %r2\nexit", (8, 9), 0x0B0A0908),
    ("mov %r0, 0xff\nlock fetch or [%r1+8], %r0\nexit", (8, 0xff), 0x0F0E0D0C0B0A0908),
])
def test_atomics(ex, text, expected_mem, expected_r0):
    res, env = run(ex, text)
    assert res.error is None, res.error
    assert res.r0 == expected_r0
    if expected_mem:
        at, val = expected_mem
        assert env.block.data[at] == val


def test_out_of_bounds_is_an_error_not_an_exception(ex):
    for text in ("ldxw %r0, [%r1+62]\nexit", "stw [%r1+64], 1\nexit", "ldxdw %r0, [%r10]\nexit",
                 "mov %r2, 0\nldxb %r0, [%r2]\nexit", "ldxdw %r0, [%r10-4097]\nexit"):
        res, _ = run(ex, text)
        assert res.r0 == 0 and res.error and "access" in res.error and "at pc" in res.error, text


def test_write_to_read_only_region(ex):
    res, env = run(ex, f"lddw %r1, {MEM + 0x10000}\nldxb %r0, [%r1]\nstb [%r1], 1\nexit")
    assert res.error and "read-only" in res.error and env.ro.data[0] == 0x11


def test_stack_is_fresh_each_run_and_removed_after(ex):
    prog = Program("t", assemble("ldxdw %r0, [%r10-8]\nstdw [%r10-8], 5\nexit"))
    e = ex(prog)
    env = TestEnv()
    before = env.mem.regions()
    assert e.run(env, MEM).r0 == 0
    assert e.run(env, MEM).r0 == 0
    assert env.mem.regions() == before


def test_stack_covers_every_frame(ex):
    # 512 B per frame x MAX_CALL_FRAMES below STACK_TOP, so the lowest byte is addressable
    low = layout.STACK_TOP - STACK_BASE
    assert r0_of(ex, f"stb [%r10-{low}], 3\nldxb %r0, [%r10-{low}]\nexit") == 3


# ---------------------------------------------------------------- lddw

def test_lddw_sources(ex):
    assert r0_of(ex, "lddw %r0, 0x1122334455667788\nexit") == 0x1122334455667788
    insns = [make("lddw_src1", dst=0, imm=3), make("exit")]
    assert r0_of(ex, insns) == layout.MAP_HANDLE_BASE + 0x300
    # src 4: a function address; its imm is relative like a call's
    insns = [make("lddw_src4", dst=0, imm=2), make("exit"), make("exit")]
    assert r0_of(ex, insns) == layout.FUNC_BASE + 2
    res, _ = run(ex, [make("lddw_src2", dst=0, imm=1), make("exit")])
    assert res.error and "maps" in res.error


# ---------------------------------------------------------------- calls

CALLS = """
    mov %r6, 6
    stdw [%r10-8], 11
    mov %r1, 4
    call local double
    ldxdw %r2, [%r10-8]
    add %r0, %r2
    add %r0, %r6
    exit
double:
    stdw [%r10-8], 99
    mov %r6, 100
    mov %r0, %r1
    add %r0, %r1
    mov %r3, %r10
    exit
"""


def test_local_call_frames(ex):
    # the callee's stack is its own 512 B frame and r6 is restored on return
    assert r0_of(ex, CALLS) == 8 + 11 + 6


def test_callee_frame_pointer(ex):
    text = "call local f\nexit\nf:\nmov %r0, %r10\nexit"
    assert r0_of(ex, text) == layout.STACK_TOP - layout.STACK_SIZE


def test_call_depth_limit(ex):
    res, _ = run(ex, "f:\ncall local f\nexit")
    assert res.error and "call depth" in res.error
    assert res.steps == layout.MAX_CALL_FRAMES
    ok = "\n".join(f"call local f{i}\nexit\nf{i}:" for i in range(layout.MAX_CALL_FRAMES - 1))
    assert r0_of(ex, "mov %r0, 3\n" + ok + "\nexit") == 3


def test_helpers(ex):
    res, env = run(ex, "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\ncall 1\nadd %r0, %r1\nexit")
    # r1-r5 keep their values after a helper call (the kernel leaves them undefined)
    assert res.r0 == 7 and env.calls == [(1, (1, 2, 3, 0, 0))]
    assert r0_of(ex, "call 7\nexit") == M64
    res, _ = run(ex, "call 99\nexit")
    assert res.error and "unknown helper 99" in res.error
    assert r0_of(ex, "mov %r1, 42\ncall 3\nmov %r0, 1\nexit") == 42
    assert r0_of(ex, "mov %r2, 3\ncallx %r2\nmov %r0, 1\nexit", r1=9) == 9   # helper 3 exits


def test_callback_through_helper(ex):
    # helper 2 calls the function at r1 (a `lddw src 4` address) r2 times with (i, r3)
    insns = assemble("mov %r2, 4\nmov %r3, 10\nmov %r6, 1") + [make("lddw_src4", dst=1, imm=4)] + \
        assemble("call 2\nadd %r0, %r6\nexit") + \
        assemble("mov %r0, %r1\nadd %r0, %r2\nmov %r6, 50\nexit")
    # callback(i, 10) = i + 10 for i in 0..3 -> 46; r6 of the caller untouched
    assert r0_of(ex, insns) == 46 + 1


def test_callback_bad_address(ex):
    res, _ = run(ex, "mov %r1, 5\nmov %r2, 1\ncall 2\nexit")
    assert res.error and "callback" in res.error


def test_tail_call_switches_program_with_fresh_stack(ex):
    tail = Program("tail", assemble("ldxdw %r0, [%r10-8]\nadd %r0, %r1\nexit"))
    env = TestEnv(tail=tail)
    res, _ = run(ex, "stdw [%r10-8], 77\ncall 4\nmov %r0, 5\nexit", env=env, r1=MEM)
    assert res.error is None and res.r0 == MEM


def test_helper_may_move_regions(ex):
    # helper 6 moves the block 8 bytes up, as adjust_head rebuilds the packet region
    text = "ldxb %r6, [%r1+8]\ncall 6\nldxb %r0, [%r1+8]\nstb [%r1+8], 1\nldxb %r2, [%r1+8]\nadd %r0, %r2\nexit"
    res, env = run(ex, text)
    assert res.error is None and res.r0 == 8 + 1 and env.block.data[0] == 1


# ---------------------------------------------------------------- faults, budget

def test_budget_exhaustion_on_infinite_loop(ex):
    res, _ = run(ex, "mov %r0, 0\nadd %r0, 1\nja -2", budget=1000)
    assert res.r0 == 0 and "budget" in res.error and res.steps == 1000


def test_budget_exact(ex):
    prog = "mov %r0, 1\nmov %r0, 2\nexit"
    assert run(ex, prog, budget=3)[0].error is None
    res, _ = run(ex, prog, budget=2)
    assert res.error == "instruction budget of 2 exhausted at pc 2"


@pytest.mark.parametrize("insns,word", [
    ([Insn(0xFF)], "invalid instruction"),
    ([make("mov64_k", dst=11)], "invalid register"),
    ([make("mov64_k")], "fell off the end"),
    ([make("ja", off=5), make("exit")], "jump target"),
    ([make("ja", off=1), make("lddw"), make("exit")], "jump target"),   # into an lddw's 2nd slot
    ([make("call_kfunc", imm=3), make("exit")], "kfunc"),
    ([], "fell off the end"),
])
def test_faults(ex, insns, word):
    res, _ = run(ex, insns)
    assert res.r0 == 0 and word in res.error


# ---------------------------------------------------------------- hXDP extensions

class CtxHook(RegionHook):
    def __init__(self, data: int, end: int):
        self.vals = {0: data, 4: end}

    def load(self, off, size):
        return self.vals.get(off, 0)


def xdp_env(n: int) -> Env:
    env = Env()
    env.mem.add(Region("pkt", layout.PACKET_BASE, bytearray(n), True, "packet"))
    env.mem.add(Region("ctx", layout.CTX_BASE, bytearray(24), False, "ctx",
                       CtxHook(layout.PACKET_BASE, layout.PACKET_BASE + n)))
    return env


def test_pexit_and_bounds(ex):
    assert r0_of(ex, "exit 3") == 3
    prog = "bounds 14, 1\nldxw %r2, [%r1+0]\nldxb %r0, [%r2+13]\nexit 2"
    assert run(ex, prog, env=xdp_env(14), r1=layout.CTX_BASE)[0].r0 == 2
    res, _ = run(ex, prog, env=xdp_env(13), r1=layout.CTX_BASE)
    assert res.error is None and res.r0 == 1
    res, _ = run(ex, prog, env=Env(), r1=0)
    assert res.error and "XDP context" in res.error


def test_nop(ex):
    assert r0_of(ex, "nop\nmov %r0, 4\nnop\nexit") == 4


def test_module_run_function():
    from emulator.interp import fastpath, interpreter
    prog = Program("t", assemble("mov %r0, %r1\nexit"))
    assert interpreter.run(prog, Env(), 5).r0 == 5
    assert fastpath.run(prog, Env(), 5).r0 == 5


# ---------------------------------------------------------------- against the Linux kernel

KREGS = [0, 1, 2, 3, 4, 5, 7, 8, 9]          # r6 holds the packet pointer, r10 the frame
KPKT = 160
KERNEL_KINDS = (Kind.ALU, Kind.MOV, Kind.NEG, Kind.MOVSX, Kind.END, Kind.JCOND, Kind.JA,
                Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC)
KERNEL_SPECS = [s for s in TABLE if s.kind in KERNEL_KINDS and not s.extension]


@st.composite
def kernel_insn(draw):
    """A random instruction the verifier accepts on initialised scalars and stack slots:
    forward jumps only, no constant division by zero or constant out-of-range shift,
    unused fields zero, aligned stack accesses in r10-64..r10-1."""
    s = draw(st.sampled_from(KERNEL_SPECS))
    f = dict(dst=draw(st.sampled_from(KREGS)), src=draw(st.sampled_from(KREGS)), off=0,
             imm=draw(st.one_of(st.sampled_from([0, 1, -1, 7, 31, 32, 63, 0x7FFFFFFF, -0x80000000]),
                                st.integers(-(1 << 31), (1 << 31) - 1))))
    if s.kind == Kind.ALU and not s.reg_src:
        if s.op in ("div", "mod", "sdiv", "smod") and f["imm"] == 0:
            f["imm"] = 3
        if s.op in ("lsh", "rsh", "arsh"):
            f["imm"] &= s.width - 1
    if s.kind in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC):
        f["dst" if s.kind in (Kind.ST, Kind.STX, Kind.ATOMIC) else "src"] = 10
        f["off"] = -8 * draw(st.integers(1, 8)) + (draw(st.sampled_from([0, 4])) if s.size <= 4 else 0)
    if s.kind == Kind.JCOND:
        f["off"] = draw(st.integers(0, 3))
    if s.kind == Kind.JA:
        f.update(dst=0, src=0, off=0, imm=0)
    if s.kind in (Kind.LDX, Kind.LDXSX, Kind.STX) or (
            s.reg_src and s.kind in (Kind.ALU, Kind.MOV, Kind.JCOND, Kind.MOVSX)):
        f["imm"] = 0
    if not s.reg_src and s.kind in (Kind.ALU, Kind.MOV, Kind.JCOND, Kind.ST, Kind.NEG, Kind.END):
        f["src"] = 0
    if s.kind == Kind.NEG:
        f["imm"] = 0
    if s.variant_field:
        f[s.variant_field] = s.variant
    return Insn(s.opcode, **f)


def _kernel_program(inits: list[int], stack: list[int], body: list[Insn]) -> Program:
    pro = assemble(f"r6 = *(u32 *)(r1 + 0)\nr7 = *(u32 *)(r1 + 4)\nr2 = r6\nr2 += {KPKT}\n"
                   "if r2 > r7 goto +1\ngoto +2\nr0 = 1\nexit")
    init = [make("stdw", dst=10, off=-8 * (k + 1), imm=v) for k, v in enumerate(stack)]
    init += [Insn(0x18, dst=r, imm=v) for r, v in zip(KREGS, inits)]
    epi = [make("stxdw", dst=6, src=r, off=8 * k) for k, r in enumerate(KREGS)]
    for k in range(8):   # the stack, after the registers
        epi += [make("ldxdw", dst=1, src=10, off=-8 * (k + 1)), make("stxdw", dst=6, src=1, off=72 + 8 * k)]
    epi += [make("mov64_k", dst=0, imm=2), make("exit")]
    return Program("k", pro + init + body + epi)


@needs_kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                     HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from([0, 1, M64, 1 << 63, 0x80000000, 0xFFFFFFFF, 0x7FFFFFFF]),
                          st.integers(0, M64)), min_size=9, max_size=9),
       st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=8, max_size=8),
       st.lists(kernel_insn(), min_size=1, max_size=24))
def test_agrees_with_the_kernel(tmp_path_factory, inits, stack, body):
    """Random ALU/jump/stack/atomic programs: registers and stack written into the packet,
    compared with what BPF_PROG_TEST_RUN gives for the same bytecode."""
    from emulator.kernel import KernelProgram
    from isa.errors import InputError
    from isa.elfwrite import write_elf
    prog = _kernel_program(inits, stack, body)
    path = tmp_path_factory.mktemp("k") / "p.o"
    write_elf(path, prog)
    try:
        kp = KernelProgram(str(path))
    except InputError:          # the verifier refused it (e.g. a rule we did not model)
        assume(False)
    try:
        kr = kp.run(bytes(KPKT))
    finally:
        kp.close()
    for cls in EXECUTORS.values():
        env = xdp_env(KPKT)
        res = cls(prog).run(env, layout.CTX_BASE)
        pkt = next(r for r in env.mem.regions() if r.kind == "packet")
        assert (res.error, res.r0, bytes(pkt.data)) == (None, kr.action, kr.data), cls.__name__
