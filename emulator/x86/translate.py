"""eBPF -> x86-64, following the Linux JIT (arch/x86/net/bpf_jit_comp.c) closely enough that
code size and executed-instruction counts compare with the kernel's.

Register mapping (the kernel's): r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8, r6 rbx,
r7 r13, r8 r14, r9 r15, r10 rbp; r11 is the scratch (AUX_REG), r10 holds r0 across the
cmpxchg loops (BPF_REG_AX).  Like the kernel, jumps are emitted in passes until the code
stops shrinking (a jump is short when the previous pass says it fits in 8 bits).

What differs from the kernel, and why (docs/x86.md):
- the eBPF stack is the runtime's stack region (rbp = r10 = STACK_TOP - depth * 512), not
  the x86 stack: a function's prologue (the kernel's nop5, nop3, push rbp, then the r6-r9 the
  program uses) moves rbp down one frame where the kernel's sets rbp = rsp;
- helpers (tail calls included: the runtime's bpf_tail_call decides) are a `call` to a
  per-helper stub address the executor hooks; a helper number in a register (callx) or
  beyond the stub table goes through the callx stub with the number in r11;
- `lddw` of a map reference is a movabs the executor patches with the Env's value;
- what the verifier would reject (a bad jump target, a call past the frame limit, an
  instruction the ISA table does not know, falling off the end) is a `call` to the fault
  stub, so that the run ends with the interpreter's error.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Optional

from isa import layout
from isa.insn import Insn, invalid_reason, slot_offsets, spec_or_none, target
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M32, M64, Kind, OpSpec
from isa.program import Program
from isa.semantics import sext
from emulator.x86 import emit as E
from emulator.x86.emit import Buffer

# ---- the executor's address map (x86 side; far from every eBPF region of isa.layout) ----
STUB_BASE = 0x0800_0000            # below CTX_BASE: unicorn keeps low physical addresses apart
HELPER_STUBS = 0x1000                 # helpers 0..HELPER_STUBS-1 have a stub each: STUB_BASE + num
STOP_STUB = STUB_BASE + HELPER_STUBS  # the return address of an activation: emu_start's `until`
FAULT_STUB = STOP_STUB + 1            # `call FAULT_STUB`: the return address names the fault
CALLX_STUB = STOP_STUB + 2            # helper number in r11
SLOW_STUB = STOP_STUB + 3             # an hXDP extension instruction, its index in r11, run by the executor
CODE_BASE = STUB_BASE + 0x10_0000     # program k of a run (tail calls) at CODE_BASE + k * CODE_STRIDE
CODE_STRIDE = 0x10_0000

# eBPF register -> x86 register
REG = (E.RAX, E.RDI, E.RSI, E.RDX, E.RCX, E.R8, E.RBX, E.R13, E.R14, E.R15, E.RBP)
AUX = E.R11
AX = E.R10
CALLEE_SAVED = (E.RBX, E.R13, E.R14, E.R15)
MAX_PASSES = 20

BAD_TARGET_FAULT = "jump target is outside the program or inside an lddw"
FELL_OFF = "execution fell off the end of the program"
CALL_DEPTH_FAULT = f"call depth above {layout.MAX_CALL_FRAMES} frames"
DEEPEST_CALLER_RBP = layout.STACK_TOP - (layout.MAX_CALL_FRAMES - 1) * layout.STACK_SIZE


@dataclass(frozen=True)
class Translation:
    """A program as x86 code placed at `base`: what the executor maps and how it maps back."""
    program: Program
    code: bytes
    base: int
    static_insns: int                   # x86 instructions (capstone)
    offsets: dict[int, int]             # eBPF slot -> code offset of its first x86 instruction
    entries: dict[int, int]             # instruction index of a function -> offset of its prologue
    insn_offsets: list[int]             # per instruction index, code offset (non-decreasing)
    slots: list[int]                    # per instruction index, its slot
    faults: dict[int, tuple[str, int]]  # return offset of a `call FAULT_STUB` -> (reason, slot)
    lddw: list[tuple[int, int, int, int]]   # (imm64 field offset, src, imm, slot) of map lddws
    x86_starts: list[int] = field(default_factory=list)   # offset of every x86 instruction
    mem_insns: dict[int, Insn] = field(default_factory=dict)   # index -> memory instruction

    def index_at(self, offset: int) -> int:
        """The eBPF instruction whose code holds `offset`."""
        return max(0, bisect.bisect_right(self.insn_offsets, offset) - 1)

    def end_slot(self) -> int:
        return self.slots[-1] + self.program.insns[-1].slots if self.slots else 0


# hXDP extensions (Sephirot's compiler output, never in an ELF object): run by the executor
SLOW_KINDS = {Kind.ALU3, Kind.LDX48, Kind.STX48, Kind.BOUNDS}


class _Pass:
    """One emission pass over the program, jumps sized from the previous pass's offsets."""

    def __init__(self, program: Program, base: int, prev: Optional[list[int]], prev_ends: Optional[list[int]],
                 prev_labels: Optional[dict]):
        self.program = program
        self.insns = list(program.insns)
        self.slots = slot_offsets(self.insns)
        self.slot_index = {s: i for i, s in enumerate(self.slots)}
        self.specs = [spec_or_none(i) for i in self.insns]
        self.base = base
        self.prev, self.prev_ends, self.prev_labels = prev, prev_ends, prev_labels or {}
        self.buf = Buffer()
        self.offsets: list[int] = []
        self.ends: list[int] = []
        self.entries: dict[int, int] = {}
        self.fixups: list[tuple[int, bool, object]] = []   # (field pos, short, target: index or label)
        self.faults: dict[int, tuple[str, int]] = {}
        self.lddw: list[tuple[int, int, int, int]] = []
        self.labels: dict[str, int] = {}
        self.functions = self._function_entries()
        self.saved = self._callee_regs_used()

    # ---- program facts
    def _target_index(self, i: int) -> Optional[int]:
        t = target(self.insns[i], self.slots[i])
        return None if t is None else self.slot_index.get(t)

    def _function_entries(self) -> set[int]:
        out = {0}
        for i, s in enumerate(self.specs):
            if s is not None and not invalid_reason(self.insns[i], s) and (
                    s.kind == Kind.CALL_LOCAL or (s.kind == Kind.LDDW and self.insns[i].src == LDDW_FUNC)):
                t = self._target_index(i)
                if t is not None:
                    out.add(t)
        return out

    def _callee_regs_used(self) -> tuple[int, ...]:
        """The kernel's detect_reg_usage: r6-r9 are saved only when some instruction names them
        (whole program, so every function of ours saves the same set for the shared epilogue)."""
        used = set()
        for ins, s in zip(self.insns, self.specs):
            if s is not None:
                used.update(r for r in (ins.dst, ins.src) if 6 <= r <= 9)
        return tuple(x for r, x in zip(range(6, 10), CALLEE_SAVED) if r in used)

    # ---- jumps
    def _short(self, i: int, dest) -> bool:
        """Whether a jump of instruction i to `dest` fit in rel8 in the previous pass."""
        if self.prev is None:
            return False
        to = self.prev_labels.get(dest) if isinstance(dest, str) else self.prev[dest]
        return to is not None and E.fits8(to - self.prev_ends[i])

    def jump(self, i: int, dest, cc: Optional[int] = None) -> None:
        short = self._short(i, dest)
        at = E.emit_jmp(self.buf, None, short) if cc is None else E.emit_jcc(self.buf, cc, None, short)
        self.fixups.append((at, short, dest))

    def call_stub(self, addr: int) -> None:
        E.emit_call(self.buf, addr - self.base)

    def fault(self, reason: str, slot: int) -> None:
        self.call_stub(FAULT_STUB)
        self.faults[self.buf.pos] = (reason, slot)

    # ---- the loop
    def run(self) -> None:
        n = len(self.insns)
        for i in range(n):
            if i in self.functions:
                over = None
                if i and (self.specs[i - 1] is None or self.specs[i - 1].falls_through):
                    over = E.emit_jmp(self.buf, None, True)   # falling into a function skips its prologue
                self.entries[i] = self.buf.pos
                self._prologue()
                if over is not None:
                    self.buf.patch8(over, self.buf.pos)
            self.offsets.append(self.buf.pos)
            ins, spec = self.insns[i], self.specs[i]
            reason = invalid_reason(ins, spec)
            if reason:
                self.fault(reason, self.slots[i])
            elif spec.kind in SLOW_KINDS:
                E.emit_mov_imm32(self.buf, False, AUX, i)
                self.call_stub(SLOW_STUB)
            else:
                KINDS[spec.kind](self, i, ins, spec)
            self.ends.append(self.buf.pos)
        if not n:
            self.entries[0] = self.buf.pos
        if not n or self.specs[-1] is None or self.specs[-1].falls_through or invalid_reason(
                self.insns[-1], self.specs[-1]):
            self.fault(FELL_OFF, self.slots[-1] + self.insns[-1].slots if n else 0)
        self.labels["epilogue"] = self.buf.pos
        for r in reversed(self.saved):
            E.emit_pop(self.buf, r)
        E.emit_pop(self.buf, E.RBP)
        E.emit_ret(self.buf)
        for t, off in self.entries.items():
            self.labels[f"entry{t}"] = off
        for at, short, dest in self.fixups:
            to = self.labels[dest] if isinstance(dest, str) else self.offsets[dest]
            (self.buf.patch8 if short else self.buf.patch32)(at, to)

    def _prologue(self) -> None:
        """The kernel's shape: nop5, nop3, push rbp, the frame (here the eBPF stack region's,
        not the x86 stack), push the callee-saved registers the program uses."""
        E.emit_nop(self.buf, E.NOP5)
        E.emit_nop(self.buf, E.NOP3)
        E.emit_push(self.buf, E.RBP)
        E.emit_alu_ri(self.buf, "sub", True, E.RBP, layout.STACK_SIZE)
        for r in self.saved:
            E.emit_push(self.buf, r)


