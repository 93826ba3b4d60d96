"""The fast path's memory emitters: loads, stores and atomics over the region caches.

A load through r10 with a constant offset inside one frame indexes the stack buffer
directly (when the program never writes r10); any other access tries the caches in the
order regions.py documents, then falls back to ``st.ld`` / ``st.sto`` / ``st.wfind``
(env.mem), which refill them.  Mixed into codegen.Generator.
"""
from __future__ import annotations

import struct
from typing import Optional

from isa import layout
from emulator.interp.regions import CACHE_LOCALS
from emulator.interp.runloop import STACK_BASE
from isa.semantics import atomic_alu_expr, atomic_base, atomic_fetches, sext_load_expr

_U = {2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_I = {2: struct.Struct("<h"), 4: struct.Struct("<i")}


def _u48(buf, o: int) -> int:
    return int.from_bytes(buf[o:o + 6], "little")


def _s48(buf, o: int, v: int) -> None:
    buf[o:o + 6] = (v & 0xFFFF_FFFF_FFFF).to_bytes(6, "little")


# what the templates below call, for the generated code's namespace
MEMORY_GLOBALS = {
    "U48": _u48, "S48": _s48,
    "U16": _U[2].unpack_from, "U32": _U[4].unpack_from, "U64": _U[8].unpack_from,
    "I16": _I[2].unpack_from, "I32": _I[4].unpack_from,
    "P16": _U[2].pack_into, "P32": _U[4].pack_into, "P64": _U[8].pack_into,
}
_LOAD = {1: "{b}[{o}]", 2: "U16({b}, {o})[0]", 4: "U32({b}, {o})[0]", 8: "U64({b}, {o})[0]",
         6: "U48({b}, {o})"}
_LOAD_SX = {1: "(({b}[{o}] ^ 128) - 128) & M64", 2: "I16({b}, {o})[0] & M64", 4: "I32({b}, {o})[0] & M64"}
_STORE = {1: "{b}[{o}] = {v}", 2: "P16({b}, {o}, {v})", 4: "P32({b}, {o}, {v})", 8: "P64({b}, {o}, {v})",
          6: "S48({b}, {o}, {v})"}


def _h(v: int) -> str:
    return hex(v)


class MemoryEmitter:
    """k_ldx, k_ldxsx, k_st, k_stx, k_atomic (and the 48-bit hXDP forms) of the generator."""

    def _addr(self, reg: int, off: int) -> str:
        return f"r{reg} + {off}" if off else f"r{reg}"

    def _frame_offset(self, reg: int, off: int, size: int) -> Optional[str]:
        """Index into the stack buffer when the access is surely inside the stack: r10 is
        never written and the offset lies within one frame below it."""
        if reg == 10 and self.r10_fixed and -layout.STACK_SIZE <= off <= -size:
            return f"r10 - {_h(STACK_BASE - off)}"
        return None

    def _load(self, ins, size: int, sx: bool, ind: int) -> None:
        d = f"r{ins.dst}"
        tmpl = _LOAD_SX[size] if sx else _LOAD[size]
        fo = self._frame_offset(ins.src, ins.off, size)
        if fo is not None:
            self.emit(ind, f"{d} = {tmpl.format(b='S', o=f'({fo})')}")
            return
        bits = size * 8
        sx_fix = f"{d} = {sext_load_expr(bits, d)}"
        fallback = f"{d}, {CACHE_LOCALS} = st.ld(a, {size}, {CACHE_LOCALS})"
        if ins.src in self.ctx_regs:        # the context: its hook first (st.ld finds anything else)
            self.emit(ind, f"a = {self._addr(ins.src, ins.off)}")
            self.emit(ind, f"if HB <= a <= HE - {size}:")
            self.emit(ind + 1, f"{d} = HK(a - HB, {size})")
            self.emit(ind, "else:")
            self.emit(ind + 1, fallback)
            if sx:
                self.emit(ind, sx_fix)
            return
        # packet / map value first: stack accesses mostly go through r10 (above)
        self.emit(ind, f"a = {self._addr(ins.src, ins.off)}")
        self.emit(ind, f"if PB <= a <= PE - {size}:")
        self.emit(ind + 1, f"{d} = {tmpl.format(b='P', o='a - PB')}")
        self.emit(ind, f"elif {_h(STACK_BASE)} <= a <= {_h(layout.STACK_TOP - size)}:")
        self.emit(ind + 1, f"{d} = {tmpl.format(b='S', o=f'a - {_h(STACK_BASE)}')}")
        self.emit(ind, f"elif HB <= a <= HE - {size}:")
        self.emit(ind + 1, f"{d} = HK(a - HB, {size})")
        if sx:
            self.emit(ind + 1, sx_fix)
        # the region loaded from before P (a map value read between packet reads), then
        # the store cache; a miss keeps P as Q
        self.emit(ind, f"elif QB <= a <= QE - {size}:")
        self.emit(ind + 1, f"{d} = {tmpl.format(b='Q', o='a - QB')}")
        self.emit(ind, f"elif WB <= a <= WE - {size}:")
        self.emit(ind + 1, f"{d} = {tmpl.format(b='W', o='a - WB')}")
        self.emit(ind, "else:")
        self.emit(ind + 1, "Q, QB, QE = P, PB, PE")
        self.emit(ind + 1, fallback)
        if sx:
            self.emit(ind + 1, sx_fix)

    def k_ldx(self, i, ins, spec, ind):
        self._load(ins, spec.size, False, ind)

    k_ldx48 = k_ldx

    def k_ldxsx(self, i, ins, spec, ind):
        self._load(ins, spec.size, True, ind)

    def _store(self, ins, size: int, value: str, ind: int) -> None:
        fo = self._frame_offset(ins.dst, ins.off, size)
        if fo is not None:
            self.emit(ind, _STORE[size].format(b="S", o=f"({fo})", v=value))
            return
        self.emit(ind, f"a = {self._addr(ins.dst, ins.off)}")
        self.emit(ind, f"if WB <= a <= WE - {size}:")
        self.emit(ind + 1, _STORE[size].format(b="W", o="a - WB", v=value))
        self.emit(ind, f"elif {_h(STACK_BASE)} <= a <= {_h(layout.STACK_TOP - size)}:")
        self.emit(ind + 1, _STORE[size].format(b="S", o=f"a - {_h(STACK_BASE)}", v=value))
        self.emit(ind, f"elif PW and PB <= a <= PE - {size}:")     # e.g. a counter just loaded
        self.emit(ind + 1, _STORE[size].format(b="P", o="a - PB", v=value))
        self.emit(ind, "else:")
        self.emit(ind + 1, f"W, WB, WE = st.sto(a, {size}, {value}, W, WB, WE)")

    def k_st(self, i, ins, spec, ind):
        self._store(ins, spec.size, _h(ins.imm & ((1 << (8 * spec.size)) - 1)), ind)

    def k_stx(self, i, ins, spec, ind):
        v = f"r{ins.src}" if spec.size == 8 else f"(r{ins.src} & {_h((1 << (8 * spec.size)) - 1)})"
        self._store(ins, spec.size, v, ind)

    k_stx48 = k_stx

    def k_atomic(self, i, ins, spec, ind):
        call = (f"st.atomic({spec.op!r}, a, {spec.size}, r{ins.src}, r0, "
                f"{spec.width}, {ins.src == 0})")
        slow = f"r0 = {call}[1]" if ins.src == 0 else f"r{ins.src}, r0 = {call}"
        self.emit(ind, f"a = {self._addr(ins.dst, ins.off)}")
        if not atomic_base(spec.op):      # xchg, cmpxchg: through isa.semantics.atomic
            self.emit(ind, slow)
            return
        # add/or/and/xor (with fetch) on a cached writable region or the stack: inline
        size, src = spec.size, f"r{ins.src}"
        new = atomic_alu_expr(spec.op, spec.width, "_v", src)

        def inline(cond: str, buf: str, o: str, kw: str, at: int) -> None:
            self.emit(at, f"{kw} {cond}:")
            self.emit(at + 1, f"_o = {o}; _v = {_LOAD[size].format(b=buf, o='_o')}")
            self.emit(at + 1, _STORE[size].format(b=buf, o="_o", v=new))
            if atomic_fetches(spec.op):
                self.emit(at + 1, f"{src} = _v")

        inline(f"WB <= a <= WE - {size}", "W", "a - WB", "if", ind)
        inline(f"PW and PB <= a <= PE - {size}", "P", "a - PB", "elif", ind)
        inline(f"{_h(STACK_BASE)} <= a <= {_h(layout.STACK_TOP - size)}", "S", f"a - {_h(STACK_BASE)}",
               "elif", ind)
        self.emit(ind, "else:")      # find the region (a counter just looked up), then try again
        self.emit(ind + 1, f"W, WB, WE = st.wfind(a, {size}, W, WB, WE)")
        inline(f"WB <= a <= WE - {size}", "W", "a - WB", "if", ind + 1)
        self.emit(ind + 1, "else:")
        self.emit(ind + 2, slow)
