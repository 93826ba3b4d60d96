"""isa.semantics: every expression template the code generators paste evaluates to what the
semantics function the interpreter calls gives, for random operands over every variant of
the ISA table (constant and register operands, both widths)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.opcodes import M32, M64, TABLE, Kind
from isa.semantics import (KIND_SEMANTICS, TEMPLATE_GLOBALS, alu, atomic, atomic_base,
                           endian, jump_taken, movsx, neg, sext, sext_load_expr)

EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, M32, M32 + 1,
         1 << 63, (1 << 63) - 1, M64, M64 - 1]
u64 = st.one_of(st.sampled_from(EDGES), st.integers(0, M64))

# every variant a KindSemantics covers (xchg/cmpxchg have no template: they call atomic())
SPECS = [s for s in TABLE if s.kind in KIND_SEMANTICS
         and not (s.kind == Kind.ATOMIC and not atomic_base(s.op))]


def _eval(expr: str, **regs) -> int:
    return eval(expr, dict(TEMPLATE_GLOBALS), regs)


def test_every_register_kind_has_one_definition():
    kinds = {s.kind for s in TABLE}
    pure = {Kind.ALU, Kind.MOV, Kind.ALU3, Kind.JCOND, Kind.NEG, Kind.MOVSX, Kind.END, Kind.ATOMIC}
    assert pure <= kinds and set(KIND_SEMANTICS) == pure
    assert len(SPECS) > 100     # the table's variants, not a handful


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
@settings(max_examples=25)
@given(a=u64, b=u64)
def test_template_matches_semantics_function(spec, a, b):
    ks = KIND_SEMANTICS[spec.kind]
    if spec.kind == Kind.ATOMIC:       # old memory value: as wide as the access
        a &= (1 << spec.width) - 1
    want = ks.evaluate(spec, a, b)
    got = _eval(ks.template(spec, "a", "b", None), a=a, b=b)
    if spec.kind == Kind.JCOND:
        assert bool(got) == want
    else:
        assert got == want and 0 <= got <= M64
    # the constant-operand form: b is the literal, already truncated to the width
    bc = b & (M64 if spec.width == 64 else M32)
    got_c = _eval(ks.template(spec, "a", hex(bc), bc), a=a)
    assert (bool(got_c) if spec.kind == Kind.JCOND else got_c) == ks.evaluate(spec, a, bc)


def test_per_kind_functions_are_the_interpreters():
    """The evaluate side of KIND_SEMANTICS is the functions the interpreter calls."""
    spec = next(s for s in TABLE if s.key == "sdiv32_x")
    assert KIND_SEMANTICS[Kind.ALU].evaluate(spec, 0xFFFF_FFF9, 2) == alu("sdiv", 0xFFFF_FFF9, 2, 32) == 0xFFFF_FFFD
    spec = next(s for s in TABLE if s.key == "jsgt32_x")
    assert KIND_SEMANTICS[Kind.JCOND].evaluate(spec, 1, M32) == jump_taken("jsgt", 1, M32, 32) is True
    spec = next(s for s in TABLE if s.key == "movsx1664")
    assert KIND_SEMANTICS[Kind.MOVSX].evaluate(spec, 0x8000, 0) == movsx(0x8000, 16, 64) == M64 - 0x7FFF
    assert neg(1, 32) == M32 and endian("be", 0x1122, 16) == 0x2211
    assert atomic("cmpxchg", 5, 9, 5, 64) == (9, None, 5)


@settings(max_examples=200)
@given(v=u64, bits=st.sampled_from([8, 16, 32]))
def test_sign_extending_load_template(v, bits):
    v &= (1 << bits) - 1
    assert _eval(sext_load_expr(bits, "v"), v=v) == sext(v, bits) & M64


def test_alu3_register_form_is_decided_by_the_table():
    forms = {s.key: s.imm_reg for s in TABLE if s.kind == Kind.ALU3}
    assert forms["add643_x"] and forms["sub323_x"] and not forms["add643_k"] and not forms["mul323_k"]
