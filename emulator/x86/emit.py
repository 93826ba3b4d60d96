"""x86-64 machine code, one small ``emit_*`` per instruction form (like ubpf's and the
Linux JIT's emitters), into a byte buffer whose jumps can be patched once their target
is known.

Registers are x86 numbers (0 rax .. 15 r15).  ``w`` is True for a 64-bit operation
(REX.W), False for the 32-bit form (which zero-extends its destination).
"""
from __future__ import annotations

import struct

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
R8, R9, R10, R11, R12, R13, R14, R15 = range(8, 16)

# /digit of the 0x81/0x83 group and the reg-reg opcode of the same operation
ALU_EXT = {"add": 0, "or": 1, "and": 4, "sub": 5, "xor": 6, "cmp": 7}
ALU_RR = {"add": 0x01, "or": 0x09, "and": 0x21, "sub": 0x29, "xor": 0x31, "cmp": 0x39, "mov": 0x89,
          "test": 0x85}
SHIFT_EXT = {"lsh": 4, "rsh": 5, "arsh": 7}
# condition code nibbles (jcc rel8 = 0x70 | cc, rel32 = 0x0f 0x80 | cc)
CC = {"jeq": 0x4, "jne": 0x5, "jgt": 0x7, "jge": 0x3, "jlt": 0x2, "jle": 0x6, "jsgt": 0xF,
      "jsge": 0xD, "jslt": 0xC, "jsle": 0xE, "jset": 0x5}


def fits8(v: int) -> bool:
    return -128 <= v <= 127


def fits32(v: int) -> bool:
    return -(1 << 31) <= v < (1 << 31)


class Buffer:
    """The code being emitted: bytes plus the positions of rel8/rel32 fields to patch."""

    def __init__(self) -> None:
        self.code = bytearray()

    @property
    def pos(self) -> int:
        return len(self.code)

    def b(self, *values: int) -> None:
        self.code += bytes(values)

    def i8(self, v: int) -> None:
        self.code += struct.pack("<b", v)

    def i16(self, v: int) -> None:
        self.code += struct.pack("<H", v & 0xFFFF)

    def i32(self, v: int) -> None:
        self.code += struct.pack("<i", v)

    def u64(self, v: int) -> None:
        self.code += struct.pack("<Q", v & (1 << 64) - 1)

    def patch8(self, at: int, target: int) -> None:
        """Make the rel8 field ending the instruction at `at` (field position) jump to `target`."""
        rel = target - (at + 1)
        assert fits8(rel), "short jump out of range"
        self.code[at] = rel & 0xFF

    def patch32(self, at: int, target: int) -> None:
        struct.pack_into("<i", self.code, at, target - (at + 4))


# ---------------------------------------------------------------- encoding pieces

def _rex(buf: Buffer, w: bool, reg: int, rm: int, force: bool = False) -> None:
    v = 0x40 | (8 if w else 0) | (4 if reg & 8 else 0) | (1 if rm & 8 else 0)
    if v != 0x40 or force:
        buf.b(v)


def _modrm_rr(buf: Buffer, reg: int, rm: int) -> None:
    buf.b(0xC0 | (reg & 7) << 3 | (rm & 7))


def _modrm_mem(buf: Buffer, reg: int, base: int, disp: int) -> None:
    """[base + disp]: disp8 when it fits (rbp/r13 always need one), SIB for rsp/r12."""
    if disp == 0 and base & 7 != RBP:
        mod = 0
    elif fits8(disp):
        mod = 1
    else:
        mod = 2
    buf.b(mod << 6 | (reg & 7) << 3 | (base & 7))
    if base & 7 == RSP:
        buf.b(0x24)
    if mod == 1:
        buf.i8(disp)
    elif mod == 2:
        buf.i32(disp)


def _op_rr(buf: Buffer, w: bool, opcode: bytes, reg: int, rm: int, force: bool = False) -> None:
    _rex(buf, w, reg, rm, force)
    buf.code += opcode
    _modrm_rr(buf, reg, rm)


def _op_mem(buf: Buffer, w: bool, opcode: bytes, reg: int, base: int, disp: int, force: bool = False,
            prefix: bytes = b"") -> None:
    buf.code += prefix
    _rex(buf, w, reg, base, force)
    buf.code += opcode
    _modrm_mem(buf, reg, base, disp)


# ---------------------------------------------------------------- register forms

def emit_alu_rr(buf: Buffer, op: str, w: bool, dst: int, src: int) -> None:
    """dst OP= src for add/sub/or/and/xor/cmp/test/mov."""
    _op_rr(buf, w, bytes([ALU_RR[op]]), src, dst)


