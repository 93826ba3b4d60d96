"""Each compiler pass alone, on small programs (assembled with isa.asm)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from compiler_util import assert_equivalent  # noqa: E402

from hxdpc.compiler import CompileOptions, compile_program
from isa.errors import InputError
from hxdpc.passes.bounds import find_checks, remove_bounds_checks
from hxdpc.analysis.cfg import build_cfg, control_equivalent, dominators, post_dominators
from hxdpc.passes.check import check_schedule
from hxdpc.passes.extensions import load_store48, narrow_lddw, param_exit, three_operand
from hxdpc.passes.inline import inline_calls
from hxdpc.analysis.ir import Func, lift
from hxdpc.passes.rename import rename_registers
from hxdpc.passes.simplify import dead_code, simplify
from hxdpc.passes.zeroing import remove_zeroing
from isa.asm import assemble_program
from isa.image import Image
from isa.insn import Insn
from isa.opcodes import OP_ALU3_64_K, OP_ALU3_64_X, OP_LDX48, OP_PEXIT, OP_STX48, Kind
from isa.program import Function, Program

PROLOGUE = """
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
"""
PACKETS = [bytes(range(n)) for n in (14, 15, 20, 33, 34, 35, 60, 64, 100)]


def prog(text: str) -> Program:
    return assemble_program(text)


def func(text: str) -> Func:
    return simplify(lift(prog(text)))


def kinds(f: Func) -> list:
    return [o.kind for o in f.ops]


# ---- CFG ----

DIAMOND = """
r0 = 0
if r1 == 0 goto left
r0 = 2
goto join
left:
r0 = 3
join:
r0 += 1
exit
"""


def test_cfg_blocks_dominators_and_control_equivalence():
    cfg = build_cfg(lift(prog(DIAMOND)))
    assert len(cfg.blocks) == 4
    assert sorted(cfg.graph.edges) == [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert dominators(cfg)[3] == 0
    assert post_dominators(cfg)[0] == 3
    classes = control_equivalent(cfg)
    assert {0, 3} in classes and {1} in classes and {2} in classes


# ---- bounds checks ----

@pytest.mark.parametrize("check,length", [
    ("r3 = r1\nr3 += 34\nif r3 > r2 goto fail", 34),
    ("r3 = r1\nr3 += 34\nif r2 < r3 goto fail", 34),
    ("r3 = r1\nr3 += 33\nif r3 >= r2 goto fail", 34),
    ("r3 = r1\nr3 += 33\nif r2 <= r3 goto fail", 34),
    ("r3 = r1\nr3 += 34\nif r3 <= r2 goto ok\ngoto fail\nok:", 34),
    ("r3 = r1\nr3 += 34\nif r2 >= r3 goto ok\ngoto fail\nok:", 34),
])
def test_bounds_check_forms_are_removed_and_exact(check, length):
    text = PROLOGUE + check + "\nr0 = *(u8 *)(r1 + 33)\nexit\nfail:\nr0 = 1\nexit\n"
    f, n = remove_bounds_checks(func(text))
    assert n == 1
    assert [o.marker.length for o in f.ops if o.marker] == [length]
    assert [o.marker.action for o in f.ops if o.marker] == [1]
    assert not any(o.kind == Kind.JCOND for o in f.ops)
    p = prog(text)
    img = compile_program(p).image
    assert [(b.length, b.action) for b in img.bounds] == [(length, 1)]
    assert_equivalent(p, PACKETS)


def test_bounds_check_kept_when_failing_side_has_side_effects():
    text = PROLOGUE + """
r3 = r1
r3 += 34
if r3 > r2 goto fail
r0 = *(u8 *)(r1 + 33)
exit
fail:
*(u8 *)(r1 + 0) = 7
r0 = 1
exit
"""
    assert find_checks(func(text)) == []
    assert compile_program(prog(text)).image.bounds == []
    assert_equivalent(prog(text), PACKETS)


def test_bounds_check_kept_when_offset_is_not_constant_or_packet_moved():
    varying = PROLOGUE + """
