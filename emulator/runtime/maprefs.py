"""Load-time check: every map a program uses is defined.

llvm-objdump text, and an ELF object assembled from a disassembly (`disasm` then `asm`),
carry no map definitions and no relocations: a map reference is left as the plain constant
`r1 = 0 ll`.  Run as is, every packet would end by a Fault (XDP_ABORTED with an `error`).
The kernel's verifier rejects such a program (a scalar where a map pointer is needed), so
the runtime refuses it at load, naming the instruction and the map:

- a `lddw` whose source says "map" (by fd, by index, a map value) and names no map the
  program defines;
- a plain 64-bit constant (`lddw` source 0, copied by `mov`, moved by `+=`/`-=` a constant)
  that reaches the map argument of a map helper, or that is used as the address of a load or
  store (a global-data reference: `.data`, `.bss`, `.rodata` are maps too).

The analysis follows every path of each function (a may-analysis over registers); a value
passed into a BPF-to-BPF call is not followed (the run's error still names it then).
docs/runtime.md ("Map references") gives the rule for what supplies map definitions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emulator.runtime.helpers import helper_name
from isa.errors import InputError
from isa.insn import branch_target, spec_or_none
from isa.opcodes import (LDDW_IMM64, LDDW_MAP_FD, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE, LDDW_MAP_VALUE,
                         NREGS, Kind)
from isa.program import Program

# helper number -> the register holding its map argument (bpf_helper_defs.h)
MAP_ARG = {1: 1, 2: 1, 3: 1, 12: 2, 25: 2, 51: 1, 130: 1, 131: 1, 195: 1}
MAP_SOURCES = (LDDW_MAP_FD, LDDW_MAP_VALUE, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE)
NO_DEFINITIONS = ("this input has no map definitions (llvm-objdump text, or assembled from a "
                  "disassembly): use the ELF object")
CALL_CLOBBERS = range(0, 6)

State = tuple            # per register: frozenset of indices of the constant lddw it holds


@dataclass(frozen=True)
class Unresolved:
    index: int           # instruction (Program.insns index) that needs the map
    reason: str


def _set(state: State, reg: int, value: frozenset) -> State:
    return state[:reg] + (value,) + state[reg + 1:]


def _join(a: State, b: State) -> State:
    return tuple(x | y for x, y in zip(a, b))


class _Check:
    def __init__(self, program: Program):
        self.p = program
        self.slots = program.slots()
        self.found: list[Unresolved] = []

    def const_text(self, sources: frozenset) -> str:
        k = min(sources)
        return f"the plain constant from instruction {self.slots[k]} (lddw {self.p.insns[k].imm:#x})"

    def flag(self, i: int, reason: str) -> None:
        self.found.append(Unresolved(i, reason))

    def lddw(self, i: int, ins, state: State) -> State:
        if ins.src == LDDW_IMM64:
            return _set(state, ins.dst, frozenset([i]))
        if ins.src in MAP_SOURCES:
            if ins.src in (LDDW_MAP_FD, LDDW_MAP_VALUE):
                self.flag(i, f"lddw refers to map fd {ins.imm & 0xFFFFFFFF}, and {NO_DEFINITIONS}")
            elif not 0 <= (ins.imm & 0xFFFFFFFF) < len(self.p.maps):
                have = ", ".join(m.name for m in self.p.maps) or "none"
                self.flag(i, f"lddw refers to map #{ins.imm & 0xFFFFFFFF}, which the program does not "
                             f"define (its maps: {have})")
        return _set(state, ins.dst, frozenset())

    def step(self, i: int, state: State) -> Optional[State]:
        """The state after instruction i (None: the path ends)."""
        ins = self.p.insns[i]
        spec = spec_or_none(ins)
        if spec is None:
            return None
        k = spec.kind
        if k == Kind.LDDW:
            return self.lddw(i, ins, state)
        if k == Kind.CALL:
            reg = MAP_ARG.get(ins.imm)
            if reg is not None and state[reg]:
                self.flag(i, f"the map argument (r{reg}) of {helper_name(ins.imm)} is "
                             f"{self.const_text(state[reg])}, not a defined map; {NO_DEFINITIONS}")
        if k in (Kind.CALL, Kind.CALL_LOCAL, Kind.CALLX, Kind.CALL_KFUNC):
            for r in CALL_CLOBBERS:
                state = _set(state, r, frozenset())
            return state
        base = {Kind.LDX: ins.src, Kind.LDXSX: ins.src, Kind.LDX48: ins.src, Kind.ST: ins.dst,
                Kind.STX: ins.dst, Kind.STX48: ins.dst, Kind.ATOMIC: ins.dst}.get(k)
        if base is not None and 0 <= base < NREGS and state[base]:
            self.flag(i, f"the address r{base} is {self.const_text(state[base])}: global data "
                         f"(.data/.bss/.rodata) whose map is not defined; {NO_DEFINITIONS}")
        return self.writes(ins, spec, state)

    @staticmethod
    def writes(ins, spec, state: State) -> State:
        k = spec.kind
        keeps = (k == Kind.MOV and spec.width == 64 and spec.reg_src) or \
                (k == Kind.ALU and spec.width == 64 and not spec.reg_src and spec.op in ("add", "sub"))
        if keeps:
            src = state[ins.src] if k == Kind.MOV else state[ins.dst]
            return _set(state, ins.dst, src)
        if k == Kind.ATOMIC:
            state = _set(state, 0, frozenset())
            return _set(state, ins.src, frozenset()) if 0 <= ins.src < NREGS else state
        if k in (Kind.ALU, Kind.ALU3, Kind.NEG, Kind.MOV, Kind.MOVSX, Kind.END, Kind.LDX, Kind.LDXSX,
                 Kind.LDX48) and 0 <= ins.dst < NREGS:
            return _set(state, ins.dst, frozenset())
        return state

    def successors(self, i: int) -> list[int]:
        spec = spec_or_none(self.p.insns[i])
        if spec is None or spec.kind in (Kind.EXIT, Kind.PEXIT):
            return []
        nxt = [i + 1] if i + 1 < len(self.p.insns) else []
        if spec.kind in (Kind.JA, Kind.JCOND):
            t = branch_target(self.p.insns, i, self.slots)
            jumps = [t] if t is not None else []
            return jumps if spec.kind == Kind.JA else jumps + nxt
        return nxt

    def run(self) -> list[Unresolved]:
        empty: State = tuple(frozenset() for _ in range(NREGS))
        starts = sorted({f.start for f in self.p.functions} | {0}) if self.p.insns else []
        at: dict[int, State] = {s: empty for s in starts}
        work = list(starts)
        while work:
            i = work.pop()
            after = self.step(i, at[i])
            if after is None:
                continue
            for j in self.successors(i):
                if j in starts and j != i + 1:
                    continue
                merged = after if j not in at else _join(at[j], after)
                if at.get(j) != merged:
                    at[j] = merged
                    work.append(j)
        return self.found


def unresolved_map_refs(program: Program) -> list[Unresolved]:
    """Every use of a map the program does not define (empty when all are defined)."""
    return _Check(program).run()


def check_map_refs(program: Program, programs: Optional[dict] = None) -> None:
    """InputError naming the program, the first such instruction (slot, as llvm-objdump
    counts) and the map, for the entry program and every other program of the object."""
    for prog in [program] + [p for p in (programs or {}).values() if p is not program]:
        found = unresolved_map_refs(prog)
        if found:
            first = min(found, key=lambda u: u.index)
            raise InputError(f"{prog.path or prog.name}: {prog.name}: instruction {prog.slots()[first.index]}",
                             first.reason)