def emit_alu_ri(buf: Buffer, op: str, w: bool, dst: int, imm: int) -> None:
    """dst OP= imm32 (sign-extended in the 64-bit form): 0x83 ib when it fits, else 0x81 id."""
    if fits8(imm):
        _op_rr(buf, w, b"\x83", ALU_EXT[op], dst)
        buf.i8(imm)
    else:
        _op_rr(buf, w, b"\x81", ALU_EXT[op], dst)
        buf.i32(imm)


def emit_test_ri(buf: Buffer, w: bool, dst: int, imm: int) -> None:
    _op_rr(buf, w, b"\xf7", 0, dst)
    buf.i32(imm)


def emit_mov_rr(buf: Buffer, w: bool, dst: int, src: int) -> None:
    emit_alu_rr(buf, "mov", w, dst, src)


def emit_mov_imm32(buf: Buffer, w: bool, dst: int, imm: int) -> None:
    """dst = imm32 (64-bit form sign-extends); 0 is `xor r32, r32` as in the Linux JIT."""
    if imm == 0:
        emit_alu_rr(buf, "xor", False, dst, dst)
    elif w and imm < 0:
        _op_rr(buf, True, b"\xc7", 0, dst)
        buf.i32(imm)
    else:
        _rex(buf, False, 0, dst)
        buf.b(0xB8 | (dst & 7))
        buf.i32(imm if imm < (1 << 31) else imm - (1 << 32))


def emit_mov_imm64(buf: Buffer, dst: int, value: int) -> None:
    """dst = 64-bit constant: the shortest of the imm32 forms, else movabs."""
    value &= (1 << 64) - 1
    if value < (1 << 32):
        emit_mov_imm32(buf, False, dst, value)
    elif value >= (1 << 64) - (1 << 31):
        emit_mov_imm32(buf, True, dst, value - (1 << 64))
    else:
        _rex(buf, True, 0, dst)
        buf.b(0xB8 | (dst & 7))
        buf.u64(value)


def emit_imul_rr(buf: Buffer, w: bool, dst: int, src: int) -> None:
    _op_rr(buf, w, b"\x0f\xaf", dst, src)


def emit_imul_ri(buf: Buffer, w: bool, dst: int, imm: int) -> None:
    if fits8(imm):
        _op_rr(buf, w, b"\x6b", dst, dst)
        buf.i8(imm)
    else:
        _op_rr(buf, w, b"\x69", dst, dst)
        buf.i32(imm)


def emit_shift_ri(buf: Buffer, op: str, w: bool, dst: int, count: int) -> None:
    if count == 1:
        _op_rr(buf, w, b"\xd1", SHIFT_EXT[op], dst)
    else:
        _op_rr(buf, w, b"\xc1", SHIFT_EXT[op], dst)
        buf.b(count)


def emit_shift_cl(buf: Buffer, op: str, w: bool, dst: int) -> None:
    _op_rr(buf, w, b"\xd3", SHIFT_EXT[op], dst)


def emit_neg(buf: Buffer, w: bool, dst: int) -> None:
    _op_rr(buf, w, b"\xf7", 3, dst)


def emit_div(buf: Buffer, w: bool, signed: bool, src: int) -> None:
    """rdx:rax / src (div or idiv)."""
    _op_rr(buf, w, b"\xf7", 7 if signed else 6, src)


def emit_sign_extend_rax(buf: Buffer, w: bool) -> None:
    """cqo / cdq: rdx = the sign of rax."""
    if w:
        buf.b(0x48)
    buf.b(0x99)


def emit_bswap(buf: Buffer, w: bool, dst: int) -> None:
    _rex(buf, w, 0, dst)
    buf.b(0x0F, 0xC8 | (dst & 7))


def emit_rol16_8(buf: Buffer, dst: int) -> None:
    """rol r16, 8: swap the two low bytes."""
    buf.b(0x66)
    _op_rr(buf, False, b"\xc1", 0, dst)
    buf.b(8)


def emit_movzx_rr(buf: Buffer, dst: int, src: int, bits: int) -> None:
    """dst = zero-extended low 8/16 bits of src (byte registers need a REX for sil/dil...)."""
    _op_rr(buf, False, b"\x0f\xb6" if bits == 8 else b"\x0f\xb7", dst, src, force=bits == 8 and src >= 4)


def emit_movsx_rr(buf: Buffer, w: bool, dst: int, src: int, bits: int) -> None:
    """dst = sign-extended low 8/16/32 bits of src (to 32 or 64 bits)."""
    if bits == 32:
        _op_rr(buf, True, b"\x63", dst, src)
    else:
        _op_rr(buf, w, b"\x0f\xbe" if bits == 8 else b"\x0f\xbf", dst, src, force=bits == 8 and src >= 4)