r4 = *(u8 *)(r1 + 0)
r3 = r1
r3 += r4
if r3 > r2 goto fail
r0 = 2
exit
fail:
r0 = 1
exit
"""
    assert find_checks(func(varying)) == []
    after_call = PROLOGUE + """
r6 = r1
r7 = r2
r1 = 0
call 7
r3 = r6
r3 += 20
if r3 > r7 goto fail
r0 = 2
exit
fail:
r0 = 1
exit
"""
    assert find_checks(func(after_call)) == []


def test_bounds_check_keeps_side_effects_before_it_and_action_from_r0():
    text = PROLOGUE + """
r0 = 2
*(u8 *)(r1 + 0) = 9
r3 = r1
r3 += 40
if r3 > r2 goto out
*(u8 *)(r1 + 39) = 5
r0 = 3
out:
exit
"""
    f, n = remove_bounds_checks(func(text))
    assert n == 1 and [o.marker.action for o in f.ops if o.marker] == [2]
    assert_equivalent(prog(text), PACKETS)


# ---- zeroing ----

def test_zero_removal_registers_and_stack():
    text = """
r3 = 0
*(u64 *)(r10 - 8) = r3
*(u32 *)(r10 - 16) = 0
r4 = 5
*(u32 *)(r10 - 16) = r4
*(u32 *)(r10 - 16) = 0
r0 = *(u32 *)(r10 - 16)
r0 += *(u64 *)(r10 - 8)
exit
""".replace("r0 += *(u64 *)(r10 - 8)", "r5 = *(u64 *)(r10 - 8)\nr0 += r5")
    f, n = remove_zeroing(func(text))
    assert n == 3            # r3 = 0, the two first zero stores; the store after r4 stays
    stores = [o for o in f.ops if o.kind in (Kind.ST, Kind.STX)]
    assert len(stores) == 2
    assert_equivalent(prog(text), PACKETS[:2])


def test_zero_removal_respects_helpers_writing_the_stack():
    text = """
r6 = r1
r2 = r10
r2 += -8
r1 = 0
call 1
*(u64 *)(r10 - 8) = 0
r0 = 2
exit
"""
    f, n = remove_zeroing(func(text))
    assert n == 0       # r1 = 0 stays (r1 held ctx); the stack store after the call stays
    assert any(o.kind == Kind.ST for o in f.ops)


# ---- ISA extensions ----

def test_three_operand_fusion_immediate_and_register():
    text = """
r3 = r1
r3 += 14
r4 = r3
r4 -= r1
w5 = w4
w5 <<= 3
r0 = r5
exit
"""
    f, n = three_operand(func(text))
    assert n == 3
    ops = [o.insn.opcode for o in f.ops]
    assert OP_ALU3_64_K in ops and OP_ALU3_64_X in ops
    assert_equivalent(prog(text), PACKETS[:2], CompileOptions(param_exit=False))


def test_three_operand_not_fused_across_a_write_of_the_source():
    text = "r3 = r1\nr1 = 7\nr3 += 14\nr0 = r3\nr0 += r1\nexit\n"
    f, n = three_operand(func(text))
    assert n == 1                                   # only r0 = r3 + r1
    assert f.ops[0].kind == Kind.MOV and f.ops[0].insn.dst == 3


def test_param_exit_and_dead_move():
    text = "r0 = 3\nif r1 == 0 goto x\nr0 = 2\nx:\nexit\n"
    f, n = param_exit(func(text))
    assert n == 0    # r0 differs between the paths
    text = "r0 = 2\nexit\n"
    f, n = param_exit(func(text))
    f, dead = dead_code(f)
    assert n == 1 and dead == 1 and [o.insn.opcode for o in f.ops] == [OP_PEXIT]
    assert compile_program(prog(text)).image.rows[0][0] == Insn(OP_PEXIT, imm=2)


def test_load_store_48_mac_copy():
    text = PROLOGUE + """
