"""The pipeline of one packet, row by row, as text (`hxdpc emulate --target sephirot --trace N`).

A traced packet runs on the row-by-row engine (core.py), which records per row: the cycle it
issued at, the stalls before it, the lanes that ran, the registers written, stores,
helper calls, and the branch/exit taken.  Stages: a row issued at cycle t is in IF at t,
ID at t+1, IE at t+2 and commit at t+3.
"""
from __future__ import annotations

from typing import Optional

from emulator.sephirot.decode import Decoded
from isa.disasm import format_insn
from isa.insn import is_high_word, spec_or_none
from isa.opcodes import Kind


def _lane_text(decoded: Decoded, row: int, lanes: int) -> list[str]:
    out = []
    r = decoded.image.rows[row] if 0 <= row < len(decoded.image.rows) else ()
    skip = set()
    for lane in range(lanes):
        ins = r[lane] if lane < len(r) else None
        if lane in skip:
            out.append("(lddw hi)")
        elif ins is None:
            out.append("-")
        else:
            spec = spec_or_none(ins)
            if (spec is not None and spec.kind == Kind.LDDW and lane + 1 < len(r) and r[lane + 1] is not None
                    and is_high_word(r[lane + 1])):
                skip.add(lane + 1)
                ins = ins.with_(imm=(ins.imm & 0xFFFFFFFF) | ((r[lane + 1].imm & 0xFFFFFFFF) << 32))
            out.append(format_insn(ins))
    return out


def format_trace(events: Optional[list], decoded: Decoded, packet: int = 0,
                 result: Optional[dict] = None) -> str:
    """Text of a traced packet's rows (`events` from Sephirot.traces[packet])."""
    if events is None:
        return f"packet {packet}: not traced"
    lanes = decoded.lanes
    lines = [f"packet {packet}: {len(events)} rows issued "
             f"(cycle = IF cycle from core start; ID +1, IE +2, commit +3)"]
    for ev in events:
        stalls = ev.get("stalls") or {}
        if stalls:
            lines.append("        stall " + ", ".join(f"{k} {v}" for k, v in stalls.items()))
        texts = _lane_text(decoded, ev["row"], lanes)
        lines.append(f"  c{ev['t']:<4} row {ev['row']:<3} | " + " | ".join(f"L{i}: {t}" for i, t in enumerate(texts)))
        w = ev.get("writes") or {}
        if w:
            lines.append("        writes " + ", ".join(f"r{k}={v:#x}" for k, v in sorted(w.items())))
        for addr, size, v in ev.get("stores") or []:
            lines.append(f"        store  *(u{size * 8} *)0x{addr:x} = {v:#x}")
        if ev.get("call"):
            lines.append(f"        call   {ev['call']}")
        if ev.get("control"):
            lines.append(f"        ->     {ev['control']}")
    if result:
        lines.append("  end: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    return "\n".join(lines)