# ---------------------------------------------------------------- memory forms

def emit_ldx(buf: Buffer, size: int, dst: int, base: int, off: int) -> None:
    """dst = zero-extended *(size *)(base + off)."""
    if size == 1:
        _op_mem(buf, False, b"\x0f\xb6", dst, base, off)
    elif size == 2:
        _op_mem(buf, False, b"\x0f\xb7", dst, base, off)
    else:
        _op_mem(buf, size == 8, b"\x8b", dst, base, off)


def emit_ldsx(buf: Buffer, size: int, dst: int, base: int, off: int) -> None:
    """dst = sign-extended *(size *)(base + off) (movsx / movsxd to 64 bits)."""
    opcode = {1: b"\x0f\xbe", 2: b"\x0f\xbf", 4: b"\x63"}[size]
    _op_mem(buf, True, opcode, dst, base, off)


def emit_stx(buf: Buffer, size: int, base: int, off: int, src: int) -> None:
    if size == 1:
        _op_mem(buf, False, b"\x88", src, base, off, force=src >= 4)
    elif size == 2:
        _op_mem(buf, False, b"\x89", src, base, off, prefix=b"\x66")
    else:
        _op_mem(buf, size == 8, b"\x89", src, base, off)


def emit_st_imm(buf: Buffer, size: int, base: int, off: int, imm: int) -> None:
    if size == 1:
        _op_mem(buf, False, b"\xc6", 0, base, off)
        buf.b(imm & 0xFF)
    elif size == 2:
        _op_mem(buf, False, b"\xc7", 0, base, off, prefix=b"\x66")
        buf.i16(imm)
    else:
        _op_mem(buf, size == 8, b"\xc7", 0, base, off)
        buf.i32(imm)


def emit_lock_alu(buf: Buffer, op: str, size: int, base: int, off: int, src: int) -> None:
    """lock add/or/and/xor [base + off], src."""
    _op_mem(buf, size == 8, bytes([ALU_RR[op]]), src, base, off, prefix=b"\xf0")


def emit_lock_xadd(buf: Buffer, size: int, base: int, off: int, src: int) -> None:
    _op_mem(buf, size == 8, b"\x0f\xc1", src, base, off, prefix=b"\xf0")


def emit_xchg(buf: Buffer, size: int, base: int, off: int, src: int) -> None:
    """xchg [base + off], src (locked by the architecture)."""
    _op_mem(buf, size == 8, b"\x87", src, base, off)


def emit_lock_cmpxchg(buf: Buffer, size: int, base: int, off: int, src: int) -> None:
    _op_mem(buf, size == 8, b"\x0f\xb1", src, base, off, prefix=b"\xf0")


# ---------------------------------------------------------------- control

def emit_push(buf: Buffer, reg: int) -> None:
    _rex(buf, False, 0, reg)
    buf.b(0x50 | (reg & 7))


def emit_pop(buf: Buffer, reg: int) -> None:
    _rex(buf, False, 0, reg)
    buf.b(0x58 | (reg & 7))


NOP5 = (0x0F, 0x1F, 0x44, 0x00, 0x00)   # the kernel's patch site for the BPF trampoline
NOP3 = (0x0F, 0x1F, 0x00)               # where the kernel zeroes the tail-call counter


def emit_nop(buf: Buffer, nop: tuple[int, ...]) -> None:
    buf.b(*nop)


def emit_ret(buf: Buffer) -> None:
    buf.b(0xC3)


def emit_jmp(buf: Buffer, target: int, short: bool) -> int:
    """jmp to the code offset `target` (patched later if not yet known); returns the field's position."""
    if short:
        buf.b(0xEB)
        at = buf.pos
        buf.b(0)
        if target is not None:
            buf.patch8(at, target)
    else:
        buf.b(0xE9)
        at = buf.pos
        buf.i32(0)
        if target is not None:
            buf.patch32(at, target)
    return at


def emit_jcc(buf: Buffer, cc: int, target, short: bool) -> int:
    if short:
        buf.b(0x70 | cc)
        at = buf.pos
        buf.b(0)
        if target is not None:
            buf.patch8(at, target)
    else:
        buf.b(0x0F, 0x80 | cc)
        at = buf.pos
        buf.i32(0)
        if target is not None:
            buf.patch32(at, target)
    return at


def emit_call(buf: Buffer, target: int) -> None:
    """call rel32 to the code offset `target` (relative to the same buffer origin)."""
    buf.b(0xE8)
    at = buf.pos
    buf.i32(0)
    buf.patch32(at, target)