r3 = r1
r3 += 34
if r3 > r2 goto drop
r4 = *(u32 *)(r1 + 6)
r5 = *(u16 *)(r1 + 10)
*(u32 *)(r1 + 20) = r4
*(u16 *)(r1 + 24) = r5
r0 = 3
exit
drop:
r0 = 1
exit
"""
    f, nl, ns = load_store48(func(text))
    assert (nl, ns) == (1, 1)
    ops = [o.insn.opcode for o in f.ops if o.insn]
    assert OP_LDX48 in ops and OP_STX48 in ops
    assert_equivalent(prog(text), PACKETS)


def test_load_store_48_not_when_the_halves_are_used_elsewhere():
    text = PROLOGUE + """
r4 = *(u32 *)(r1 + 6)
r5 = *(u16 *)(r1 + 10)
*(u32 *)(r1 + 20) = r4
*(u16 *)(r1 + 24) = r5
r0 = r5
exit
"""
    assert load_store48(func(text))[1] == 0


def test_narrow_lddw():
    p = Program("x", [Insn(0x18, dst=0, imm=5), Insn(0x18, dst=1, imm=0xFFFFFFFF),
                      Insn(0x18, dst=2, imm=1 << 40), Insn(0x95)])
    f, n = narrow_lddw(lift(p))
    assert n == 2 and [o.insn.opcode for o in f.ops] == [0xB7, 0xB4, 0x18, 0x95]


# ---- inlining ----

def _call_program() -> Program:
    # main: stores 5 at r10-8, calls f(r1 = 7), returns r0 + r6 + *(r10-8)
    main = [Insn(0xB7, dst=6, imm=100), Insn(0x7A, dst=10, off=-8, imm=5), Insn(0xB7, dst=1, imm=7),
            Insn(0x85, src=1, imm=5),                     # call f (slot 4 + 1 + 5 = 10)
            Insn(0x0F, dst=0, src=6), Insn(0x79, dst=2, src=10, off=-8), Insn(0x0F, dst=0, src=2),
            Insn(0x57, dst=0, imm=3), Insn(0x95)]
    # f: uses its own stack slot r10-8 and r6, returns r1 * 2 + slot
    f = [Insn(0xB7, dst=6, imm=1), Insn(0x7A, dst=10, off=-8, imm=9), Insn(0xBF, dst=0, src=1),
         Insn(0x27, dst=0, imm=2), Insn(0x79, dst=3, src=10, off=-8), Insn(0x0F, dst=0, src=3),
         Insn(0x0F, dst=0, src=6), Insn(0x95)]
    main = main[:3] + [Insn(0x85, src=1, imm=len(main) - 4)] + main[4:]
    return Program("calls", main + f, functions=[Function("main", 0), Function("f", len(main))])


def test_inline_bpf_to_bpf_call_with_frames_and_callee_saved():
    p = _call_program()
    f = inline_calls(p)
    assert not any(o.kind == Kind.CALL_LOCAL for o in f.ops)
    offs = sorted({o.insn.off for o in f.ops if o.insn.opcode in (0x7A, 0x79, 0x7B) and (o.insn.dst == 10 or o.insn.src == 10)})
    assert min(offs) < -8          # the callee's frame lies below the caller's
    assert_equivalent(p, PACKETS[:2])


def test_inline_stack_overflow_and_callbacks_are_errors():
    deep = [Insn(0x7A, dst=10, off=-512, imm=1), Insn(0x85, src=1, imm=1), Insn(0x95),
            Insn(0x7A, dst=10, off=-8, imm=1), Insn(0x95)]
    with pytest.raises(InputError, match="stack"):
        inline_calls(Program("deep", deep, functions=[Function("a", 0), Function("b", 3)]))
    cb = [Insn(0x18, dst=2, src=4, imm=3), Insn(0x85, imm=181), Insn(0x95), Insn(0xB7, imm=0), Insn(0x95)]
    with pytest.raises(InputError, match="instruction 0"):
        compile_program(Program("loop", cb))


# ---- renaming ----

def test_renaming_gives_independent_values_their_own_register():
    text = PROLOGUE + """
