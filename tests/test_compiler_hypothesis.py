"""Generated programs: compiled for Sephirot they behave as the interpreter says, for every
packet length around their bounds checks; the schedule passes check_schedule.

Programs are verifier-shaped: a packet bounds check guards every packet access (a second,
longer one guards the rest), all scalar registers start initialised, the stack is
written before it is read, branches go forward."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from compiler_util import assert_equivalent  # noqa: E402

from hxdpc.compiler import CompileOptions, compile_program
from hxdpc.passes.check import check_schedule
from isa.asm import assemble_program

SCALARS = [0, 3, 4, 5, 7, 8, 9]           # r6 = data, r2 = data_end, r1 = ctx, r10 = stack
ALU = ["+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "/=", "%="]
JMP = ["==", "!=", ">", ">=", "<", "<=", "s>", "s<", "&"]


@st.composite
def insn(draw, limit: int, slots: list[int]):
    kind = draw(st.sampled_from(["alu", "alu", "mov", "three", "load", "store", "stack", "zero", "ldst"]))
    d = draw(st.sampled_from(SCALARS))
    s = draw(st.sampled_from(SCALARS))
    w = draw(st.sampled_from(["r", "w"]))
    if kind == "alu":
        op = draw(st.sampled_from(ALU))
        if op in ("<<=", ">>=", "s>>="):
            return [f"{w}{d} {op} {draw(st.integers(0, 31))}"]
        opnd = f"{w}{s}" if draw(st.booleans()) else str(draw(st.integers(-2**31, 2**31 - 1)))
        return [f"{w}{d} {op} {opnd}"]
    if kind == "mov":
        return [f"{w}{d} = {draw(st.integers(-2**31, 2**31 - 1))}" if draw(st.booleans()) else f"{w}{d} = {w}{s}"]
    if kind == "three":
        return [f"r{d} = r{s}", f"r{d} += {draw(st.integers(-100, 100))}"]
    size = draw(st.sampled_from([1, 2, 4]))
    off = draw(st.integers(0, limit - size))
    if kind == "load":
        return [f"r{d} = *(u{8 * size} *)(r6 + {off})"]
    if kind == "store":
        return [f"*(u{8 * size} *)(r6 + {off}) = r{s}"]
    if kind == "ldst":     # a 4+2 byte copy (48-bit candidate)
        a, b = draw(st.integers(0, limit - 6)), draw(st.integers(0, limit - 6))
        return [f"r{d} = *(u32 *)(r6 + {a})", f"r{s} = *(u16 *)(r6 + {a + 4})",
                f"*(u32 *)(r6 + {b}) = r{d}", f"*(u16 *)(r6 + {b + 4}) = r{s}"]
    slot = draw(st.sampled_from(slots))
    if kind == "zero":
        return [f"*(u64 *)(r10 - {slot}) = 0"]
    return [f"r{d} = *(u64 *)(r10 - {slot})"] if draw(st.booleans()) else [f"*(u64 *)(r10 - {slot}) = r{s}"]


@st.composite
def programs(draw):
    n1 = draw(st.integers(14, 40))
    n2 = n1 + draw(st.integers(0, 30))
    fail = draw(st.sampled_from([1, 2]))
    slots = [8, 16, 24]
    lines = ["r2 = *(u32 *)(r1 + 4)", "r6 = *(u32 *)(r1 + 0)"]
    lines += [f"r{r} = {draw(st.integers(-5, 5))}" for r in SCALARS]
    lines += [f"*(u64 *)(r10 - {s}) = {draw(st.integers(0, 3))}" for s in slots]
    form = draw(st.sampled_from(["{a} > r2 goto fail", "r2 < {a} goto fail"]))
    lines += ["r8 = r6", f"r8 += {n1}", "if " + form.format(a="r8")]
    body = []
    for _ in range(draw(st.integers(1, 14))):
        body.append(draw(insn(n1, slots)))
    # a second bounds check in the middle, guarding a longer stretch
    mid = len(body) // 2
    body.insert(mid, [f"r9 = r6", f"r9 += {n2}", "if r9 > r2 goto fail"])
    # forward branches over parts of the body
    labels = []
    for k in range(len(body)):
        if draw(st.integers(0, 4)) == 0 and k + 1 < len(body):
            tgt = draw(st.integers(k + 1, len(body)))
            r = draw(st.sampled_from(SCALARS))
            body[k] = body[k] + [f"if r{r} {draw(st.sampled_from(JMP))} {draw(st.integers(-3, 3))} goto L{tgt}"]
            labels.append(tgt)
    for k, chunk in enumerate(body):
        if k in labels:
            lines.append(f"L{k}:")
        lines += chunk
    if len(body) in labels:
        lines.append(f"L{len(body)}:")
    end = draw(st.sampled_from(["r0 &= 3", "r0 = 3", "r0 = 2"]))
    lines += [end, "exit", "fail:", f"r0 = {fail}", "exit"]
    return "\n".join(lines) + "\n", n1, n2


@settings(max_examples=int(os.environ.get("HXDP_HYPOTHESIS_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from([2, 3, 4, 8]), st.sampled_from([None] + [
    "bounds_removal", "zero_removal", "three_operand", "load48", "param_exit", "code_motion"]))
def test_generated_programs_equivalent(prog, lanes, off):
    text, n1, n2 = prog
    p = assemble_program(text)
    opts = CompileOptions(lanes=lanes, depth=1024)
    if off:
        opts = dataclasses.replace(opts, **{off: False})
    img = compile_program(p, opts).image
    assert check_schedule(img) == []
    lengths = sorted({14, n1 - 1, n1, n1 + 1, n2 - 1, n2, n2 + 1, 80})
    packets = [bytes((i * 37 + 11) & 0xFF for i in range(n)) for n in lengths if n >= 14]
    assert_equivalent(p, packets, opts)
