"""Structural checks of an Image against the row ABI (isa/image.py, docs/compiler.md).

``check_schedule(image)`` lists the violations a correct compiler never produces and
the Sephirot emulator refuses: two lanes writing one register, more than one helper call
in a row, a lddw without its second word on the next lane, a branch out of the image,
and per-lane forwarding: a register written by a datapath lane (not a control lane) of row
i and read by a datapath lane of a row executed right after it (the next row, or a branch
target of row i) on another lane; a control lane reading r0 of a call in the same row.
"""
from __future__ import annotations

from typing import Optional

from isa.image import Image
from isa.insn import Insn, is_high_word, spec_or_none, target
from hxdpc.analysis.ir import Op, effects, is_control


def _op(insn: Optional[Insn]) -> Optional[Op]:
    return None if insn is None else Op(id=0, insn=insn)


def row_successors(image: Image, r: int) -> list[int]:
    """Rows that may execute right after row r: each branch's target, and the next row
    unless an instruction that never falls through (goto, exit) certainly ends the row."""
    out = []
    ends = False
    for insn in image.rows[r]:
        s = None if insn is None else spec_or_none(insn)
        if s is None:
            continue
        if s.is_branch:
            out.append(target(insn, r))
        ends = ends or not s.falls_through
    if not ends:
        out.append(r + 1)
    return out


def _lane_ops(row) -> list[tuple[int, Op]]:
    out = []
    skip = False
    for lane, insn in enumerate(row):
        if skip:
            skip = False
            continue
        if insn is None:
            continue
        out.append((lane, _op(insn)))
        skip = insn.slots == 2
    return out


def check_schedule(image: Image) -> list[str]:
    errs: list[str] = []
    n = len(image.rows)
    for r, row in enumerate(image.rows):
        if len(row) != image.lanes:
            errs.append(f"row {r}: {len(row)} lanes, image has {image.lanes}")
            continue
        writes: dict[int, int] = {}      # datapath writes (forwarding applies to these)
        all_writes: dict[int, int] = {}
        calls = 0
        for lane, insn in enumerate(row):
            if insn is None:
                continue
            if insn.slots == 2:
                nxt = row[lane + 1] if lane + 1 < len(row) else None
                if nxt is None or not is_high_word(nxt):
                    errs.append(f"row {r} lane {lane}: lddw without its second word on lane {lane + 1}")
        for lane, o in _lane_ops(row):
            if o.spec is None:
                errs.append(f"row {r} lane {lane}: invalid opcode 0x{o.insn.opcode:02x}")
                continue
            e = effects(o)
            for reg in e.writes:
                if reg in writes or reg in all_writes:
                    errs.append(f"row {r}: lanes {all_writes.get(reg, writes.get(reg))} and {lane} both write r{reg}")
                all_writes[reg] = lane
                if not is_control(o):
                    writes[reg] = lane
            if e.call:
                calls += 1
            if o.spec.is_branch:
                t = target(o.insn, r)
                if not 0 <= t < n:
                    errs.append(f"row {r} lane {lane}: branch to row {t} outside the image")
            if 10 in e.writes:
                errs.append(f"row {r} lane {lane}: writes r10")
        ctl = [(lane, o) for lane, o in _lane_ops(row) if o.spec is not None and is_control(o)]
        call_lane = next((lane for lane, o in ctl if effects(o).call), None)
        if call_lane is not None:
            for lane, o in ctl:
                if lane > call_lane and 0 in effects(o).reads:
                    errs.append(f"row {r} lane {lane} reads r0 of the call in lane {call_lane} (written at commit)")
        if calls > 1:
            errs.append(f"row {r}: {calls} helper calls")
        for t in row_successors(image, r):
            if not 0 <= t < n:
                continue
            for lane2, o2 in _lane_ops(image.rows[t]):
                if o2.spec is None or is_control(o2):
                    continue   # control lanes read after the row's writes: no forwarding rule
                for reg in effects(o2).reads:
                    if reg in writes and writes[reg] != lane2:
                        errs.append(f"row {t} lane {lane2} reads r{reg} written in row {r} on lane "
                                    f"{writes[reg]} (forwarding is per lane)")
    for b in image.bounds:
        if not 0 <= b.row < n:
            errs.append(f"bounds check at row {b.row} outside the image")
    return errs
