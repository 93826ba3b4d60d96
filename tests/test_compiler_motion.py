"""The scheduling improvements behind Sephirot's calibration: exit tails, copy forwarding,
offset folding, packet rebasing, stores sharing a call's row, safe speculative loads, renaming
of self-reading definitions, and the calibration programs' row counts."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from compiler_util import assert_equivalent  # noqa: E402

from hxdpc.compiler import CompileOptions, compile_program
from isa.loader import load
from hxdpc.analysis.ir import lift
from hxdpc.passes.offsets import fold_offsets, rebase_packet_accesses
from hxdpc.passes.rename import rename_registers
from hxdpc.passes.simplify import simplify
from hxdpc.passes.tails import copy_forward, duplicate_exit_tails
from isa.asm import assemble_program
from isa.opcodes import Kind

SAMPLES = Path(__file__).resolve().parent.parent / "sample_programs"
PROLOGUE = "r2 = *(u32 *)(r1 + 4)\nr1 = *(u32 *)(r1 + 0)\n"
PACKETS = [bytes(range(n)) for n in (14, 15, 20, 33, 34, 35, 41, 42, 60, 64, 100)]


def func(text):
    return simplify(lift(assemble_program(text)))


def test_exit_tail_is_duplicated_and_the_copy_back_dropped():
    text = PROLOGUE + """
r3 = r1
r3 += 14
if r3 > r2 goto out
r1 = 7
r2 = 0
call 23
r6 = r0
goto ret
out:
r6 = 1
ret:
r0 = r6
exit
"""
    f, n = duplicate_exit_tails(func(text))
    assert n == 2 and sum(o.kind == Kind.EXIT for o in f.ops) == 3   # the goto and the fall
    g, c = copy_forward(f)
    assert c == 1      # r0 = r6 right after r6 = r0
    for o in (CompileOptions(), CompileOptions(param_exit=False)):
        assert_equivalent(assemble_program(text), PACKETS, o)


def test_copy_forward_stops_at_a_join_and_at_a_write():
    text = "r6 = r0\nr6 += 1\nr0 = r6\nexit\n"
    assert copy_forward(func(text))[1] == 0
    text = "r6 = r0\nif r1 == 0 goto j\nr6 = 5\nj:\nr0 = r6\nexit\n"
    assert copy_forward(func(text))[1] == 0


def test_constant_adds_fold_into_access_offsets():
    text = PROLOGUE + """
r3 = r1
r3 += 40
if r3 > r2 goto out
r4 = *(u8 *)(r1 + 14)
r5 = r1
r5 += r4
r5 += 14
r0 = *(u8 *)(r5 + 2)
r5 = *(u8 *)(r5 + 0)
r0 += r5
exit
out:
r0 = 1
exit
"""
    f, n = fold_offsets(func(text))
    assert n == 1
    assert sorted(o.insn.off for o in f.ops if o.kind == Kind.LDX and o.insn.src == 5) == [14, 16]
    assert_equivalent(assemble_program(text), [bytes([0] * 14 + [k] + [k] * 30) for k in (0, 1, 5, 20)])


def test_folding_refuses_a_value_that_is_read_otherwise():
    text = PROLOGUE + "r5 = r1\nr5 += 14\nr0 = r5\nexit\n"
    assert fold_offsets(func(text))[1] == 0


def test_packet_accesses_rebase_on_the_packet_start():
    text = PROLOGUE + """
r3 = r1
r3 += 14
if r3 > r2 goto out
r0 = *(u8 *)(r3 + 0)
*(u8 *)(r3 + 1) = r0
r0 = 2
exit
out:
r0 = 1
exit
"""
    f, n = rebase_packet_accesses(func(text))
    assert n == 2 and all(o.insn.src == 1 and o.insn.off == 14 for o in f.ops if o.kind == Kind.LDX
                          and o.insn.off == 14)
    assert_equivalent(assemble_program(text), PACKETS)


def test_self_reading_definition_is_renamed():
    text = "r1 = *(u32 *)(r1 + 0)\nr3 = *(u8 *)(r1 + 0)\nr1 = 2\nr2 = 0\ncall 23\nexit\n"
    f, n = rename_registers(func(text))
    assert n >= 1 and f.ops[0].insn.dst != 1 and f.ops[1].insn.src == f.ops[0].insn.dst


def test_stores_share_the_row_of_the_call_that_reads_them():
    img = compile_program(load(str(SAMPLES / "ubench_redirect.o"))).image
    call_row = next(r for r, row in enumerate(img.rows) if any(x is not None and x.opcode == 0x85 for x in row))
    assert sum(x is not None and (x.opcode & 0x07) == 0x03 for x in img.rows[call_row]) >= 2


@pytest.mark.parametrize("name,rows", [("ubench_tx", 5), ("ubench_redirect", 6), ("ubench_drop", 1)])
def test_calibration_programs_reach_the_hand_schedules(name, rows):
    prog = load(str(SAMPLES / f"{name}.o"))
    assert compile_program(prog).image.used_rows == rows
    assert_equivalent(prog, PACKETS, CompileOptions())


def test_firewall_established_flow_meets_the_paper():
    from emulator.runtime.pcapio import read_packets
    from emulator.runtime.session import Session
    from emulator.sephirot import Sephirot
    prog = load(str(SAMPLES / "simple_firewall.o"))
    sep = Sephirot(compile_program(prog).image)
    s = Session(prog, executor=sep)
    for p in list(read_packets(str(SAMPLES / "pcaps" / "simple_firewall-established.pcap")))[:60]:
        assert s.run(p).error is None
    assert sep.stats.to_json()["mpps"] >= 6.53
