"""Compiler passes tell instruction variants apart: opcodes that share a byte with another
instruction (``rX = (s8) rY`` is 0xbf like ``rX = rY``; sdiv/smod, sign-extending loads,
gotol, lddw sources, call kinds, atomics, byte swaps) are matched on the ISA table's kind
and fields, never on the opcode byte.  Each program runs on the interpreter and on
Sephirot (and on the kernel where bpf() works) and all must agree."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from compiler_util import assert_equivalent  # noqa: E402
from conftest import needs_kernel  # noqa: E402

from hxdpc.compiler import CompileOptions
from isa.asm import assemble_program

# packet: 100 zero bytes, bytes 20..23 = 80 12 34 56 (a negative s8 / s16 / s32 at offset 20)
PACKET = bytes(20) + bytes.fromhex("80123456") + bytes(76)
PACKETS = [PACKET, bytes(range(100)), bytes(range(156, 256)), bytes(60)]

_HEAD = """r2 = *(u32 *)(r1 + 0)
r3 = *(u32 *)(r1 + 4)
r9 = r2
r2 += 80
if r2 > r3 goto Lshort
r8 = *(u32 *)(r9 + 20)
"""
_TAIL = """*(u64 *)(r9 + 64) = r8
Lshort:
r0 = 3
exit
"""

# rA = rB; rB = rA where one of the two moves sign-extends: neither copy is redundant
MOVSX_PAIRS = {
    "movsx8_after_mov": "r2 = (s8)r8\nr8 = r2\n",
    "mov_after_movsx16": "r2 = r8\nr8 = (s16)r2\n",
    "movsx32_after_mov": "r2 = r8\nr8 = (s32)r2\n",
    "mov_after_movsx32": "r2 = (s32)r8\nr8 = r2\n",
    "movsx_both": "r2 = (s8)r8\nr8 = (s16)r2\n",
}


def movsx_program(name: str):
    return assemble_program(_HEAD + MOVSX_PAIRS[name] + _TAIL)


@pytest.mark.parametrize("name", sorted(MOVSX_PAIRS))
@pytest.mark.parametrize("options", [CompileOptions(), CompileOptions(code_motion=False),
                                     CompileOptions(three_operand=False)], ids=["default", "nomotion", "no3op"])
def test_sign_extending_move_pair_is_kept(name, options):
    assert_equivalent(movsx_program(name), PACKETS, options)


@pytest.mark.parametrize("name", sorted(MOVSX_PAIRS))
def test_sign_extending_move_pair_matches_the_kernel(tmp_path, name):
    """The kernel stores the sign-extended value (80ffffffffffffff for the s8 case)."""
    from emulator.kernel import KernelProgram
    from emulator.runtime.results import PacketInput
    from emulator.runtime.session import Session
    from hxdpc.targets import make_sephirot_executor
    from isa.elfwrite import write_elf
    prog = movsx_program(name)
    path = tmp_path / "p.o"
    write_elf(path, prog)
    kp = KernelProgram(str(path))
    try:
        want = [kp.run(p) for p in PACKETS]
    finally:
        kp.close()
    session = Session(prog, executor=make_sephirot_executor(prog, CompileOptions(), strict=True))
    for n, (p, k) in enumerate(zip(PACKETS, want)):
        got = session.run(PacketInput(n, p, len(p)))
        assert (got.action, got.data.hex()) == (k.action, k.data.hex()), f"packet {n}"


test_sign_extending_move_pair_matches_the_kernel = needs_kernel(test_sign_extending_move_pair_matches_the_kernel)


def test_s8_case_stores_the_sign_extended_byte():
    """The reproducer's expected bytes, spelled out: 0x80 sign-extended, little-endian."""
    from emulator.runtime.results import PacketInput
    from emulator.runtime.session import Session
    from hxdpc.targets import make_sephirot_executor
    prog = movsx_program("movsx8_after_mov")
    r = Session(prog, executor=make_sephirot_executor(prog, CompileOptions(), strict=True)).run(
        PacketInput(0, PACKET, len(PACKET)))
    assert r.data[64:72] == bytes.fromhex("80ffffffffffffff")
