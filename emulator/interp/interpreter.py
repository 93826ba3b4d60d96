"""The reference interpreter: one instruction at a time, straight from the ISA table.

It is the oracle every faster executor (the fast path, Sephirot) is checked against, so it
stays simple: decode once, then a loop that dispatches on ``spec.kind`` to one small handler
per kind, each calling the semantics functions of ``isa.semantics``.  Nothing here spells an
instruction's meaning a second time.

Execution model (docs/interpreter.md):
- registers r0-r10 hold unsigned 64-bit values; at entry r1 = context, r10 = stack top,
  every other register 0;
- the stack region (``STACK_SIZE`` x ``MAX_CALL_FRAMES`` bytes just below ``STACK_TOP``) is
  added to ``env.mem`` zeroed for each run and removed when the run ends; frame k has
  r10 = STACK_TOP - k * STACK_SIZE;
- a BPF-to-BPF call saves r6-r10 and the return address, r10 moves down one frame;
- helper calls go to ``env.helper``; r1-r5 keep their values afterwards (the kernel leaves
  them undefined and its verifier forbids reading them, so no correct program can tell);
- a ``Fault`` (bad access, unknown helper, call depth, bad jump, invalid instruction) or the
  instruction budget ends the run with ``RunResult(r0=0, error="<reason> at pc N")``, N being
  the slot number llvm-objdump shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from isa import layout
from emulator.runtime.env import Env, ProgramExit, RunResult, budget_exhausted
from emulator.interp.runloop import (BAD_TARGET_FAULT, DEFAULT_BUDGET, FELL_OFF, STACK_BASE,  # noqa: F401
                                     Stop, callback_args, callback_index, check_call_depth, execute,
                                     frame_top, new_stack, packet_bounds, zeroer)
from emulator.runtime.memory import Fault, Region
from isa.insn import Insn, invalid_reason, slot_offsets, spec_or_none, target
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M64, NREGS, Kind, OpSpec
from isa.semantics import alu, atomic, endian, jump_taken, movsx, neg, sext
from isa.program import Program



# ---------------------------------------------------------------- decoding, once per program

@dataclass(frozen=True)
class Decoded:
    """A program ready to execute: per instruction its spec (or why it is invalid) and target."""
    program: Program
    insns: list[Insn]
    specs: list[Optional[OpSpec]]
    invalid: list[str]               # "" when the instruction can run
    slots: list[int]                 # slot number of each instruction
    targets: list[Optional[int]]     # jump / local call / lddw-func target index (None: none or bad)

    @property
    def size(self) -> int:
        return len(self.insns)


def target_index(insns: list[Insn], slots: list[int], slot_index: dict[int, int], i: int) -> Optional[int]:
    """Index of the instruction a jump, local call or `lddw src 4` refers to (the ISA
    table's `target`; None if it is not the first slot of an instruction of this program)."""
    t = target(insns[i], slots[i])
    return None if t is None else slot_index.get(t)


def decode_program(program: Program) -> Decoded:
    insns = list(program.insns)
    slots = slot_offsets(insns)
    slot_index = {s: i for i, s in enumerate(slots)}
    specs = [spec_or_none(i) for i in insns]
    invalid = [invalid_reason(i, s) for i, s in zip(insns, specs)]
    targets = [target_index(insns, slots, slot_index, k) if s is not None and not invalid[k] else None
               for k, s in enumerate(specs)]
    return Decoded(program, insns, specs, invalid, slots, targets)


class DecodeCache:
    """Decoded/compiled forms of the programs an executor met (tail calls switch programs)."""

    def __init__(self, build: Callable[[Program], object]):
        self._build = build
        self._cache: dict[int, tuple[Program, object]] = {}

    def get(self, program: Program):
        hit = self._cache.get(id(program))
        if hit is None or hit[0] is not program:
            hit = (program, self._build(program))
            self._cache[id(program)] = hit
        return hit[1]


# ---------------------------------------------------------------- the interpreter

@dataclass
class Activation:
    """One entry into the program (the run itself, or a bpf_loop callback) and its frames."""
    code: Decoded
    regs: list[int]
    depth: int
    frames: list[tuple[int, tuple[int, ...]]]


EXIT = -1  # handler result: leave the current function


class InterpRun:
    """State of one run; also the `Caller` helpers use to call back into the program."""

    def __init__(self, interp: "Interpreter", env: Env, budget: int):
        self.interp = interp
        self.env = env
        self.budget = budget
        self.steps = 0
        self.code: Optional[Decoded] = None
        self.ctx = 0
        self.depth = 0

    # entry for execute()
    def start(self, program: Program, stack: Region, r1: int, budget: int) -> int:
        self.code = self.interp.decoded(program)
        self.ctx = r1
        regs = [0] * NREGS
        regs[1] = r1
        regs[10] = frame_top(0)
        return self.loop(Activation(self.code, regs, 0, []), 0)

    # Caller protocol (bpf_loop): run a function of the program in a new frame
    def call(self, func_addr: int, args: tuple[int, ...]) -> int:
        code = self.code
        idx = callback_index(func_addr, code.size)
        depth = self.depth + 1
        check_call_depth(depth)
        regs = [0, *callback_args(args), 0, 0, 0, 0, frame_top(depth)]
        saved, steps = self.depth, self.steps
        self.steps = 0              # a callback invocation has a budget of its own (runloop.py)
        try:
            return self.loop(Activation(code, regs, depth, []), idx)
        finally:
            self.depth, self.steps = saved, steps

    def loop(self, act: Activation, pc: int) -> int:
        code = act.code
        n = code.size
        while True:
            if not 0 <= pc < n:
                slot = code.slots[-1] + code.insns[-1].slots if n else 0
                raise Stop(FELL_OFF, slot)
            if self.steps >= self.budget:
                raise Stop(budget_exhausted(self.budget), code.slots[pc])
            self.steps += 1
            spec = code.specs[pc]
            try:
                if code.invalid[pc]:
                    raise Fault(code.invalid[pc])
                self.depth = act.depth
                nxt = HANDLERS[spec.kind](self, act, pc, code.insns[pc], spec)
            except Fault as f:
                raise Stop(str(f), code.slots[pc]) from None
            if nxt == EXIT:
                if not act.frames:
                    return act.regs[0]
                ret, saved = act.frames.pop()
                act.regs[6:11] = saved
                act.depth -= 1
                pc = ret
            else:
                pc = nxt


def _target(act: Activation, pc: int) -> int:
    t = act.code.targets[pc]
    if t is None:
        raise Fault(BAD_TARGET_FAULT)
    return t


def _operand(regs: list[int], ins: Insn, spec: OpSpec) -> int:
    """Second operand: a register, or imm sign-extended to 64 bits."""
    return regs[ins.src] if spec.reg_src else ins.imm & M64


def _h_alu(run: InterpRun, act: Activation, pc: int, ins: Insn, spec: OpSpec) -> int:
    r = act.regs
    r[ins.dst] = alu(spec.op, r[ins.dst], _operand(r, ins, spec), spec.width)
    return pc + 1


def _h_alu3(run: InterpRun, act: Activation, pc: int, ins: Insn, spec: OpSpec) -> int:
    r = act.regs
    b = r[ins.imm] if spec.imm_reg else ins.imm & M64
    r[ins.dst] = alu(spec.op, r[ins.src], b, spec.width)
    return pc + 1


def _h_neg(run, act, pc, ins, spec) -> int:
    act.regs[ins.dst] = neg(act.regs[ins.dst], spec.width)
    return pc + 1


def _h_movsx(run, act, pc, ins, spec) -> int:
    act.regs[ins.dst] = movsx(act.regs[ins.src], spec.variant, spec.width)
    return pc + 1


def _h_end(run, act, pc, ins, spec) -> int:
    act.regs[ins.dst] = endian(spec.op, act.regs[ins.dst], spec.width)
    return pc + 1


def _h_ja(run, act, pc, ins, spec) -> int:
    return _target(act, pc)


def _h_jcond(run, act, pc, ins, spec) -> int:
    r = act.regs
    if jump_taken(spec.op, r[ins.dst], _operand(r, ins, spec), spec.width):
        return _target(act, pc)
    return pc + 1


def _helper(run: InterpRun, act: Activation, num: int) -> None:
    r = act.regs
    r[0] = run.env.helper(num, (r[1], r[2], r[3], r[4], r[5]), run) & M64


def _h_call(run, act, pc, ins, spec) -> int:
    _helper(run, act, ins.imm)
    return pc + 1


def _h_callx(run, act, pc, ins, spec) -> int:
    _helper(run, act, act.regs[ins.dst])
    return pc + 1


def _h_call_local(run, act, pc, ins, spec) -> int:
    t = _target(act, pc)
    check_call_depth(act.depth + 1)
    act.frames.append((pc + 1, tuple(act.regs[6:11])))
    act.depth += 1
    act.regs[10] = frame_top(act.depth)
    return t


def _h_call_kfunc(run, act, pc, ins, spec) -> int:
    raise Fault(f"kernel function calls (kfunc {ins.imm}) are not supported")


def _h_exit(run, act, pc, ins, spec) -> int:
    return EXIT


def _h_pexit(run, act, pc, ins, spec) -> int:
    act.regs[0] = ins.imm & M64
    return EXIT


def _h_bounds(run, act, pc, ins, spec) -> int:
    data, data_end = packet_bounds(run.env, run.ctx)
    if data + ins.imm > data_end:
        raise ProgramExit(ins.off & M64)
    return pc + 1


def _h_lddw(run, act, pc, ins, spec) -> int:
    if ins.src == LDDW_IMM64:
        v = ins.imm
    elif ins.src == LDDW_FUNC:
        v = layout.FUNC_BASE + _target(act, pc)
    else:
        v = run.env.lddw_value(ins.src, ins.imm)
    act.regs[ins.dst] = v & M64
    return pc + 1


def _h_ldx(run, act, pc, ins, spec) -> int:
    r = act.regs
    r[ins.dst] = run.env.mem.load((r[ins.src] + ins.off) & M64, spec.size)
    return pc + 1


def _h_ldxsx(run, act, pc, ins, spec) -> int:
    r = act.regs
    r[ins.dst] = sext(run.env.mem.load((r[ins.src] + ins.off) & M64, spec.size), spec.size * 8) & M64
    return pc + 1


def _h_st(run, act, pc, ins, spec) -> int:
    run.env.mem.store((act.regs[ins.dst] + ins.off) & M64, spec.size, ins.imm & M64)
    return pc + 1


def _h_stx(run, act, pc, ins, spec) -> int:
    r = act.regs
    run.env.mem.store((r[ins.dst] + ins.off) & M64, spec.size, r[ins.src])
    return pc + 1


def _h_atomic(run, act, pc, ins, spec) -> int:
    r = act.regs
    mem = run.env.mem
    addr = (r[ins.dst] + ins.off) & M64
    new, src_val, r0_val = atomic(spec.op, mem.load(addr, spec.size), r[ins.src], r[0], spec.width)
    mem.store(addr, spec.size, new)
    if src_val is not None:
        r[ins.src] = src_val
    if r0_val is not None:
        r[0] = r0_val
    return pc + 1


def _h_nop(run, act, pc, ins, spec) -> int:
    return pc + 1


HANDLERS: dict[Kind, Callable[..., int]] = {
    Kind.ALU: _h_alu, Kind.MOV: _h_alu, Kind.ALU3: _h_alu3, Kind.NEG: _h_neg, Kind.MOVSX: _h_movsx,
    Kind.END: _h_end, Kind.JA: _h_ja, Kind.JCOND: _h_jcond, Kind.CALL: _h_call, Kind.CALLX: _h_callx,
    Kind.CALL_LOCAL: _h_call_local, Kind.CALL_KFUNC: _h_call_kfunc, Kind.EXIT: _h_exit,
    Kind.PEXIT: _h_pexit, Kind.BOUNDS: _h_bounds, Kind.LDDW: _h_lddw, Kind.LDX: _h_ldx,
    Kind.LDX48: _h_ldx, Kind.LDXSX: _h_ldxsx, Kind.ST: _h_st, Kind.STX: _h_stx, Kind.STX48: _h_stx,
    Kind.ATOMIC: _h_atomic, Kind.NOP: _h_nop,
}
assert set(HANDLERS) == set(Kind), "every kind of the ISA table needs a handler"


class Interpreter:
    """The reference executor (emulator.runtime.env.Executor) for one program."""

    def __init__(self, program: Program):
        self.program = program
        self._decoded = DecodeCache(decode_program)

    def decoded(self, program: Program) -> Decoded:
        return self._decoded.get(program)

    def run(self, env: Env, r1: int, budget: int = DEFAULT_BUDGET) -> RunResult:
        stack = new_stack()
        return execute(InterpRun(self, env, budget), self.program, env, r1, stack, zeroer(stack))


def run(program: Program, env: Env, r1: int, budget: int = DEFAULT_BUDGET) -> RunResult:
    """Run `program` once on `env` with r1 = `r1`."""
    return Interpreter(program).run(env, r1, budget)
