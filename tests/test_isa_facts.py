"""The ISA table's facts about an instruction (isa.insn.reads/writes/mem_access/target/
falls_through) against what the reference interpreter does when it executes it, for
every row (variant) of the table: whatever the facts leave out must be unobservable."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import layout
from emulator.runtime.env import Env, ProgramExit
from emulator.interp.interpreter import EXIT, HANDLERS, Activation, InterpRun, Interpreter, decode_program, frame_top
from emulator.runtime.memory import Region
from isa.insn import falls_through, make, mem_access, reads, slot_offsets, target, writes
from isa.opcodes import LDDW_FUNC, M64, TABLE, Kind
from isa.semantics import sext
from isa.program import Program

MEM = layout.MEM_BASE
MEM_SIZE = 64
BASE = MEM + 24            # value of a memory instruction's address register
NOT_EXECUTABLE = {Kind.CALL_KFUNC}   # the interpreter faults on it: nothing to observe
TARGET_SLOTS = 3           # exits after the instruction under test (jump targets land there)


class FactsEnv(Env):
    """One writable block; every helper returns a fixed function of its number and arguments;
    every lddw pseudo source loads a fixed value."""
    __test__ = False

    def __init__(self, data: bytes):
        super().__init__()
        self.block = self.mem.add(Region("mem", MEM, bytearray(data), True, "mem"))

    def helper(self, num, args, caller):
        return (num * 0x9E3779B97F4A7C15 + sum(args)) & M64

    def lddw_value(self, src, imm):
        return (src << 40) | (imm & 0xFFFF)


def _insn(spec, dst, src, off, imm):
    fields = dict(dst=dst, src=src, off=off, imm=imm)
    if spec.access:
        fields["off"] = off % 17 - 8                 # inside the block around BASE
    if spec.target_field:                           # a target among the exits after it
        fields[spec.target_field] = 1 + off % (TARGET_SLOTS - 1)
    if spec.kind == Kind.CALL_LOCAL:
        fields["imm"] = 1
    if spec.imm_reg:
        fields["imm"] = imm % 11
    if spec.kind == Kind.LDDW and spec.variant != LDDW_FUNC:
        fields["imm"] = imm & M64
    insn = make(spec.key, **{k: v for k, v in fields.items()})
    return insn


def _program(insn) -> Program:
    """The instruction, then exits (its jump targets); a local call's callee sets r0 first
    (the verifier refuses a function that returns without setting it)."""
    if insn.spec.kind == Kind.CALL_LOCAL:
        return Program("facts", [insn, make("exit"), make("mov64_k", imm=7), make("exit")])
    return Program("facts", [insn] + [make("exit")] * TARGET_SLOTS)


def _execute(insn, regs: list[int], data: bytes):
    """(registers after, memory after, next instruction index or ("exit", result)) of one
    instruction."""
    prog = _program(insn)
    env = FactsEnv(data)
    run = InterpRun(Interpreter(prog), env, 100)
    code = decode_program(prog)
    run.code, run.ctx = code, MEM
    act = Activation(code, list(regs), 0, [])
    spec = insn.spec
    try:
        if spec.kind == Kind.CALL_LOCAL:     # through the callee's exit and back
            run.loop(act, 0)
            nxt = code.targets[0]
        else:
            nxt = HANDLERS[spec.kind](run, act, 0, insn, spec)
    except ProgramExit as e:
        return act.regs, bytes(env.block.data), ("exit", int(e.r0) & M64), code
    if nxt == EXIT:
        nxt = ("exit", act.regs[0])                 # the program's result
    return act.regs, bytes(env.block.data), nxt, code


def _exits(nxt) -> bool:
    return isinstance(nxt, tuple)


def _regs(values: list[int], insn) -> list[int]:
    regs = list(values[:10]) + [frame_top(0)]
    acc = mem_access(insn)
    if acc is not None:
        regs[acc.base] = BASE
    return regs


REG = st.integers(0, 10)
VALUE = st.one_of(st.sampled_from([0, 1, M64, 1 << 63, 0x80, 0x8000, 0x80000000]), st.integers(0, M64))
FIELDS = dict(dst=REG, src=REG, off=st.integers(-(1 << 15), (1 << 15) - 1), imm=st.integers(-(1 << 31), (1 << 31) - 1),
              values=st.lists(VALUE, min_size=10, max_size=10), others=st.lists(VALUE, min_size=10, max_size=10),
              data=st.binary(min_size=MEM_SIZE, max_size=MEM_SIZE),
              other_data=st.binary(min_size=MEM_SIZE, max_size=MEM_SIZE))


@pytest.mark.parametrize("spec", [s for s in TABLE if s.kind not in NOT_EXECUTABLE], ids=lambda s: s.key)
@settings(max_examples=6)
@given(**FIELDS)
def test_facts_match_the_interpreter(spec, dst, src, off, imm, values, others, data, other_data):
    insn = _insn(spec, dst, src, off, imm)
    regs = _regs(values, insn)
    after, mem, nxt, code = _execute(insn, regs, data)
    W, R, acc = writes(insn), reads(insn), mem_access(insn)

    # registers outside writes(insn) keep their values (after an exit no register is
    # observable: the interpreter returns `exit K`'s action through r0)
    for r in range(11):
        if r not in W and not _exits(nxt):
            assert after[r] == regs[r], f"r{r} changed but is not in writes"

    # registers outside reads(insn) do not change the outcome
    regs2 = [regs[r] if r in R else others[r] for r in range(10)] + [regs[10] if 10 in R else frame_top(0) - 8]
    after2, mem2, nxt2, _ = _execute(insn, regs2, data)
    assert (mem2, nxt2) == (mem, nxt) and all(after2[r] == after[r] for r in W), "an unread register mattered"

    # memory: only the access's bytes change, only bytes of the access are read
    lo = hi = 0
    if acc is not None:
        lo, hi = BASE + acc.off - MEM, BASE + acc.off - MEM + acc.size
    if acc is None or not acc.store:
        assert mem == data, "memory changed without a store"
    else:
        assert mem[:lo] == data[:lo] and mem[hi:] == data[hi:], "a store wrote outside its bytes"
    if acc is not None:
        data3 = other_data[:lo] + data[lo:hi] + other_data[hi:]
        after3, mem3, nxt3, _ = _execute(insn, regs, data3)
        assert all(after3[r] == after[r] for r in W) and mem3[lo:hi] == mem[lo:hi] and nxt3 == nxt
    if acc is not None and acc.load and not acc.store:
        raw = int.from_bytes(data[lo:hi], "little")
        want = sext(raw, 8 * acc.size) & M64 if acc.signed else raw
        assert after[insn.dst] == want, "width or sign of the load"

    # control: fall-through and target as the interpreter decoded and followed them
    slots = slot_offsets(code.insns)
    t = target(insn, 0)
    assert (slots.index(t) if t is not None else None) == code.targets[0]
    if not _exits(nxt) and spec.kind != Kind.CALL_LOCAL:
        assert nxt in (1, code.targets[0])
        if nxt == 1 and nxt != code.targets[0]:
            assert falls_through(insn), "went on at the next instruction"
    if not falls_through(insn):
        assert nxt != 1 or code.targets[0] == 1


def test_facts_of_the_variants_that_share_an_opcode():
    """Rows with one opcode byte and different facts (the movsx miscompile's cause)."""
    mov, movsx = make("mov64_x", dst=2, src=8), make("movsx864", dst=2, src=8)
    assert mov.opcode == movsx.opcode and mov.spec.kind != movsx.spec.kind
    assert reads(make("lock_add", dst=1, src=2)) == {1, 2} and writes(make("lock_add", dst=1, src=2)) == set()
    assert writes(make("lock_fetch_add", dst=1, src=2)) == {2}
    assert reads(make("lock_cmpxchg", dst=1, src=2)) == {0, 1, 2} and writes(make("lock_cmpxchg", dst=1, src=2)) == {0}
    assert target(make("ja32", imm=5, off=9), 10) == 16 and target(make("ja", imm=5, off=9), 10) == 20
    assert not falls_through(make("ja", off=1)) and falls_through(make("jeq64_k", off=1))
    assert reads(make("add643_x", dst=1, src=2, imm=3)) == {2, 3} and reads(make("add643_k", dst=1, src=2, imm=3)) == {2}
    assert mem_access(make("ldxsw", dst=1, src=2, off=4)).signed and not mem_access(make("ldxw", dst=1, src=2)).signed
    assert reads(make("call", imm=1)) == {1, 2, 3, 4, 5} and reads(make("callx", dst=7)) == {1, 2, 3, 4, 5, 7}
    assert target(make("lddw_src4", imm=2), 0) == 3 and target(make("lddw", imm=2), 0) is None
