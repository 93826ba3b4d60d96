"""What each instruction kind computes, spelled once per kind in two forms.

Like the kernel's core.c (one table builds the interpreter and the checks), every pure
register operation of the ISA table has here:
- a *semantics function* (``alu``, ``jump_taken``, ``atomic``, ``endian``, ``movsx``,
  ``neg``) that the interpreter and Sephirot's row-by-row engine call, and
- an *expression template* (``alu_expr``, ``cond_expr``, ``neg_expr``, ``movsx_expr``,
  ``end_expr``, ``atomic_alu_expr``) that the code generators (the fast path,
  Sephirot's fast engine) paste into generated Python.

``KIND_SEMANTICS`` pairs the two per ``Kind``; tests/test_semantics.py checks that every
template, evaluated in ``TEMPLATE_GLOBALS``, gives what its function gives for random
operands over every variant of the table.  Operands and results are unsigned 64-bit
register values; 32-bit operations zero-extend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from isa.opcodes import ATOMIC_OPS, M32, M64, Kind, OpSpec

S64 = 1 << 63
S32 = 1 << 31


# ---------------------------------------------------------------- semantics functions

def sext(value: int, bits: int) -> int:
    """Sign-extend the low `bits` of value to a Python int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _alu(op: str, a: int, b: int, bits: int) -> int:
    """a OP b on `bits`-wide unsigned operands (already truncated); result truncated."""
    mask = (1 << bits) - 1
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    elif op == "div":
        r = a // b if b else 0
    elif op == "mod":
        r = a % b if b else a
    elif op == "sdiv":
        sa, sb = sext(a, bits), sext(b, bits)
        r = _tdiv(sa, sb) if sb else 0
    elif op == "smod":
        sa, sb = sext(a, bits), sext(b, bits)
        r = sa - sb * _tdiv(sa, sb) if sb else a
    elif op == "or":
        r = a | b
    elif op == "and":
        r = a & b
    elif op == "xor":
        r = a ^ b
    elif op == "lsh":
        r = a << (b & (bits - 1))
    elif op == "rsh":
        r = a >> (b & (bits - 1))
    elif op == "arsh":
        r = sext(a, bits) >> (b & (bits - 1))
    elif op == "mov":
        r = b
    else:
        raise ValueError(f"not an ALU op: {op}")
    return r & mask


def alu(op: str, a: int, b: int, bits: int) -> int:
    """Result of an ALU op as the 64-bit register value (32-bit ops zero-extend)."""
    mask = (1 << bits) - 1
    return _alu(op, a & mask, b & mask, bits)


def movsx(value: int, from_bits: int, bits: int) -> int:
    return sext(value, from_bits) & ((1 << bits) - 1)


def neg(value: int, bits: int) -> int:
    return -value & ((1 << bits) - 1)


