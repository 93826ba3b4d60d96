"""What Sephirot's instruction memory holds: rows of lanes, plus the sidecar data.

This is the meeting point of the compiler (which produces an Image) and the Sephirot
emulator (which executes one); an in-memory Image must equal what decoding its file gives.
The file formats (rom, bin, coe, mem, mif, json) and the `.mapcfg.json` sidecar are read
and written by `isa.imagefmt`; docs/compiler.md documents the ABI.

Row semantics (the ABI both sides implement):
- Every lane of a row reads its register operands as they were when the row started,
  except the control lanes (branches, exit, parametrised exit, call, bounds), which read
  them after the row's other lanes have written (the artifact's XDP_DROP.bin puts
  `r0 = 1` and `exit` in one row).  Two lanes of a row never write the same register.
- Loads read memory as it was when the row started; stores commit at the end of the row.
- Branches: relative to the next row (`off` counts rows).  Lane 0 has the highest
  priority: of several taken branches/exits in one row, the lowest lane wins.
- `lddw` takes two adjacent lanes of one row: lane k holds the first word (opcode 0x18,
  low 32 bits of the constant in imm), lane k+1 the second word (opcode 0, high 32 bits).
  Map references are lddw src 5 (imm = map id = index in `maps`) and src 6 (value address).
- A call reads r1-r5 after the row's other lanes have written, and writes r0 at commit.
- Start state: r1 = context address, r10 = stack top, other registers and the 512-byte
  stack zero (program state self-reset); addresses as isa.layout.
- bounds: `BoundsCheck(row, length, action)` means: before row `row` executes, if
  data_end - data < length the program ends with `action` (a hardware bounds check that
  replaces a removed `data + N > data_end` check).

Refinements (docs/compiler.md has the full ABI; the compiler's hxdpc/passes/check.py checks it):
- Control lanes run in lane order after the datapath writes; the first taken branch or exit
  ends the row's control work, so a call on a higher lane than a taken branch does not run;
  no control lane after a call in the same row reads r0.
- Per-lane forwarding binds datapath lanes only: a datapath lane reading a register written
  by a datapath lane of the row executed just before (previous row or the row that branched
  here) must be on the writer's lane.
- In memory, lddw lane k's Insn carries the whole 64-bit constant (imm unsigned), lane k+1 is
  Insn(0, imm=high half as signed 32), also when the high half is 0.
- Several BoundsChecks of one row are tested in list order (program order).
- The start state holds for every run, also one entered by a tail call (stack zeroed).
- The compiler pads `rows` to the instruction-memory depth; `used_rows` is the program size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from isa.insn import Insn
from isa.program import MapDef

Row = tuple[Optional[Insn], ...]     # one entry per lane; None = empty slot (NOP)


@dataclass(frozen=True)
class BoundsCheck:
    row: int
    length: int
    action: int


@dataclass
class Image:
    rows: list[Row]
    lanes: int = 4
    maps: list[MapDef] = field(default_factory=list)
    bounds: list[BoundsCheck] = field(default_factory=list)
    name: str = ""

    @property
    def used_rows(self) -> int:
        """Rows up to the last non-empty one."""
        for i in range(len(self.rows) - 1, -1, -1):
            if any(x is not None for x in self.rows[i]):
                return i + 1
        return 0