# ---------------------------------------------------------------- one emitter per kind

def _w(spec: OpSpec) -> bool:
    return spec.width == 64


def _imm32(imm: int) -> int:
    return sext(imm, 32)


def k_alu(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    op, w, buf = spec.op, _w(spec), p.buf
    dst = REG[ins.dst]
    src = REG[ins.src] if spec.reg_src else None
    imm = _imm32(ins.imm)
    if op == "mov":
        if src is not None:
            E.emit_mov_rr(buf, w, dst, src)
        else:
            E.emit_mov_imm32(buf, w, dst, imm if w else imm & M32)
    elif op in ("add", "sub", "or", "and", "xor"):
        if src is not None:
            E.emit_alu_rr(buf, op, w, dst, src)
        else:
            E.emit_alu_ri(buf, op, w, dst, imm)
    elif op == "mul":
        if src is not None:
            E.emit_imul_rr(buf, w, dst, src)
        else:
            E.emit_imul_ri(buf, w, dst, imm)
    elif op in ("lsh", "rsh", "arsh"):
        if src is None:
            E.emit_shift_ri(buf, op, w, dst, imm & (spec.width - 1))
        else:
            _shift_cl(buf, op, w, dst, src)
    else:
        _divmod(p, i, op, w, dst, src, imm)


def _shift_cl(buf: Buffer, op: str, w: bool, dst: int, src: int) -> None:
    """Shift by a register: x86 takes the count in cl and masks it like eBPF (width - 1)."""
    if src == E.RCX:
        E.emit_shift_cl(buf, op, w, dst)
    elif dst == E.RCX:
        E.emit_mov_rr(buf, True, AUX, E.RCX)
        E.emit_mov_rr(buf, True, E.RCX, src)
        E.emit_shift_cl(buf, op, w, AUX)
        E.emit_mov_rr(buf, w, E.RCX, AUX)
    else:
        E.emit_mov_rr(buf, True, AUX, E.RCX)
        E.emit_mov_rr(buf, True, E.RCX, src)
        E.emit_shift_cl(buf, op, w, dst)
        E.emit_mov_rr(buf, True, E.RCX, AUX)


def _zero_divisor(buf: Buffer, op: str, w: bool, dst: int) -> None:
    """dst for a divisor of 0: div 0, mod dst (a 32-bit mod zero-extends), as the verifier patches."""
    if op in ("div", "sdiv"):
        E.emit_alu_rr(buf, "xor", False, dst, dst)
    elif not w:
        E.emit_mov_rr(buf, False, dst, dst)


def _minus_one_divisor(buf: Buffer, op: str, w: bool, dst: int) -> None:
    """sdiv by -1 is neg (INT_MIN stays INT_MIN), smod by -1 is 0: idiv would trap."""
    if op == "sdiv":
        E.emit_neg(buf, w, dst)
    else:
        E.emit_alu_rr(buf, "xor", False, dst, dst)


def _div_sequence(buf: Buffer, op: str, w: bool, dst: int, src: Optional[int], imm: int) -> None:
    """The kernel's div/mod: save rax/rdx around `div r11`, result via r11."""
    if dst != E.RAX:
        E.emit_push(buf, E.RAX)
    if dst != E.RDX:
        E.emit_push(buf, E.RDX)
    if src is None:
        E.emit_mov_imm32(buf, w, AUX, imm if w else imm & M32)
    else:
        E.emit_mov_rr(buf, True, AUX, src)
    E.emit_mov_rr(buf, True, E.RAX, dst)
    signed = op in ("sdiv", "smod")
    if signed:
        E.emit_sign_extend_rax(buf, w)
    else:
        E.emit_alu_rr(buf, "xor", False, E.RDX, E.RDX)
    E.emit_div(buf, w, signed, AUX)
    E.emit_mov_rr(buf, True, AUX, E.RDX if op in ("mod", "smod") else E.RAX)
    if dst != E.RDX:
        E.emit_pop(buf, E.RDX)
    if dst != E.RAX:
        E.emit_pop(buf, E.RAX)
    E.emit_mov_rr(buf, w, dst, AUX)


def _divmod(p: _Pass, i: int, op: str, w: bool, dst: int, src: Optional[int], imm: int) -> None:
    buf = p.buf
    signed = op in ("sdiv", "smod")
    if src is None:
        val = imm if w else sext(imm & M32, 32)
        if val == 0:
            _zero_divisor(buf, op, w, dst)
        elif signed and val == -1:
            _minus_one_divisor(buf, op, w, dst)
        else:
            _div_sequence(buf, op, w, dst, None, imm)
        return
    ends = []
    E.emit_alu_rr(buf, "test", w, src, src)
    nonzero = E.emit_jcc(buf, E.CC["jne"], None, True)
    _zero_divisor(buf, op, w, dst)
    ends.append(E.emit_jmp(buf, None, True))
    buf.patch8(nonzero, buf.pos)
    if signed:
        E.emit_alu_ri(buf, "cmp", w, src, -1)
        other = E.emit_jcc(buf, E.CC["jne"], None, True)
        _minus_one_divisor(buf, op, w, dst)
        ends.append(E.emit_jmp(buf, None, True))
        buf.patch8(other, buf.pos)
    _div_sequence(buf, op, w, dst, src, imm)
    for at in ends:
        buf.patch8(at, buf.pos)


def k_neg(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_neg(p.buf, _w(spec), REG[ins.dst])


def k_movsx(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_movsx_rr(p.buf, _w(spec), REG[ins.dst], REG[ins.src], spec.variant)


def k_end(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    """The kernel's byte swaps: le16 movzx, le32 mov r32, le64 nothing; be16 rol + movzx,
    be32/be64 bswap (bswap* are the same on a little-endian host)."""
    buf, dst, bits = p.buf, REG[ins.dst], spec.width
    if spec.op == "le":
        if bits == 16:
            E.emit_movzx_rr(buf, dst, dst, 16)
        elif bits == 32:
            E.emit_mov_rr(buf, False, dst, dst)
    elif bits == 16:
        E.emit_rol16_8(buf, dst)
        E.emit_movzx_rr(buf, dst, dst, 16)
    else:
        E.emit_bswap(buf, bits == 64, dst)


def k_ja(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    t = p._target_index(i)
    if t is None:
        p.fault(BAD_TARGET_FAULT, p.slots[i])
    elif t != i + 1:
        p.jump(i, t)


def k_jcond(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    buf, w, dst = p.buf, _w(spec), REG[ins.dst]
    if spec.reg_src:
        E.emit_alu_rr(buf, "test" if spec.op == "jset" else "cmp", w, dst, REG[ins.src])
    elif spec.op == "jset":
        E.emit_test_ri(buf, w, dst, _imm32(ins.imm))
    elif ins.imm == 0:                  # test sets the flags of cmp with 0 (the kernel's choice)
        E.emit_alu_rr(buf, "test", w, dst, dst)
    else:
        E.emit_alu_ri(buf, "cmp", w, dst, _imm32(ins.imm))
    cc = E.CC[spec.op]
    t = p._target_index(i)
    if t is None:                       # taken: the interpreter's fault; not taken: go on
        skip = E.emit_jcc(buf, cc ^ 1, None, True)
        p.fault(BAD_TARGET_FAULT, p.slots[i])
        buf.patch8(skip, buf.pos)
    else:
        p.jump(i, t, cc)


def k_call(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    if 0 <= ins.imm < HELPER_STUBS:
        p.call_stub(STUB_BASE + ins.imm)
    else:
        E.emit_mov_imm64(p.buf, AUX, ins.imm & M64)
        p.call_stub(CALLX_STUB)


def k_callx(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_mov_rr(p.buf, True, AUX, REG[ins.dst])
    p.call_stub(CALLX_STUB)


def k_call_local(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    t = p._target_index(i)
    if t is None:
        p.fault(BAD_TARGET_FAULT, p.slots[i])
        return
    buf = p.buf
    E.emit_alu_ri(buf, "cmp", True, E.RBP, DEEPEST_CALLER_RBP)
    ok = E.emit_jcc(buf, E.CC["jgt"], None, True)
    p.fault(CALL_DEPTH_FAULT, p.slots[i])
    buf.patch8(ok, buf.pos)
    buf.b(0xE8)
    at = buf.pos
    buf.i32(0)
    p.fixups.append((at, False, f"entry{t}"))


def k_call_kfunc(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    p.fault(f"kernel function calls (kfunc {ins.imm}) are not supported", p.slots[i])


def k_exit(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    """The last instruction falls into the epilogue (the kernel's `if (i != insn_cnt)`)."""
    if i != len(p.insns) - 1:
        p.jump(i, "epilogue")


def k_pexit(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_mov_imm32(p.buf, True, E.RAX, _imm32(ins.imm))
    k_exit(p, i, ins, spec)


def k_lddw(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    dst = REG[ins.dst]
    if ins.src == LDDW_IMM64:
        E.emit_mov_imm64(p.buf, dst, ins.imm)
    elif ins.src == LDDW_FUNC:
        t = p._target_index(i)
        if t is None:
            p.fault(BAD_TARGET_FAULT, p.slots[i])
        else:
            E.emit_mov_imm64(p.buf, dst, layout.FUNC_BASE + t)
    else:                               # movabs, patched with env.lddw_value by the executor
        p.buf.b(0x49 if dst & 8 else 0x48, 0xB8 | (dst & 7))
        p.lddw.append((p.buf.pos, ins.src, ins.imm, p.slots[i]))
        p.buf.u64(0)


def k_ldx(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_ldx(p.buf, spec.size, REG[ins.dst], REG[ins.src], ins.off)


def k_ldxsx(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_ldsx(p.buf, spec.size, REG[ins.dst], REG[ins.src], ins.off)


def k_st(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_st_imm(p.buf, spec.size, REG[ins.dst], ins.off, _imm32(ins.imm))


def k_stx(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    E.emit_stx(p.buf, spec.size, REG[ins.dst], ins.off, REG[ins.src])


def k_atomic(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    buf, size, dst, src, off = p.buf, spec.size, REG[ins.dst], REG[ins.src], ins.off
    op, w = spec.op, spec.size == 8
    if op in ("add", "or", "and", "xor"):
        E.emit_lock_alu(buf, op, size, dst, off, src)
    elif op == "fetch_add":
        E.emit_lock_xadd(buf, size, dst, off, src)
    elif op == "xchg":
        E.emit_xchg(buf, size, dst, off, src)
    elif op == "cmpxchg":
        E.emit_lock_cmpxchg(buf, size, dst, off, src)
        if not w:
            E.emit_mov_rr(buf, False, E.RAX, E.RAX)
    else:                               # fetch_or/and/xor: the kernel's cmpxchg loop
        E.emit_mov_rr(buf, True, AX, E.RAX)
        rs = AX if src == E.RAX else src
        rd = AX if dst == E.RAX else dst
        loop = buf.pos
        E.emit_ldx(buf, size, E.RAX, rd, off)
        E.emit_mov_rr(buf, w, AUX, E.RAX)
        E.emit_alu_rr(buf, op.removeprefix("fetch_"), w, AUX, rs)
        E.emit_lock_cmpxchg(buf, size, rd, off, AUX)
        E.emit_jcc(buf, E.CC["jne"], loop, True)
        E.emit_mov_rr(buf, w, rs, E.RAX)
        E.emit_mov_rr(buf, True, E.RAX, AX)


def k_nop(p: _Pass, i: int, ins: Insn, spec: OpSpec) -> None:
    """No code (the hXDP empty slot)."""


KINDS = {
    Kind.ALU: k_alu, Kind.MOV: k_alu, Kind.NEG: k_neg, Kind.MOVSX: k_movsx, Kind.END: k_end,
    Kind.JA: k_ja, Kind.JCOND: k_jcond, Kind.CALL: k_call, Kind.CALLX: k_callx,
    Kind.CALL_LOCAL: k_call_local, Kind.CALL_KFUNC: k_call_kfunc, Kind.EXIT: k_exit,
    Kind.PEXIT: k_pexit, Kind.LDDW: k_lddw, Kind.LDX: k_ldx, Kind.LDXSX: k_ldxsx, Kind.ST: k_st,
    Kind.STX: k_stx, Kind.ATOMIC: k_atomic, Kind.NOP: k_nop,
}
assert set(KINDS) | SLOW_KINDS == set(Kind), "every kind of the ISA table needs an emitter or a reason"


def x86_starts(code: bytes) -> list[int]:
    """Offsets of the x86 instructions of `code` (capstone)."""
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return [insn[0] for insn in md.disasm_lite(code, 0)]


def translate(program: Program, base: int = CODE_BASE) -> Translation:
    """The x86 code of `program` placed at address `base`."""
    prev = prev_ends = labels = None
    for _ in range(MAX_PASSES):
        p = _Pass(program, base, prev, prev_ends, labels)
        p.run()
        if prev == p.offsets and labels == p.labels:
            break
        prev, prev_ends, labels = p.offsets, p.ends, dict(p.labels)
    code = bytes(p.buf.code)
    starts = x86_starts(code)
    slots = p.slots
    mem = {k: ins for k, (ins, s) in enumerate(zip(p.insns, p.specs))
           if s is not None and s.access and not invalid_reason(ins, s)}
    return Translation(program=program, code=code, base=base, static_insns=len(starts),
                       offsets={slots[k]: off for k, off in enumerate(p.offsets)}, entries=dict(p.entries),
                       insn_offsets=list(p.offsets), slots=list(slots), faults=p.faults, lddw=p.lddw,
                       x86_starts=starts, mem_insns=mem)
