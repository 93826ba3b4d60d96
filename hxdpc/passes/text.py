"""One-line text of an instruction for schedules and reports (llvm-objdump syntax).

Uses the project's disassembler (isa.disasm) when it offers ``insn_text``; otherwise
fills the ISA table's ``llvm`` template itself (offsets shown raw)."""
from __future__ import annotations

from isa.insn import Insn, spec_or_none


def insn_text(insn: Insn) -> str:
    try:  # the disassembler owns the syntax when it is there
        from isa import disasm  # type: ignore
        fn = getattr(disasm, "insn_text", None)
        if fn is not None:
            return fn(insn)
    except Exception:  # noqa: BLE001 - fall back to the table template
        pass
    spec = spec_or_none(insn)
    if spec is None:
        return f".word 0x{insn.opcode:02x}"
    off = insn.off
    moff = f" + {off}" if off >= 0 else f" - {-off}"
    imm = insn.imm
    return spec.llvm.format(dst=insn.dst, src=insn.src, imm=imm, off=f"{off:+d}", moff=moff,
                            imm64=insn.imm, imm_target=imm)
