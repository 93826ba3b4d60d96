"""Linking one program of an object the way libbpf does (bpf_object__relocate).

- ``lddw`` + R_BPF_64_64 against a map symbol -> ``lddw src=5`` (map by index), imm = map index;
  against a global-data section -> ``lddw src=6``, imm = index | (offset << 32) with
  offset = symbol value + the imm already in the instruction (libbpf: insn[1].imm =
  insn[0].imm + sym_off);
- ``call`` (src=1) + R_BPF_64_32, calls without relocation inside one section, and
  ``lddw`` + R_BPF_64_64 against code (function pointers, e.g. bpf_loop callbacks; clang emits
  src=0, libbpf turns it into src=4 = BPF_PSEUDO_FUNC, so do we): the target function is appended
  after the entry function the first time it is reached, depth-first in the order of the
  referencing instructions (libbpf's bpf_object__reloc_code), and the imm becomes the offset in
  slots from the instruction after the reference to the function's first slot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from isa.errors import InputError, plain, quote
from isa.loader.elf import R_BPF_64_32, R_BPF_64_64, CodeSection, FuncRange, Relocation
from isa.loader.maps import MapTable
from isa.insn import Insn
from isa.opcodes import CALL_LOCAL, CALL_KFUNC, LDDW_FUNC, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE
from isa.program import Function, Program

OP_CALL = 0x85
OP_LDDW = 0x18


@dataclass(frozen=True)
class Entry:
    """One program of an object: a function of a code section."""
    section: CodeSection
    func: FuncRange


def entry_points(sections: list[CodeSection]) -> list[Entry]:
    """Programs in libbpf's sense: every function of every code section except ``.text``,
    whose functions are subprograms (unless the object has a single function in all)."""
    all_funcs = [(c, f) for c in sections for f in c.functions]
    out = []
    for c in sections:
        if c.name == ".text" and len(all_funcs) > 1:
            continue
        out.extend(Entry(c, f) for f in c.functions)
    return out


Placed = tuple  # (CodeSection, FuncRange, index in the linked program) of a newly placed function


class Linker:
    def __init__(self, path: str, sections: list[CodeSection], maps: MapTable):
        self.path = path
        self.by_index = {c.index: c for c in sections}
        self.maps = maps
        self._slots = {c.index: c.slots() for c in sections}
        self._slot_index = {i: {s: k for k, s in enumerate(sl)} for i, sl in self._slots.items()}

    def link(self, entry: Entry, license: str = "") -> Program:
        self.out: list[Insn] = []
        self.out_slots: list[int] = []
        self.placed: dict[tuple[int, int], int] = {}   # (shndx, func start index) -> out index
        self.functions: list[Function] = []
        # depth-first like libbpf, with an explicit stack (no recursion limit on hostile input)
        stack = [(entry.section, entry.func, self._place(entry.section, entry.func), entry.func.start)]
        while stack:
            sec, func, base, k = stack.pop()
            relocs = {r.index: r for r in sec.relocations if func.start <= r.index < func.end}
            while k < func.end:
                placed = self._relocate(sec, k, base + k - func.start, relocs.get(k))
                k += 1
                if placed is not None:      # finish the new function first, then come back
                    stack.append((sec, func, base, k))
                    stack.append((*placed, placed[1].start))
                    break
        return Program(name=entry.func.name, insns=self.out, maps=list(self.maps.maps),
                       functions=self.functions, section=entry.section.name, license=license,
                       path=self.path)

    # ---- helpers ----
    def _where(self, sec: CodeSection, index: int) -> str:
        return f"{self.path}: section {plain(sec.name)}, insn {index} (byte offset {self._slots[sec.index][index] * 8})"

    def _place(self, sec: CodeSection, func: FuncRange) -> int:
        """Copy a function to the end of the program; its index there."""
        base = len(self.out)
        self.placed[(sec.index, func.start)] = base
        self.functions.append(Function(func.name, base, sec.name))
        slot = self.out_slots[-1] + self.out[-1].slots if self.out else 0
        for ins in sec.insns[func.start:func.end]:
            self.out.append(ins)
            self.out_slots.append(slot)
            slot += ins.slots
        return base

    def _relocate(self, sec: CodeSection, k: int, at: int, rel: Optional[Relocation]) -> Optional[Placed]:
        """Relocate out[at] (instruction k of sec); a function it placed, to be processed next."""
        ins = self.out[at]
        is_call = ins.opcode == OP_CALL
        if rel is None and not (is_call or ins.opcode == OP_LDDW):
            return None
        where = self._where(sec, k)
        is_call = ins.opcode == OP_CALL
        if rel is not None:
            if rel.type == R_BPF_64_64:
                if ins.opcode != OP_LDDW:
                    raise InputError(where, f"R_BPF_64_64 against {quote(rel.symbol.name)} on a non-lddw instruction")
                return self._relocate_lddw(at, rel, where)
            elif rel.type == R_BPF_64_32:
                if not is_call:
                    raise InputError(where, f"R_BPF_64_32 against {quote(rel.symbol.name)} on a non-call instruction")
                if ins.src == CALL_KFUNC or rel.symbol.shndx == 0:
                    raise InputError(where, f"call of extern function {quote(rel.symbol.name)} (kfunc) is not supported")
                if ins.src != CALL_LOCAL:
                    raise InputError(where, f"R_BPF_64_32 against {quote(rel.symbol.name)} on a helper call")
                tsec = self._code_of(rel, where)
                if rel.symbol.value % 8:
                    raise InputError(where, f"call target {quote(rel.symbol.name)} is not 8-byte aligned")
                return self._link_code(at, tsec, rel.symbol.value // 8 + ins.imm + 1, where)
            raise InputError(where, f"unsupported relocation {rel.type_name} ({rel.type}) "
                                    f"against {quote(rel.symbol.name)}")
        if is_call and ins.src == CALL_LOCAL:
            # a call inside one section needs no relocation: imm is relative to the section
            return self._link_code(at, sec, self._slots[sec.index][k] + 1 + ins.imm, where)
        elif is_call and ins.src == CALL_KFUNC:
            raise InputError(where, "kfunc call without relocation is not supported")
        elif ins.opcode == OP_LDDW and ins.src == LDDW_FUNC:
            raise InputError(where, "function address (lddw src=4) without relocation")
        return None

    def _code_of(self, rel: Relocation, where: str) -> CodeSection:
        tsec = self.by_index.get(rel.symbol.shndx)
        if tsec is None:
            raise InputError(where, f"code reference to {quote(rel.symbol.name)} in section "
                                    f"{quote(rel.symbol.section or rel.symbol.shndx)}, which holds no code")
        return tsec

    def _relocate_lddw(self, at: int, rel: Relocation, where: str) -> Optional[Placed]:
        ins, sym = self.out[at], rel.symbol
        lo = ins.imm & 0xFFFFFFFF
        lo_s = lo - (1 << 32) if lo >> 31 else lo
        if sym.shndx == 0:
            raise InputError(where, f"reference to extern symbol {quote(sym.name)} (ksym/kconfig) is not supported")
        if sym.shndx in self.maps.map_sections:
            idx = self.maps.by_symbol.get((sym.shndx, sym.value))
            if idx is None:
                raise InputError(where, f"{quote(sym.name)} at offset {sym.value} of {sym.section} is not a map")
            self.out[at] = ins.with_(src=LDDW_MAP_IDX, imm=idx)
        elif sym.shndx in self.maps.by_section:
            idx = self.maps.by_section[sym.shndx]
            offset = (lo_s + sym.value) & 0xFFFFFFFF
            self.out[at] = ins.with_(src=LDDW_MAP_IDX_VALUE, imm=idx | (offset << 32))
        elif sym.shndx in self.by_index:
            if ins.src not in (0, LDDW_FUNC):
                raise InputError(where, f"lddw src={ins.src} of code address {quote(sym.name)}")
            if sym.value % 8 or lo_s % 8:
                raise InputError(where, f"function address {quote(sym.name)} is not 8-byte aligned")
            self.out[at] = ins.with_(src=LDDW_FUNC)   # libbpf marks it so (bpf_object__relocate)
            return self._link_code(at, self.by_index[sym.shndx], (sym.value + lo_s) // 8, where)
        else:
            raise InputError(where, f"relocation against {quote(sym.name)} in section {quote(sym.section)}, "
                                    "which is neither a map, global data nor code")
        return None

    def _link_code(self, at: int, tsec: CodeSection, target_slot: int, where: str) -> Optional[Placed]:
        tidx = self._slot_index[tsec.index].get(target_slot)
        func = next((f for f in tsec.functions if f.start == tidx), None) if tidx is not None else None
        if func is None:
            raise InputError(where, f"call/function reference to slot {target_slot} of section "
                                    f"{tsec.name}, where no function starts")
        dest = self.placed.get((tsec.index, func.start))
        placed = None
        if dest is None:
            dest = self._place(tsec, func)
            placed = (tsec, func, dest)
        ins = self.out[at]
        rel = self.out_slots[dest] - self.out_slots[at] - 1
        if ins.opcode == OP_LDDW:
            self.out[at] = ins.with_(imm=rel & 0xFFFFFFFF | (ins.imm & ~0xFFFFFFFF & 0xFFFFFFFFFFFFFFFF))
        else:
            self.out[at] = ins.with_(imm=rel)
        return placed
