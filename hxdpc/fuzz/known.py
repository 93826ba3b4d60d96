"""Known executor defects that others are fixing: how to recognise a case that would hit
one, so the bounded test can leave exactly that pattern out until the fix is merged
(the benchmark still runs them; the generator still makes them)."""
from __future__ import annotations

from hxdpc.fuzz.build import item_insn, Label
from hxdpc.fuzz.oracle import Case
from isa.opcodes import Kind

REG_MOVES = (Kind.MOV, Kind.MOVSX)


def _reg_move(insn):
    spec = insn.spec
    return spec if spec.kind in REG_MOVES and spec.reg_src else None


def movsx_copy_forward(case: Case) -> bool:
    """Sephirot's copy_forward miscompiles `rA = rB; rB = rA` when one of them is a movsx."""
    for block in [b for b in case.program.blocks] + [s.items for s in case.program.subprogs]:
        insns = [item_insn(it) for it in block if not isinstance(it, Label)]
        for a, b in zip(insns, insns[1:]):
            sa, sb = _reg_move(a), _reg_move(b)
            if sa and sb and a.dst == b.src and b.dst == a.src and Kind.MOVSX in (sa.kind, sb.kind):
                return True
    return False


def uses_helper(case: Case, helper: int) -> bool:
    return any(item_insn(it).spec.kind == Kind.CALL and item_insn(it).imm == helper
               for b in case.program.blocks for it in b if not isinstance(it, Label))


TRACE_PRINTK = 6


def known_defect(case: Case, target: str) -> str:
    """The known defect a case would hit on `target` ('' when none)."""
    if target == "sephirot" and movsx_copy_forward(case):
        return "Sephirot copy_forward: rA = rB; rB = rA with a movsx"
    if uses_helper(case, TRACE_PRINTK):
        return "bpf_trace_printk format handling (its return value differs from the kernel's)"
    return ""


FIB_SECTIONS = ("interfaces", "routes", "neighbours")
FIB_INT_FIELDS = {"interfaces": ("mtu",), "routes": ("mtu", "metric", "table")}


def fib_unchecked_field(obj) -> str:
    """emulator/runtime/fib.py parse_fib does not check that the FIB's sections are lists nor
    that mtu/metric/table are integers (they raise TypeError/ValueError/OverflowError, a
    traceback): the name of such a field in `obj`, '' when there is none."""
    if not isinstance(obj, dict):
        return ""
    for sec in FIB_SECTIONS:
        if sec in obj and not isinstance(obj[sec], list):
            return sec
    for sec, fields in FIB_INT_FIELDS.items():
        for i, e in enumerate(obj.get(sec, [])):
            for f in fields:
                if isinstance(e, dict) and f in e and not isinstance(e[f], int):
                    return f"{sec}[{i}].{f}"
    return ""
