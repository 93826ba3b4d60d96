"""Each instruction fact has one definition: the ISA table (isa/opcodes.py) and the functions
over one instruction (isa/insn.py).  Executors and the compiler match on the table's kinds
and fields, so no source file outside isa/ may test raw opcode bytes or bit fields."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("emulator", "hxdpc")

# comparisons that decide on an encoding instead of a table row
RAW_OPCODE_TESTS = {
    "opcode compared": re.compile(r"\bopcode\s*(==|!=|&|\||>>|<<|\bin\b|\bnot in\b)"),
    "opcode byte compared": re.compile(r"\b(op|opc|code)\s*(==|!=)\s*0x[0-9a-fA-F]{2}\b"),
    "opcode bits extracted": re.compile(r"\b(op|opc|opcode)\s*&\s*0x[0-9a-fA-F]+\b|\b(op|opcode)\s*>>\s*4\b"),
    "well-known opcode literal": re.compile(r"(==|!=|\bin\b[^#]*)\s*0x(85|18|95|bf|b7|05|8d)\b"),
    "register nibble of a raw word": re.compile(r"\bregs\s*>>\s*4\b"),
}


def raw_opcode_tests(text: str) -> list[tuple[int, str, str]]:
    """(line number, rule, line) of each raw opcode test in a Python source (comments skipped)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for rule, rx in RAW_OPCODE_TESTS.items():
            if rx.search(code):
                out.append((n, rule, line.strip()))
    return out


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


def test_the_rules_catch_raw_opcode_tests():
    for bad in ("if op == 0x85 and regs >> 4 == 0:", "i += 16 if op == 0x18 else 8",
                "if ins.opcode == OP_LDDW:", "cls = insn.opcode & 0x07", "if x.opcode in (0x05, 0x15):",
                "kind = ins.opcode >> 4", "if code == 0x95:"):
        assert raw_opcode_tests(bad), bad
    for good in ("if spec.kind == Kind.CALL:", "if spec.is_branch and t is not None:",
                 "off & 0xFFFF", "f'opcode 0x{ins.opcode:02x}'", "# op == 0x85 in a comment"):
        assert not raw_opcode_tests(good), good


def test_no_raw_opcode_tests_outside_the_isa_table():
    found = [f"{path.relative_to(ROOT)}:{n}: {rule}: {line}"
             for path in _sources() for n, rule, line in raw_opcode_tests(path.read_text())]
    assert not found, "raw opcode tests (match on isa.opcodes kinds/fields instead):\n" + "\n".join(found)


# ---- the executors read these facts from the table (one definition, one meaning)

def test_sephirot_pairs_lddw_with_its_high_word_only():
    """The second word of a two-lane lddw is what isa.insn.is_high_word says (the rule
    hxdpc's image check applies): an opcode-0 word naming a register is not one."""
    from emulator.sephirot.decode import decode_row
    from isa.insn import Insn, make
    lddw = make("lddw", dst=1, imm=0x11223344)
    paired = decode_row(0, [lddw, make("nop", imm=0x55), None, None], 4)
    assert paired.data[0].pair_lane == 1 and paired.data[0].imm64 == 0x55_11223344
    not_high = decode_row(0, [lddw, Insn(0, dst=3, imm=0x55), None, None], 4)
    assert not_high.data[0].pair_lane is None and not_high.data[0].imm64 == 0x11223344


def test_branch_targets_are_the_tables():
    """Interpreter (slots -> instruction index) and Sephirot (rows) targets are isa.insn.target."""
    from emulator.interp.interpreter import decode_program
    from emulator.sephirot.decode import decode_row
    from isa.insn import make, target
    from isa.program import Function, Program
    insns = [make("lddw", dst=1, imm=1 << 40), make("jeq64_k", dst=1, imm=0, off=1), make("ja32", imm=-3),
             make("call_local", imm=-5), make("mov64_k", dst=0), make("exit")]
    code = decode_program(Program("t", insns, functions=[Function("main", 0)]))
    # slots: lddw 0-1, jeq 2, ja32 3 (to slot 1, inside the lddw: no target), call 4, mov 5, exit 6
    assert code.targets == [None, 3, None, 0, None, None]
    row = decode_row(7, [make("jeq64_k", dst=1, imm=0, off=-2), make("ja32", imm=5), None, None], 4)
    assert [op.target for op in row.control] == [target(op.insn, 7) for op in row.control] == [6, 13]
