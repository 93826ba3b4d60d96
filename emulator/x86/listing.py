"""The x86 translation as text (`hxdpc disasm --x86`): each eBPF instruction, then the x86
instructions capstone reads from its code, at their code offsets."""
from __future__ import annotations

import capstone

from isa.disasm import format_insn
from emulator.x86.translate import Translation


def format_translation(t: Translation) -> str:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    starts = {off: k for k, off in enumerate(t.insn_offsets)}
    prologues = {off: k for k, off in t.entries.items()}
    lines = [f"; {t.program.name}: {len(t.program.insns)} eBPF instructions -> {t.static_insns} x86 "
             f"instructions, {len(t.code)} bytes"]
    for addr, size, mnemonic, operands in md.disasm_lite(t.code, 0):
        if addr in prologues:
            lines.append(f"; prologue of the function at eBPF instruction {prologues[addr]}")
        k = starts.get(addr)
        if k is not None:
            lines.append(f"; {t.slots[k]:4d}: {format_insn(t.program.insns[k])}")
        text = f"{mnemonic} {operands}".rstrip()
        lines.append(f"  {addr:5x}:  {t.code[addr:addr + size].hex(' '):<30s} {text}")
        starts.pop(addr, None)
    return "\n".join(lines) + "\n"
