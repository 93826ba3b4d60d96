"""The instruction table, encoding and the semantics functions every executor shares."""
import pytest
from hypothesis import given, strategies as st

from isa.insn import DecodeError, Insn, decode, decode_word, encode, encode_word, branch_target
from isa.opcodes import BY_KEY, TABLE, Kind, lookup
from isa.semantics import alu, atomic, bswap, endian, jump_taken, movsx, sext

M64 = (1 << 64) - 1


def test_every_row_is_found_by_its_own_fields():
    for spec in TABLE:
        f = {"off": 0, "imm": 0, "src": 0}
        if spec.variant_field:
            f[spec.variant_field] = spec.variant
        assert lookup(spec.opcode, **f) is spec, spec.key


def test_rfc9669_collisions_are_not_extensions():
    # 0xd7 is RFC 9669's bswap, not the artifact's 3-operand sub
    assert lookup(0xD7, imm=16).key == "bswap16"
    assert all(not s.extension for s in TABLE if s.opcode in (0x07, 0x17, 0xD7, 0x95))
    assert lookup(0x96).kind == Kind.PEXIT
    assert lookup(0x59).kind == Kind.LDX48 and lookup(0x5A).kind == Kind.STX48


def test_invalid_encodings_are_rejected_with_slot():
    with pytest.raises(DecodeError, match="slot 1"):
        decode(encode([Insn(0xB7, 0, 0, 0, 1)]) + bytes([0xFF] + [0] * 7))
    with pytest.raises(DecodeError, match="missing its second slot"):
        decode(encode([Insn(0x18, 1, 0, 0, 5)])[:8])
    with pytest.raises(DecodeError, match="not a multiple of 8"):
        decode(b"\x95\0\0")
    with pytest.raises(DecodeError, match="register"):
        decode(encode([Insn(0xB7, 11, 0, 0, 1)]))


@given(st.sampled_from(TABLE), st.integers(0, 10), st.integers(0, 10), st.integers(-(1 << 15), (1 << 15) - 1),
       st.integers(-(1 << 31), (1 << 31) - 1), st.integers(0, M64))
def test_encode_decode_roundtrip(spec, dst, src, off, imm, imm64):
    fields = {"off": off, "imm": imm, "src": src}
    if spec.variant_field:
        fields[spec.variant_field] = spec.variant
    i = Insn(spec.opcode, dst, fields["src"], fields["off"], imm64 if spec.kind == Kind.LDDW else fields["imm"])
    assert decode(encode([i])) == [i]
    if i.slots == 1:
        assert decode_word(encode_word(i)) == i


def test_artifact_word_layout():
    # XDP_DROP.bin row 0: lane 1 `r0 = 1` = 00000001000000b7, lane 0 `exit` = ...95
    assert encode_word(Insn(0xB7, 0, 0, 0, 1)) == 0x00000001000000B7
    assert decode_word(0x0000000100000096) == Insn(0x96, 0, 0, 0, 1)


def test_alu_semantics_corners():
    assert alu("div", 7, 0, 64) == 0
    assert alu("mod", 7, 0, 64) == 7
    assert alu("sdiv", (-(1 << 63)) & M64, M64, 64) == 1 << 63        # INT_MIN / -1 wraps
    assert alu("smod", (-(1 << 63)) & M64, M64, 64) == 0
    assert alu("smod", (-7) & M64, 2, 64) == (-1) & M64               # sign of the dividend
    assert alu("sdiv", (-7) & 0xFFFFFFFF, 2, 32) == (-3) & 0xFFFFFFFF
    assert alu("lsh", 1, 65, 64) == 2                                  # shift masked to width
    assert alu("lsh", 1, 33, 32) == 2
    assert alu("arsh", 0x80000000, 4, 32) == 0xF8000000
    assert alu("add", 0xFFFFFFFF, 1, 32) == 0                          # 32-bit ops zero-extend
    assert alu("div", M64, (-1) & M64, 64) == 1


def test_jump_and_misc_semantics():
    assert jump_taken("jsgt", 1, M64, 64)
    assert not jump_taken("jgt", 1, M64, 64)
    assert jump_taken("jslt", 0x80000000, 0, 32)
    assert jump_taken("jset", 0x100000000, 0x100000000, 64) and not jump_taken("jset", 0x100000000, 0x100000000, 32)
    assert movsx(0x80, 8, 64) == 0xFFFFFFFFFFFFFF80 and movsx(0x80, 8, 32) == 0xFFFFFF80
    assert sext(0xFFFF, 16) == -1
    assert bswap(0x1122, 16) == 0x2211 and endian("le", 0x112233, 16) == 0x2233
    assert endian("be", 0x1122334455667788, 64) == 0x8877665544332211
    assert atomic("fetch_add", 1, 41, 0, 32) == (42, 1, None)
    assert atomic("cmpxchg", 5, 9, 5, 64) == (9, None, 5)
    assert atomic("cmpxchg", 5, 9, 4, 64) == (5, None, 5)
    assert atomic("xchg", 5, 9, 0, 64) == (9, 5, None)


def test_branch_target_counts_lddw_as_two_slots():
    prog = [Insn(0x05, off=2), Insn(0x18, 1, 0, 0, 7), Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]
    assert branch_target(prog, 0) == 2   # slot 3 is the third instruction
    assert BY_KEY["ja"].kind == Kind.JA