r3 = *(u8 *)(r1 + 0)
*(u8 *)(r1 + 1) = r3
r3 = *(u8 *)(r1 + 2)
*(u8 *)(r1 + 3) = r3
r0 = 2
exit
"""
    f, n = rename_registers(func(text))
    assert n == 1
    assert_equivalent(prog(text.replace("r0 = 2", "r0 = 2")), PACKETS[:3])


# ---- scheduling constraints ----

def test_schedule_has_no_violations_and_lanes_shape():
    text = PROLOGUE + "r3 = r1\nr3 += 34\nif r3 > r2 goto d\nr0 = *(u8 *)(r1 + 1)\nr0 += 1\nexit\nd:\nr0 = 1\nexit\n"
    for lanes in (1, 2, 3, 4, 8):
        img = compile_program(prog(text), CompileOptions(lanes=lanes)).image
        assert img.lanes == lanes and all(len(r) == lanes for r in img.rows)
        assert check_schedule(img) == []
        assert_equivalent(prog(text), PACKETS[:3], CompileOptions(lanes=lanes))


def test_one_helper_call_per_row_and_call_reads_its_row():
    text = "r1 = 0\ncall 7\nr6 = r0\nr1 = 0\ncall 7\nr0 = r6\nr0 &= 1\nexit\n"
    img = compile_program(prog(text)).image
    for row in img.rows:
        assert sum(1 for x in row if x is not None and x.opcode == 0x85) <= 1
    assert check_schedule(img) == []


def test_check_schedule_finds_violations():
    bad_fwd = Image(rows=[(Insn(0xB7, dst=3, imm=1), None), (None, Insn(0xBF, dst=4, src=3))], lanes=2)
    assert any("forwarding" in e for e in check_schedule(bad_fwd))
    two_writers = Image(rows=[(Insn(0xB7, dst=3, imm=1), Insn(0xB7, dst=3, imm=2))], lanes=2)
    assert any("both write r3" in e for e in check_schedule(two_writers))
    calls = Image(rows=[(Insn(0x85, imm=1), Insn(0x85, imm=2))], lanes=2)
    assert any("helper calls" in e for e in check_schedule(calls))
    lddw = Image(rows=[(None, Insn(0x18, dst=1, imm=1))], lanes=2)
    assert any("lddw" in e for e in check_schedule(lddw))
    jump = Image(rows=[(Insn(0x05, off=5), None)], lanes=2)
    assert any("outside" in e for e in check_schedule(jump))
    ok = Image(rows=[(Insn(0xB7, dst=3, imm=1), None), (Insn(0xBF, dst=4, src=3), None)], lanes=2)
    assert check_schedule(ok) == []


def test_lanes_and_depth_errors():
    p = prog("r0 = 2\nexit\n")
    with pytest.raises(InputError):
        compile_program(p, CompileOptions(lanes=9))
    big = prog("\n".join(f"r{1 + i % 5} = *(u8 *)(r{1 + (i + 4) % 5} + 0)" for i in range(40)) + "\nr0 = 2\nexit\n")
    with pytest.raises(InputError, match="rows"):
        compile_program(big, CompileOptions(depth=4))
    m = Program("m", [Insn(0x18, dst=1, src=5, imm=0), Insn(0xBF, dst=2, src=10), Insn(0x07, dst=2, imm=-8),
                      Insn(0x85, imm=1), Insn(0xB7, imm=2), Insn(0x95)])
    with pytest.raises(InputError, match="lanes"):
        compile_program(m, CompileOptions(lanes=1))


def test_schedule_views():
    from hxdpc.schedview import schedule_html, schedule_table
    text = PROLOGUE + "r3 = r1\nr3 += 34\nif r3 > r2 goto d\nr0 = *(u8 *)(r1 + 1)\nexit\nd:\nr0 = 1\nexit\n"
    res = compile_program(prog(text))
    table = schedule_table(res)
    assert "lane 3" in table and "len<34->exit 1" in table
    assert table.splitlines()[-1].startswith(f"{res.report['rows']} rows")
    page = schedule_html(res)
    assert page.count("<tr") == res.report["rows"] + 1 and "<svg" in page
