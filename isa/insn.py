"""Instructions as data, their 8-byte encoding (RFC 9669 section 3, little-endian host),
and the facts every analysis and executor needs about one instruction.

An ``Insn`` is one instruction; ``lddw`` is one ``Insn`` covering two 8-byte slots, its
``imm`` holding the whole 64-bit constant (unsigned).  Jump and call offsets stay as
encoded (counted in slots), so encoding a decoded program gives back the same bytes.

Facts (applied from the ISA table's fields, never from opcode bits): ``reads(insn)`` and
``writes(insn)`` (registers), ``mem_access(insn)`` (base register, offset, size, sign,
load/store), ``target(insn, pc)`` (the code an instruction refers to), ``falls_through``,
``three_operand_reg`` (the register an hXDP three-operand instruction takes in imm).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Iterable, Optional

from isa.opcodes import BY_KEY, NREGS, OP_LDDW, OP_NOP, Kind, OpSpec, lookup
from isa.semantics import sext

_WORD = struct.Struct("<BBhi")


class DecodeError(ValueError):
    """A byte string that is not a valid instruction sequence (names the slot)."""

    def __init__(self, slot: int, reason: str):
        super().__init__(f"slot {slot} (byte offset {slot * 8}): {reason}")
        self.slot = slot
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Insn:
    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0       # signed 16-bit
    imm: int = 0       # signed 32-bit; for lddw the full 64-bit value, unsigned

    @property
    def spec(self) -> OpSpec:
        s = lookup(self.opcode, self.off, self.imm, self.src)
        if s is None:
            raise ValueError(f"invalid instruction {self!r}")
        return s

    @property
    def slots(self) -> int:
        """8-byte words: the lddw opcode takes two whatever its src (the encoding's rule)."""
        return 2 if self.opcode == OP_LDDW else 1

    def with_(self, **kw) -> "Insn":
        return replace(self, **kw)


def spec_or_none(insn: Insn) -> Optional[OpSpec]:
    return lookup(insn.opcode, insn.off, insn.imm, insn.src)


def _word(opcode: int, dst: int, src: int, off: int, imm: int) -> bytes:
    return _WORD.pack(opcode, (src << 4) | dst, off, imm)


def encode(insns: Iterable[Insn]) -> bytes:
    """Bytes of a sequence of instructions (lddw takes 16 bytes)."""
    out = bytearray()
    for i in insns:
        if i.opcode == OP_LDDW:
            v = i.imm & 0xFFFFFFFFFFFFFFFF
            lo = v & 0xFFFFFFFF
            hi = v >> 32
            out += _word(i.opcode, i.dst, i.src, i.off, lo - (1 << 32) if lo >> 31 else lo)
            out += _word(0, 0, 0, 0, hi - (1 << 32) if hi >> 31 else hi)
        else:
            imm = i.imm & 0xFFFFFFFF
            out += _word(i.opcode, i.dst, i.src, i.off, imm - (1 << 32) if imm >> 31 else imm)
    return bytes(out)


def encode_word(i: Insn) -> int:
    """The 64-bit value of a one-slot instruction as the hXDP images write it:
    imm << 32 | (off & 0xffff) << 16 | src << 12 | dst << 8 | opcode."""
    return ((i.imm & 0xFFFFFFFF) << 32) | ((i.off & 0xFFFF) << 16) | (i.src << 12) | (i.dst << 8) | i.opcode


def decode_word(w: int) -> Insn:
    imm = (w >> 32) & 0xFFFFFFFF
    off = (w >> 16) & 0xFFFF
    return Insn(opcode=w & 0xFF, dst=(w >> 8) & 0xF, src=(w >> 12) & 0xF,
                off=off - 0x10000 if off >> 15 else off, imm=imm - (1 << 32) if imm >> 31 else imm)


def decode(data: bytes, *, strict: bool = True) -> list[Insn]:
    """Decode bytes into instructions.  With `strict`, unknown opcodes, bad registers and a
    truncated ``lddw`` raise DecodeError naming the slot."""
    if len(data) % 8:
        raise DecodeError(len(data) // 8, f"length {len(data)} is not a multiple of 8")
    out: list[Insn] = []
    n = len(data) // 8
    slot = 0
    while slot < n:
        opcode, regs, off, imm = _WORD.unpack_from(data, slot * 8)
        dst, src = regs & 0xF, regs >> 4
        if opcode == OP_LDDW:
            if slot + 1 >= n:
                raise DecodeError(slot, "lddw is missing its second slot")
                # (never reached)
            op2, regs2, off2, imm2 = _WORD.unpack_from(data, slot * 8 + 8)
            if strict and (op2 or regs2 or off2):
                raise DecodeError(slot + 1, "second slot of lddw must be zero except imm")
            imm = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
            insn = Insn(opcode, dst, src, off, imm)
            slot += 2
        else:
            insn = Insn(opcode, dst, src, off, imm)
            slot += 1
        if strict:
            check(insn, slot - insn.slots)
        out.append(insn)
    return out


def check(insn: Insn, slot: int = 0) -> OpSpec:
    """The spec of a valid instruction, or DecodeError with the reason it is not valid."""
    spec = spec_or_none(insn)
    if spec is None:
        raise DecodeError(slot, f"unknown opcode 0x{insn.opcode:02x} (off={insn.off}, imm={insn.imm}, src={insn.src})")
    if insn.dst > 10 or insn.src > 10:
        raise DecodeError(slot, f"register out of range (dst=r{insn.dst}, src=r{insn.src})")
    return spec


def is_high_word(insn: Insn) -> bool:
    """Whether the word can be the second slot of an lddw: all zero but imm."""
    return insn.opcode == OP_NOP and not (insn.dst or insn.src or insn.off)


def make(key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """The instruction of the ISA table row `key` ("mov64_k", "ja", "ldxdw"...), its
    variant field set from the row."""
    spec = BY_KEY[key]
    fields = dict(dst=dst, src=src, off=off, imm=imm)
    if spec.variant_field:
        fields[spec.variant_field] = spec.variant
    return Insn(spec.opcode, **fields)


# ---- facts about one instruction (from the table's fields, see isa.opcodes.OpSpec) ----

@dataclass(frozen=True, slots=True)
class MemAccess:
    """The memory an instruction touches: [reg base + off, + size)."""
    base: int
    off: int
    size: int
    load: bool           # reads memory (loads, atomics)
    store: bool          # writes memory (stores, atomics)
    signed: bool = False  # the loaded value is sign-extended


def _spec(insn: Insn) -> OpSpec:
    return insn.spec


def three_operand_reg(insn: Insn) -> Optional[int]:
    """The register an hXDP three-operand instruction names in imm (None: imm is a constant)."""
    return insn.imm if _spec(insn).imm_reg else None


def _registers(implicit, *fields: tuple[bool, int]) -> frozenset[int]:
    """The implicit registers plus each field's register where the table's flag says so."""
    return frozenset(implicit).union(reg for used, reg in fields if used)


def reads(insn: Insn) -> frozenset[int]:
    """Registers the instruction reads."""
    s = _spec(insn)
    return _registers(s.implicit_reads, (s.reads_dst, insn.dst), (s.reg_src, insn.src),
                      (s.imm_reg, insn.imm))


def writes(insn: Insn) -> frozenset[int]:
    """Registers the instruction writes (a helper call: r0; r1-r5 become unreadable)."""
    s = _spec(insn)
    return _registers(s.implicit_writes, (s.writes_dst, insn.dst), (s.writes_src, insn.src))


def mem_access(insn: Insn) -> Optional[MemAccess]:
    """The memory the instruction reads or writes, None if it touches none itself (helper
    calls touch memory through their arguments: not an access of the instruction)."""
    s = _spec(insn)
    if not s.access:
        return None
    base = insn.src if s.access == "load" else insn.dst
    return MemAccess(base, insn.off, s.size, s.access != "store", s.access != "load", s.signed)


def falls_through(insn: Insn) -> bool:
    """Whether control may go on at the next instruction (calls return there)."""
    return _spec(insn).falls_through


def target(insn: Insn, pc: int) -> Optional[int]:
    """The position of the code the instruction refers to (jump target, local callee,
    function address of ``lddw src 4``), or None.  Positions count in the caller's units:
    slots in a program, rows in an hXDP image (offsets are relative to pc + 1)."""
    s = _spec(insn)
    if s.target_field == "off":
        return pc + 1 + insn.off
    if s.target_field == "imm":
        return pc + 1 + sext(insn.imm, 32)
    return None


def slot_offsets(insns: list[Insn]) -> list[int]:
    """Slot index of each instruction (lddw counts 2)."""
    out, s = [], 0
    for i in insns:
        out.append(s)
        s += i.slots
    return out


def branch_target(insns: list[Insn], index: int, slots: Optional[list[int]] = None) -> Optional[int]:
    """Index of the instruction a jump or local call at `index` goes to, or None."""
    i = insns[index]
    spec = spec_or_none(i)
    if spec is None or spec.kind not in (Kind.JA, Kind.JCOND, Kind.CALL_LOCAL):
        return None
    slots = slots if slots is not None else slot_offsets(insns)
    try:
        return slots.index(target(i, slots[index]))
    except ValueError:
        return None


def invalid_reason(ins: Insn, spec: Optional[OpSpec]) -> str:
    """Why an instruction cannot run on any executor ('' if it can): no table entry, or a
    register field outside r0-r10 (the one validity check every executor reports alike)."""
    if spec is None:
        return (f"invalid instruction (opcode 0x{ins.opcode:02x}, src={ins.src}, off={ins.off}, "
                f"imm={ins.imm})")
    if not (0 <= ins.dst < NREGS and 0 <= ins.src < NREGS):
        return f"invalid register (dst=r{ins.dst}, src=r{ins.src})"
    if spec.imm_reg and not 0 <= ins.imm < NREGS:
        return f"invalid register r{ins.imm} in a three-operand instruction"
    return ""