def bswap(value: int, bits: int) -> int:
    return int.from_bytes((value & ((1 << bits) - 1)).to_bytes(bits // 8, "little"), "big")


def endian(op: str, value: int, bits: int) -> int:
    """le/be/bswap on a little-endian machine (the kernel's test hosts and ours)."""
    if op == "le":
        return value & ((1 << bits) - 1)
    return bswap(value, bits)


def jump_taken(op: str, a: int, b: int, bits: int) -> bool:
    """Condition of a conditional jump on `bits`-wide operands."""
    m = (1 << bits) - 1
    a &= m
    b &= m
    if op == "jeq":
        return a == b
    if op == "jne":
        return a != b
    if op == "jgt":
        return a > b
    if op == "jge":
        return a >= b
    if op == "jlt":
        return a < b
    if op == "jle":
        return a <= b
    if op == "jset":
        return bool(a & b)
    sa, sb = sext(a, bits), sext(b, bits)
    if op == "jsgt":
        return sa > sb
    if op == "jsge":
        return sa >= sb
    if op == "jslt":
        return sa < sb
    if op == "jsle":
        return sa <= sb
    raise ValueError(f"not a jump condition: {op}")


def atomic_base(op: str) -> str:
    """The ALU op of an atomic read-modify-write ('add' for 'fetch_add'), '' for xchg/cmpxchg."""
    base = op.removeprefix("fetch_")
    return base if base in ATOMIC_OPS else ""


def atomic_fetches(op: str) -> bool:
    """Whether the atomic op writes the old memory value to its src register."""
    return op.startswith("fetch_") or op == "xchg"


def atomic(op: str, old: int, src: int, r0: int, bits: int) -> tuple[int, Optional[int], Optional[int]]:
    """Atomic op on memory value `old`: returns (new memory value, new src reg or None, new r0 or None)."""
    m = (1 << bits) - 1
    base = atomic_base(op)
    if base:
        new = _alu(base, old & m, src & m, bits)
        return new, (old & m) if op.startswith("fetch_") else None, None
    if op == "xchg":
        return src & m, old & m, None
    if op == "cmpxchg":
        new = (src & m) if (r0 & m) == (old & m) else old & m
        return new, None, old & m
    raise ValueError(f"not an atomic op: {op}")


# ---------------------------------------------------------------- expression templates
# Each returns a Python expression over register names (strings); generated code sees
# TEMPLATE_GLOBALS.  `bconst` is the operand's value (truncated to the width) when the
# operand `b` is that constant's literal, else None.

TEMPLATE_GLOBALS = {"M64": M64, "M32": M32, "S64": S64, "S32": S32, "alu": alu}


def _hex(v: int) -> str:
    return hex(v)


def alu_expr(op: str, width: int, a: str, b: str, bconst: Optional[int]) -> str:
    """Python expression for `a OP b` as the new register value."""
    m = "M64" if width == 64 else "M32"
    sh = width - 1
    if width == 64:
        A = a
        Bw = b          # b masked to the width
    else:
        A = f"({a} & M32)"
        Bw = b if bconst is not None else f"({b} & M32)"
    if op == "add":
        return f"({a} + {b}) & {m}"
    if op == "sub":
        return f"({a} - {b}) & {m}"
    if op == "mul":
        return f"({a} * {b}) & {m}"
    if op == "or":
        return f"{a} | {b}" if width == 64 else f"({a} | {b}) & M32"
    if op == "and":
        return f"{a} & {b}" if width == 64 or bconst is not None else f"{a} & {b} & M32"
    if op == "xor":
        return f"{a} ^ {b}" if width == 64 else f"({a} ^ {b}) & M32"
    if op == "mov":
        return Bw
    if op in ("lsh", "rsh", "arsh"):
        k = str(bconst & sh) if bconst is not None else f"({b} & {sh})"
        if op == "lsh":
            return f"({a} << {k}) & {m}"
        if op == "rsh":
            return f"{A} >> {k}"
        sign = "S64" if width == 64 else "S32"
        return f"((({A} ^ {sign}) - {sign}) >> {k}) & {m}"
    if op == "div":
        if bconst is not None:
            return f"{A} // {b}" if bconst else "0"
        return f"({A} // {Bw} if {Bw} else 0)"
    if op == "mod":
        if bconst is not None:
            return f"{A} % {b}" if bconst else A
        return f"({A} % {Bw} if {Bw} else {A})"
    if op in ("sdiv", "smod"):      # rare: the semantics function itself
        return f"alu({op!r}, {a}, {b}, {width})"
    raise ValueError(f"not an ALU op: {op}")


_COND_SYM = {"jeq": "==", "jne": "!=", "jgt": ">", "jge": ">=", "jlt": "<", "jle": "<=",
             "jsgt": ">", "jsge": ">=", "jslt": "<", "jsle": "<="}


def cond_expr(op: str, width: int, a: str, b: str, bconst: Optional[int]) -> str:
    """Python expression true when a conditional jump is taken."""
    if width == 32:
        a = f"({a} & M32)"
        if bconst is None:
            b = f"({b} & M32)"
    if op == "jset":
        return f"{a} & {b}"
    if op not in _COND_SYM:
        raise ValueError(f"not a jump condition: {op}")
    if op.startswith("js"):
        sign = S64 if width == 64 else S32
        sname = "S64" if width == 64 else "S32"
        bb = _hex(bconst ^ sign) if bconst is not None else f"({b} ^ {sname})"
        return f"({a} ^ {sname}) {_COND_SYM[op]} {bb}"
    return f"{a} {_COND_SYM[op]} {b}"


def neg_expr(width: int, a: str) -> str:
    return f"-{a} & {'M64' if width == 64 else 'M32'}"


def movsx_expr(from_bits: int, width: int, a: str) -> str:
    """sext(a, from_bits) truncated to width, inline: flip the sign bit and subtract it."""
    sign = _hex(1 << (from_bits - 1))
    low = _hex((1 << from_bits) - 1)
    return f"((({a} & {low}) ^ {sign}) - {sign}) & {'M64' if width == 64 else 'M32'}"


def end_expr(op: str, width: int, a: str) -> str:
    """le/be/bswap of register `a` on a little-endian host."""
    if op == "le":
        return a if width == 64 else f"{a} & {_hex((1 << width) - 1)}"
    if width == 16:
        return f"(({a} & 0xff) << 8) | (({a} >> 8) & 0xff)"
    return f"int.from_bytes(({a} & {_hex((1 << width) - 1)}).to_bytes({width // 8}, 'little'), 'big')"


def atomic_alu_expr(op: str, width: int, old: str, src: str) -> str:
    """The new memory value of an add/or/and/xor atomic (with or without fetch)."""
    base = atomic_base(op)
    if not base:
        raise ValueError(f"not an arithmetic atomic op: {op}")
    return alu_expr(base, width, old, src, None)     # alu_expr masks as the width needs


def sext_load_expr(bits: int, v: str) -> str:
    """A `bits`-wide value loaded from memory, sign-extended to 64 bits (ldxs*)."""
    sign = _hex(1 << (bits - 1))
    return f"(({v} ^ {sign}) - {sign}) & M64"


# ---------------------------------------------------------------- one definition per kind

@dataclass(frozen=True)
class KindSemantics:
    """A pure register kind: its function and its template, both over (spec, a, b).

    `evaluate(spec, a, b)` -> the new value (JCOND: whether the jump is taken);
    `template(spec, a, b, bconst)` -> the same as a Python expression."""
    kind: Kind
    evaluate: Callable[[OpSpec, int, int], int]
    template: Callable[[OpSpec, str, str, Optional[int]], str]


KIND_SEMANTICS: dict[Kind, KindSemantics] = {k.kind: k for k in (
    KindSemantics(Kind.ALU, lambda s, a, b: alu(s.op, a, b, s.width),
                  lambda s, a, b, c: alu_expr(s.op, s.width, a, b, c)),
    KindSemantics(Kind.MOV, lambda s, a, b: alu(s.op, a, b, s.width),
                  lambda s, a, b, c: alu_expr(s.op, s.width, a, b, c)),
    KindSemantics(Kind.ALU3, lambda s, a, b: alu(s.op, a, b, s.width),
                  lambda s, a, b, c: alu_expr(s.op, s.width, a, b, c)),
    KindSemantics(Kind.JCOND, lambda s, a, b: jump_taken(s.op, a, b, s.width),
                  lambda s, a, b, c: cond_expr(s.op, s.width, a, b, c)),
    KindSemantics(Kind.NEG, lambda s, a, b: neg(a, s.width), lambda s, a, b, c: neg_expr(s.width, a)),
    KindSemantics(Kind.MOVSX, lambda s, a, b: movsx(a, s.variant, s.width),
                  lambda s, a, b, c: movsx_expr(s.variant, s.width, a)),
    KindSemantics(Kind.END, lambda s, a, b: endian(s.op, a, s.width),
                  lambda s, a, b, c: end_expr(s.op, s.width, a)),
    KindSemantics(Kind.ATOMIC, lambda s, a, b: atomic(s.op, a, b, 0, s.width)[0],
                  lambda s, a, b, c: atomic_alu_expr(s.op, s.width, a, b)),
)}
