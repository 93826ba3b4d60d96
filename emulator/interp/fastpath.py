"""The fast executor: each program becomes one generated Python function.

Same interface and results as the reference interpreter (emulator.interp.interpreter), checked
instruction for instruction by tests; only the speed differs.  How (docs/interpreter.md):
- the code is one ``while True:`` loop with a binary-search dispatch on ``bb``, the
  instruction index of a label (entry, jump and call targets, return points); each label
  starts an *arm*: the instructions from it, falling through (past conditional branches
  and helper calls), up to the next label or an instruction that does not fall through;
- small arms with several ways in are duplicated at each way in (loop-free code mostly
  needs no dispatch); single-entry arms are emitted inside their jump's `if`;
- step counting and the budget cost nothing per instruction: budget checks sit at check
  points only (entries, call targets, return points, back-edge targets: every cycle goes
  through one), each for the longest way to the next one, and after helper calls; when one
  could be exceeded, the interpreter runs the rest of the activation, so even that outcome
  is the oracle's; the instructions executed are a constant per emitted path, added to the
  counter where the code leaves it (exit, dispatch, helper call);
- registers are local variables, immediates are folded into constants, and the simple
  ALU ops and jump conditions are inline expressions; the rarer ones (sdiv, smod,
  movsx, byte swaps, atomics) call the semantics functions of isa.opcodes;
- a load through r10 with a constant offset inside one frame indexes the stack buffer
  directly (when the program never writes r10); any other load or store checks a
  cache of the last region loaded from, the stack bounds, a cache of the last hook region
  (the context, set at entry), then (loads) the region loaded from before (Q) and the
  store cache, and falls back to ``env.mem``, which refills the caches; they are emptied
  after a helper call that changed the regions (adjust_head: Memory.version moved), then
  set to the region of a pointer a map lookup returned;
- map references (lddw with a map source) are resolved once per (env, program) when the
  env says they are constant (the runtime's XdpEnv), and then read from a list;
- faults keep no bookkeeping on the hot path: the traceback's line number in the
  generated code tells which instruction faulted.
"""
from __future__ import annotations

import itertools
from bisect import bisect_right
import struct
from dataclasses import dataclass
from typing import Optional

from emulator import layout
from emulator.interp import interpreter
from emulator.env import Env, ProgramExit, RunResult, TailCall
from emulator.interp.interpreter import (DEFAULT_BUDGET, STACK_BASE, DecodeCache, Decoded,
                                  Stop, callback_index, decode_program, frame_top, new_stack,
                                  packet_bounds)
from emulator.memory import Fault, Memory, Region
from isa.opcodes import (ATOMIC_OPS, LDDW_FUNC, LDDW_IMM64, M32, M64, Kind, OpSpec, alu, atomic, endian,
                         movsx)
from isa.program import Program

S64 = 1 << 63
S32 = 1 << 31
MAXF = layout.MAX_CALL_FRAMES
_TOP = layout.STACK_TOP
MAX_NESTING = 40          # inlined arms within one another (Python allows 100 indentation levels)
DUP_ARM = 48              # loop-free programs: arms up to this size (inlined ones included) are duplicated
DUP_CAP_FACTOR, DUP_CAP_EXTRA = 4, 400    # ... while the code stays under 4 n + 400 instructions

_U = {2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_I = {2: struct.Struct("<h"), 4: struct.Struct("<i")}

# helpers returning a pointer the program reads next (map_lookup_elem, ringbuf_reserve,
# map_lookup_percpu_elem): the caches are set to its region right away
_POINTER_HELPERS = frozenset({1, 131, 195})
# kinds after which control does not fall through to the next instruction
_NO_FALLTHROUGH = {Kind.JA, Kind.EXIT, Kind.PEXIT, Kind.CALL_LOCAL, Kind.CALL_KFUNC}
# kinds that write their dst register (used to know whether r10 stays the frame pointer)
_WRITES_DST = {Kind.ALU, Kind.MOV, Kind.NEG, Kind.MOVSX, Kind.END, Kind.ALU3, Kind.LDX, Kind.LDXSX,
               Kind.LDX48, Kind.LDDW}


def _u48(buf, o: int) -> int:
    return int.from_bytes(buf[o:o + 6], "little")


def _s48(buf, o: int, v: int) -> None:
    buf[o:o + 6] = (v & 0xFFFF_FFFF_FFFF).to_bytes(6, "little")


# namespace every generated function sees
_GLOBALS = {
    "M64": M64, "M32": M32, "S64": S64, "S32": S32, "alu": alu, "endian": endian, "movsx": movsx,
    "Fault": Fault, "Stop": Stop, "ProgramExit": ProgramExit, "U48": _u48, "S48": _s48,
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


# ---------------------------------------------------------------- expressions

def alu_expr(op: str, width: int, a: str, b: str, bconst: Optional[int]) -> str:
    """Python expression for `a OP b` as the new register value (a, b: register names;
    b is the literal of `bconst`, already truncated to `width`, when the operand is constant)."""
    m = "M64" if width == 64 else "M32"
    sh = width - 1
    if width == 64:
        A = a
        Bw = b          # b masked to the width
    else:
        A = f"({a} & M32)"
        Bw = b if bconst is not None else f"({b} & M32)"
    if op == "add":
        return f"({a} + {b}) & {m}"
    if op == "sub":
        return f"({a} - {b}) & {m}"
    if op == "mul":
        return f"({a} * {b}) & {m}"
    if op == "or":
        return f"{a} | {b}" if width == 64 else f"({a} | {b}) & M32"
    if op == "and":
        return f"{a} & {b}" if width == 64 or bconst is not None else f"{a} & {b} & M32"
    if op == "xor":
        return f"{a} ^ {b}" if width == 64 else f"({a} ^ {b}) & M32"
    if op == "mov":
        return Bw
    if op in ("lsh", "rsh", "arsh"):
        k = str(bconst & sh) if bconst is not None else f"({b} & {sh})"
        if op == "lsh":
            return f"({a} << {k}) & {m}"
        if op == "rsh":
            return f"{A} >> {k}"
        sign = "S64" if width == 64 else "S32"
        return f"((({A} ^ {sign}) - {sign}) >> {k}) & {m}"
    if op == "div":
        if bconst is not None:
            return f"{A} // {b}" if bconst else "0"
        return f"({A} // {Bw} if {Bw} else 0)"
    if op == "mod":
        if bconst is not None:
            return f"{A} % {b}" if bconst else A
        return f"({A} % {Bw} if {Bw} else {A})"
    # sdiv, smod: the shared semantics
    return f"alu({op!r}, {a}, {b}, {width})"


def cond_expr(op: str, width: int, a: str, b: str, bconst: Optional[int]) -> str:
    """Python expression true when a conditional jump is taken."""
    if width == 32:
        a = f"({a} & M32)"
        if bconst is None:
            b = f"({b} & M32)"
    sym = {"jeq": "==", "jne": "!=", "jgt": ">", "jge": ">=", "jlt": "<", "jle": "<=",
           "jsgt": ">", "jsge": ">=", "jslt": "<", "jsle": "<="}
    if op == "jset":
        return f"{a} & {b}"
    if op.startswith("js"):
        sign = S64 if width == 64 else S32
        sname = "S64" if width == 64 else "S32"
        bb = _h(bconst ^ sign) if bconst is not None else f"({b} ^ {sname})"
        return f"({a} ^ {sname}) {sym[op]} {bb}"
    return f"{a} {sym[op]} {b}"


# ---------------------------------------------------------------- code generation

@dataclass
class Compiled:
    """A program turned into one Python function `fn(bb, r1..r5, r10, depth, st) -> r0`."""
    code: Decoded
    fn: object
    labels: frozenset
    lines: dict            # generated line number -> (slot, instructions of its arm run since n was updated)
    filename: str
    source: str
    lddw_n: int = 0        # map references (lddw_keys) the code reads from its LV list


_serial = itertools.count()


def lddw_keys(code: Decoded) -> dict[tuple[int, int], int]:
    """(src, imm) of each distinct map reference (lddw resolved by the env) -> its index in
    the per-(env, program) list the generated code reads; the same for every Compiled of
    one program (callback entries share the list)."""
    keys: dict[tuple[int, int], int] = {}
    for i in range(code.size):
        if not code.invalid[i] and code.specs[i].kind == Kind.LDDW:
            ins = code.insns[i]
            if ins.src not in (LDDW_IMM64, LDDW_FUNC):
                keys.setdefault((ins.src, ins.imm), len(keys))
    return keys


class _Gen:
    def __init__(self, code: Decoded, extra_labels: frozenset):
        self.c = code
        self.n = code.size
        self.out: list[str] = []
        self.info: dict[int, tuple[int, int]] = {}
        self.cur: Optional[tuple[int, int]] = None
        ok = [not code.invalid[i] for i in range(self.n)]
        self.has_calls = any(ok[i] and code.specs[i].kind == Kind.CALL_LOCAL for i in range(self.n))
        self.r10_fixed = not any(
            ok[i] and ((code.specs[i].kind in _WRITES_DST and code.insns[i].dst == 10)
                       or (code.specs[i].kind == Kind.ATOMIC and code.insns[i].src == 10))
            for i in range(self.n))
        # labels: where an arm starts.  Entry, call targets, return points and callback entries
        # are reached through the dispatch; so is a jump target with several ways in.  A jump
        # target with exactly one way in (that jump) is emitted inside the jump's `if`.
        required = {0} | {i for i in extra_labels if 0 <= i < self.n}
        ways_in: dict[int, int] = {}
        for i in range(self.n):
            if not ok[i]:
                continue
            kind, t = code.specs[i].kind, code.targets[i]
            if kind in (Kind.JA, Kind.JCOND) and t is not None:
                ways_in[t] = ways_in.get(t, 0) + 1
            elif t is not None:          # call_local target, lddw function address
                required.add(t)
            if kind == Kind.CALL_LOCAL and i + 1 < self.n:
                required.add(i + 1)
            if kind not in _NO_FALLTHROUGH and i + 1 < self.n:
                ways_in[i + 1] = ways_in.get(i + 1, 0) + 1
        jump_targets = {code.targets[i] for i in range(self.n) if ok[i] and code.targets[i] is not None
                        and code.specs[i].kind in (Kind.JA, Kind.JCOND)}
        # budget checks: only at check points, the dispatched labels every cycle goes through
        # (entries, call targets, return points, targets of the DFS back edges), each for the
        # longest way to the next check point; and after each helper call (callbacks use steps)
        succ = _successors(code, ok)
        self.checks = (required | _cut_points(succ)) if self.n else set()
        self.reach = _reach(succ, self.checks)
        self.label_set = required | jump_targets | self.checks if self.n else set()
        self.inline = {t for t in jump_targets if ways_in.get(t, 0) == 1 and t not in self.checks}
        self._plan_duplication(self.checks)
        self._plan_nesting()
        self.labels = sorted(self.label_set - self.inline)
        self.k = 0        # instructions of the current arm executed since `n` was last updated
        self.rest = 0     # instructions left in the current arm after the one being emitted
        # registers surely holding r1 as the run began (the context, in XDP): their loads try
        # the hook cache first.  Only a hint (other accesses stay exact, just slower), known
        # along the emitted path from the entry when nothing jumps back to it
        self.entry_ctx = {1} if ways_in.get(0, 0) == 0 else set()
        self.ctx_regs: set[int] = set()
        self.lddw_keys = lddw_keys(code)
        self.has_helpers = any(ok[i] and code.specs[i].kind in (Kind.CALL, Kind.CALLX) for i in range(self.n))

    def _plan_duplication(self, required: set) -> None:
        """A small arm with several ways in (not a check point) is emitted at each of them
        (jump or fall-through) rather than reached through the dispatch, as long as the code
        stays within DUP_CAP instructions in all."""
        expanded: dict[int, int] = {}       # label -> instructions emitted for its arm, inlined ones included
        cand: set[int] = set()
        for t in sorted(self.label_set, key=lambda t: self.reach[t]):   # what an arm reaches first
            size = 0
            for i in self._chain(t):
                size += 1
                j = self.c.targets[i]
                if j in cand and self.c.specs[i].kind in (Kind.JA, Kind.JCOND):
                    size += expanded[j]
            nxt = self._chain(t)[-1] + 1
            if nxt in cand and not self._ends(t):
                size += expanded[nxt]
            expanded[t] = size
            if t not in required and size <= DUP_ARM:
                cand.add(t)
        total = sum(expanded[t] for t in self.label_set - cand)
        if total <= DUP_CAP_FACTOR * self.n + DUP_CAP_EXTRA:
            self.inline = cand

    def _ends(self, start: int) -> bool:
        """Whether the arm starting at `start` ends without falling through."""
        last = self._chain(start)[-1]
        return bool(self.c.invalid[last]) or self.c.specs[last].kind in _NO_FALLTHROUGH

    def _plan_nesting(self) -> None:
        """Inlined arms nest one level each: past MAX_NESTING, an arm goes through the dispatch
        (Python limits indentation)."""
        todo = sorted(self.label_set - self.inline)
        while todo:
            stack = [(todo.pop(), 0)]
            while stack:
                start, depth = stack.pop()
                chain = self._chain(start)
                for i in chain:
                    t = self.c.targets[i]
                    if t in self.inline and self.c.specs[i].kind in (Kind.JA, Kind.JCOND):
                        if depth >= MAX_NESTING:
                            self.inline.discard(t)
                            todo.append(t)
                        else:
                            stack.append((t, depth + 1))
                nxt = chain[-1] + 1
                if nxt in self.inline and not self._ends(start):
                    stack.append((nxt, depth))      # emitted in place of the dispatch: same depth

    # -- output helpers
    def emit(self, ind: int, text: str) -> None:
        self.out.append("    " * ind + text)
        if self.cur is not None:
            self.info[len(self.out)] = self.cur

    def generate(self) -> str:
        self.cur = None
        self.emit(0, "def fn(bb, r1, r2, r3, r4, r5, r10, depth, st):")
        self.emit(1, "n = st.n; budget = st.budget; S = st.stack")
        self.emit(1, "r0 = r6 = r7 = r8 = r9 = 0")
        self.emit(1, "W = Q = None; WB = QB = 1; WE = QE = 0; P, PB, PE, PW = st.pc; HK, HB, HE = st.hc")
        if self.n and self.lddw_keys:
            self.emit(1, "LV = st.lv")
        if self.n and self.has_helpers:
            self.emit(1, "MV = st.vm")
        if self.has_calls:
            self.emit(1, "frames = []")
        if not self.n:
            self.emit(1, "raise Stop('execution fell off the end of the program', 0)")
            return "\n".join(self.out) + "\n"
        self.emit(1, "while True:")
        self._tree(self.labels, 2)
        return "\n".join(self.out) + "\n"

    def _tree(self, labels: list[int], ind: int) -> None:
        if len(labels) == 1:
            self.k = 0
            self.ctx_regs = set(self.entry_ctx) if labels[0] == 0 else set()
            self._arm(labels[0], ind)
            return
        mid = len(labels) // 2
        self.cur = None
        self.emit(ind, f"if bb < {labels[mid]}:")
        self._tree(labels[:mid], ind + 1)
        self.cur = None
        self.emit(ind, "else:")
        self._tree(labels[mid:], ind + 1)

    def _chain(self, start: int) -> list[int]:
        """Instructions an arm holds: from a label, falling through, up to an instruction
        without fall-through, the next label or the end of the program."""
        out = [start]
        i = start
        while not (self.c.invalid[i] or self.c.specs[i].kind in _NO_FALLTHROUGH):
            i += 1
            if i >= self.n or i in self.label_set:
                break
            out.append(i)
        return out

    def _budget_check(self, pc: int, remaining: int, ind: int) -> None:
        """Leave the rest of this activation to the interpreter when the budget could run
        out within the next `remaining` instructions: its outcome is then the oracle's."""
        self.cur = None
        frames = "frames" if self.has_calls else "()"
        self.emit(ind, f"if n + {remaining} > budget: return st.finish({pc}, n, depth, {frames}, "
                       "(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10))")

    def _sync(self, ind: int) -> None:
        """Add the instructions executed since the last update to the step counter."""
        if self.k:
            self.emit(ind, f"n += {self.k}")

    def _arm(self, start: int, ind: int) -> None:
        """Emit the arm at `start`; `self.k` holds the instructions run since `n` was
        updated (0 at a dispatched arm; in a loop-free program inlined arms carry it on)."""
        chain = self._chain(start)
        if start in self.checks:      # dispatched: k is 0
            self._budget_check(start, self.reach[start], ind)
        for pos, i in enumerate(chain):
            self.k += 1
            self.rest = len(chain) - pos - 1
            self.cur = (self.c.slots[i], self.k)
            if self.c.invalid[i]:
                self.emit(ind, f"raise Fault({self.c.invalid[i]!r})")
                return
            spec = self.c.specs[i]
            ins = self.c.insns[i]
            copies_ctx = (spec.kind == Kind.MOV and spec.op == "mov" and spec.width == 64 and spec.reg_src
                          and ins.src in self.ctx_regs)
            getattr(self, "k_" + spec.kind.value)(i, ins, spec, ind)
            if spec.kind in _WRITES_DST:
                if copies_ctx:
                    self.ctx_regs.add(ins.dst)
                else:
                    self.ctx_regs.discard(ins.dst)
            elif spec.kind == Kind.ATOMIC:
                self.ctx_regs -= {ins.src, 0}
        last = chain[-1]
        if self.c.specs[last].kind in _NO_FALLTHROUGH:
            return
        nxt = last + 1
        self.cur = (self.c.slots[last], self.k)    # k: 0 after a helper call updated n
        if nxt >= self.n:
            self.emit(ind, f"raise Stop('execution fell off the end of the program', {self._end_slot(last)})")
            return
        if nxt in self.inline:       # loop-free programs only: a small arm emitted in place
            self._arm(nxt, ind)
            return
        self._sync(ind)
        self.emit(ind, f"bb = {nxt}")
        self.emit(ind, "continue")

    def _end_slot(self, i: int) -> int:
        return self.c.slots[i] + self.c.insns[i].slots

    # -- one method per kind (names k_<Kind value>)
    def _operand(self, ins, spec: OpSpec) -> tuple[str, Optional[int]]:
        if spec.reg_src:
            return f"r{ins.src}", None
        v = ins.imm & (M64 if spec.width == 64 else M32)
        return _h(v), v

    def k_alu(self, i, ins, spec, ind):
        b, bc = self._operand(ins, spec)
        self.emit(ind, f"r{ins.dst} = {alu_expr(spec.op, spec.width, f'r{ins.dst}', b, bc)}")

    k_mov = k_alu

    def k_alu3(self, i, ins, spec, ind):
        if spec.opcode & 0x08:
            b, bc = f"r{ins.imm}", None
        else:
            bc = ins.imm & (M64 if spec.width == 64 else M32)
            b = _h(bc)
        self.emit(ind, f"r{ins.dst} = {alu_expr(spec.op, spec.width, f'r{ins.src}', b, bc)}")

    def k_neg(self, i, ins, spec, ind):
        self.emit(ind, f"r{ins.dst} = -r{ins.dst} & {'M64' if spec.width == 64 else 'M32'}")

    def k_movsx(self, i, ins, spec, ind):
        self.emit(ind, f"r{ins.dst} = movsx(r{ins.src}, {spec.variant}, {spec.width})")

    def k_end(self, i, ins, spec, ind):
        d = f"r{ins.dst}"
        if spec.op == "le":
            if spec.width < 64:
                self.emit(ind, f"{d} = {d} & {_h((1 << spec.width) - 1)}")
        elif spec.width == 16:
            self.emit(ind, f"{d} = (({d} & 0xff) << 8) | (({d} >> 8) & 0xff)")
        else:       # isa.opcodes.bswap, inline (two calls less)
            w = spec.width
            self.emit(ind, f"{d} = int.from_bytes(({d} & {_h((1 << w) - 1)}).to_bytes({w // 8}, 'little'), 'big')")

    def _goto(self, i: int, ind: int) -> None:
        t = self.c.targets[i]
        if t is None:
            self.emit(ind, "raise Fault('jump target is outside the program or inside an lddw')")
            return
        if t in self.inline:
            saved = (self.k, self.rest, self.cur, set(self.ctx_regs))
            self._arm(t, ind)
            self.k, self.rest, self.cur, self.ctx_regs = saved
            return
        self._sync(ind)
        self.emit(ind, f"bb = {t}")
        self.emit(ind, "continue")

    def k_ja(self, i, ins, spec, ind):
        self._goto(i, ind)

    def k_jcond(self, i, ins, spec, ind):
        b, bc = self._operand(ins, spec)
        self.emit(ind, f"if {cond_expr(spec.op, spec.width, f'r{ins.dst}', b, bc)}:")
        self._goto(i, ind + 1)

    def _helper(self, i: int, num: str, ind: int) -> None:
        self.emit(ind, f"st.n = n + {self.k}; st.depth = depth; _mv = MV.version")
        if num.isdigit():     # a known helper: its function, looked up once per env (st.hf)
            self.emit(ind, f"r0 = st.hf[{num}]((r1, r2, r3, r4, r5), st)")
        else:
            self.emit(ind, f"r0 = st.helper({num}, (r1, r2, r3, r4, r5), st) & M64")
        self.ctx_regs.discard(0)
        self.emit(ind, "n = st.n")
        self.emit(ind, "if MV.version != _mv: PB = WB = HB = QB = 1; PE = WE = HE = QE = 0")   # regions changed
        if num.isdigit() and int(num) in _POINTER_HELPERS:     # r0 is read next: its region
            self.emit(ind, "if r0: Q, QB, QE = P, PB, PE; P, PB, PE, PW, W, WB, WE = st.at(r0)")
        self.k = 0
        if i + 1 < self.n:    # a callback may have used steps: check the longest way from here
            self._budget_check(i + 1, self.reach[i + 1], ind)

    def k_call(self, i, ins, spec, ind):
        self._helper(i, str(ins.imm), ind)

    def k_callx(self, i, ins, spec, ind):
        self._helper(i, f"r{ins.dst}", ind)

    def k_call_local(self, i, ins, spec, ind):
        t = self.c.targets[i]
        if t is None:
            self.emit(ind, "raise Fault('jump target is outside the program or inside an lddw')")
            return
        self.emit(ind, f"if depth >= {MAXF - 1}: raise Fault('call depth above {MAXF} frames')")
        self._sync(ind)
        self.emit(ind, f"frames.append(({i + 1}, r6, r7, r8, r9, r10))")
        self.emit(ind, f"depth += 1; r10 = {_h(layout.STACK_TOP)} - depth * {layout.STACK_SIZE}")
        self.emit(ind, f"bb = {t}")
        self.emit(ind, "continue")

    def k_call_kfunc(self, i, ins, spec, ind):
        self.emit(ind, f"raise Fault('kernel function calls (kfunc {ins.imm}) are not supported')")

    def _exit(self, ind):
        self._sync(ind)
        if self.has_calls:
            self.emit(ind, "if frames:")
            self.emit(ind + 1, "bb, r6, r7, r8, r9, r10 = frames.pop()")
            self.emit(ind + 1, "depth -= 1")
            self.emit(ind + 1, "continue")
        self.emit(ind, "st.n = n")
        self.emit(ind, "return r0")

    def k_exit(self, i, ins, spec, ind):
        self._exit(ind)

    def k_pexit(self, i, ins, spec, ind):
        self.emit(ind, f"r0 = {_h(ins.imm & M64)}")
        self._exit(ind)

    def k_bounds(self, i, ins, spec, ind):
        self.emit(ind, "_d, _e = st.bounds()")
        self.emit(ind, f"if _d + {ins.imm} > _e: st.n = n + {self.k}; raise ProgramExit({_h(ins.off & M64)})")

    def k_nop(self, i, ins, spec, ind):
        self.emit(ind, "pass")

    def k_lddw(self, i, ins, spec, ind):
        d = f"r{ins.dst}"
        if ins.src == LDDW_IMM64:
            self.emit(ind, f"{d} = {_h(ins.imm & M64)}")
        elif ins.src == LDDW_FUNC:
            t = self.c.targets[i]
            if t is None:
                self.emit(ind, "raise Fault('jump target is outside the program or inside an lddw')")
            else:
                self.emit(ind, f"{d} = {_h(layout.FUNC_BASE + t)}")
        else:
            k = self.lddw_keys[(ins.src, ins.imm)]
            self.emit(ind, f"{d} = LV[{k}]")
            self.emit(ind, f"if {d} is None: {d} = LV[{k}] = st.lddw({ins.src}, {ins.imm}) & M64")

    # memory
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
        sx_fix = f"{d} = (({d} ^ {_h(1 << (bits - 1))}) - {_h(1 << (bits - 1))}) & M64"
        fallback = (f"{d}, P, PB, PE, PW, HK, HB, HE, W, WB, WE = "
                    f"st.ld(a, {size}, P, PB, PE, PW, HK, HB, HE, W, WB, WE)")
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
        base = spec.op.removeprefix("fetch_")
        if base not in ATOMIC_OPS:      # xchg, cmpxchg: through isa.opcodes.atomic
            self.emit(ind, slow)
            return
        # add/or/and/xor (with fetch) on a cached writable region or the stack: inline
        size, src = spec.size, f"r{ins.src}"
        new = alu_expr(base, spec.width, "_v", src, None)

        def inline(cond: str, buf: str, o: str, kw: str, at: int) -> None:
            self.emit(at, f"{kw} {cond}:")
            self.emit(at + 1, f"_o = {o}; _v = {_LOAD[size].format(b=buf, o='_o')}")
            self.emit(at + 1, _STORE[size].format(b=buf, o="_o", v=new))
            if spec.op.startswith("fetch_"):
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


def _successors(code: Decoded, ok: list[bool]) -> list[tuple[int, ...]]:
    """Where control goes after each instruction within its function activation: a local
    call goes to its target (its return point is reached from the callee's exit, through
    the dispatch), exit and faulting instructions go nowhere."""
    n = code.size
    succ: list[tuple[int, ...]] = []
    for i in range(n):
        if not ok[i]:
            succ.append(())
            continue
        kind, t = code.specs[i].kind, code.targets[i]
        out = []
        if kind in (Kind.JA, Kind.JCOND, Kind.CALL_LOCAL) and t is not None:
            out.append(t)
        if kind not in _NO_FALLTHROUGH and i + 1 < n:
            out.append(i + 1)
        succ.append(tuple(out))
    return succ


def _cut_points(succ: list[tuple[int, ...]]) -> set[int]:
    """Targets of the back edges of a depth-first search: every cycle goes through one."""
    n = len(succ)
    cuts: set[int] = set()
    state = [0] * n           # 0 new, 1 on the DFS stack, 2 done
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, 0)]
        state[root] = 1
        while stack:
            i, k = stack[-1]
            if k < len(succ[i]):
                stack[-1] = (i, k + 1)
                j = succ[i][k]
                if state[j] == 1:
                    cuts.add(j)
                elif state[j] == 0:
                    state[j] = 1
                    stack.append((j, 0))
                continue
            stack.pop()
            state[i] = 2
    return cuts


def _reach(succ: list[tuple[int, ...]], checks: set[int]) -> list[int]:
    """Per instruction, the most instructions a run from it executes (itself included)
    before it reaches a check point or leaves the activation.  With the edges into check
    points removed the graph has no cycle (every cycle goes through a cut point)."""
    n = len(succ)
    reach = [0] * n
    done = [False] * n
    for root in range(n):
        if done[root]:
            continue
        stack = [(root, 0)]
        while stack:
            i, k = stack[-1]
            nxt = succ[i]
            while k < len(nxt) and (nxt[k] in checks or done[nxt[k]]):
                k += 1
            if k < len(nxt):
                stack[-1] = (i, k + 1)
                stack.append((nxt[k], 0))
                continue
            stack.pop()
            if not done[i]:
                done[i] = True
                reach[i] = 1 + max((0 if j in checks else reach[j] for j in nxt), default=0)
    return reach


def compile_program(code: Decoded, extra_labels: frozenset = frozenset()) -> Compiled:
    gen = _Gen(code, extra_labels)
    source = gen.generate()
    filename = f"<fastpath {code.program.name} #{next(_serial)}>"
    ns = dict(_GLOBALS)
    exec(compile(source, filename, "exec"), ns)
    return Compiled(code, ns["fn"], frozenset(gen.labels), gen.info, filename, source, len(gen.lddw_keys))


def _interpret(bb, r1, r2, r3, r4, r5, r10, depth, st):
    return st.finish(bb, st.n, depth, (), (0, r1, r2, r3, r4, r5, 0, 0, 0, 0, r10))


def interpreted(code: Decoded) -> Compiled:
    """A stand-in for a program whose generated code Python refuses (far beyond real XDP
    sizes): every entry runs the interpreter, through the same path as a budget hand-over."""
    return Compiled(code, _interpret, frozenset(range(code.size)), {}, f"<interpreted {code.program.name}>",
                    "# interpreted\n", len(lddw_keys(code)))


# ---------------------------------------------------------------- running

_CACHEABLE: dict[type, bool] = {}


def _cacheable(mem: Memory) -> bool:
    """Region caches are only safe when memory behaves exactly like emulator.memory.Memory."""
    cls = type(mem)
    ok = _CACHEABLE.get(cls)
    if ok is None:
        ok = _CACHEABLE[cls] = (all(getattr(cls, m) is getattr(Memory, m)
                                    for m in ("find", "load", "store", "add", "remove", "move"))
                                and all(hasattr(mem, a) for a in ("_bases", "_regions", "version")))
    return ok


_NO_HOOK = (None, 1, 0)        # an empty hook cache (HK, HB, HE)


class _Unversioned:
    """`MV` of generated code when memory is not cacheable: its caches stay empty anyway."""
    version = 0


_UNVERSIONED = _Unversioned()


class _NoLddwCache:
    """`LV` of generated code when the env's lddw values may vary: every read misses."""

    def __getitem__(self, k):
        return None

    def __setitem__(self, k, v):
        pass


_NO_LDDW_CACHE = _NoLddwCache()


def _lddw_constant(env: Env) -> bool:
    """Whether the env declares its lddw_value results constant for a (env, program) pair
    (class attribute LDDW_CONSTANT, set by the class that defines lddw_value)."""
    cls = type(env)
    return (bool(getattr(cls, "LDDW_CONSTANT", False)) and "lddw_value" not in getattr(env, "__dict__", {})
            and _defined_in(cls, "lddw_value") is _defined_in(cls, "LDDW_CONSTANT"))


_NO_PLAIN = (None, 1, 0, False)    # an empty load cache (P, PB, PE, PW)


def _still_mapped(mem: Memory, r: Optional[Region]) -> tuple:
    """(data, base, end, writable) of plain region `r` if `mem` maps it now (so that
    Memory.find returns it for any address in it), else _NO_PLAIN."""
    if r is None or r.hook is not None:
        return _NO_PLAIN
    base = r.base
    end = base + len(r.data)
    bases = mem._bases
    i = bisect_right(bases, base) - 1
    if i >= 0 and mem._regions[i] is r and (i + 1 == len(bases) or bases[i + 1] >= end) and end > base:
        return r.data, base, end, r.writable
    return _NO_PLAIN


def _defined_in(cls: type, name: str) -> Optional[type]:
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


class _HelperTable(dict):
    """Helper number -> `f(args, caller) -> r0` (masked to 64 bits) for one env: the env's
    `helper_fn(num)` when it offers one (the runtime's XdpEnv: the dispatch is done once)
    and its class defines it alongside `helper`, else a call of `env.helper`."""

    def __init__(self, env: Env):
        super().__init__()
        self.env = env
        cls = type(env)
        self.direct = ("helper" not in getattr(env, "__dict__", {}) and hasattr(cls, "helper_fn")
                       and _defined_in(cls, "helper_fn") is _defined_in(cls, "helper"))

    def __missing__(self, num: int):
        fn = self.env.helper_fn(num) if self.direct else None
        if fn is None:
            def fn(args, caller, helper=self.env.helper, num=num):
                return helper(num, args, caller) & M64
        self[num] = fn
        return fn


def _hook_at(mem: Memory, a: int) -> tuple:
    """(load, base, end) of the hook region holding byte `a`, else _NO_HOOK: Memory.find
    without the cost of a Fault when there is none (`mem` is a plain Memory, see _cacheable)."""
    i = bisect_right(mem._bases, a) - 1
    if i >= 0:
        r = mem._regions[i]
        if r.hook is not None and a - r.base < len(r.data):
            return r.hook.load, r.base, r.base + len(r.data)
    return _NO_HOOK
_ZERO_STACK = bytes(len(new_stack().data))


class _State:
    """What generated code reads from its `st` argument; also the helpers' `Caller`."""
    __slots__ = ("fp", "env", "mem", "budget", "n", "depth", "ctx", "stack", "helper", "compiled",
                 "cacheable", "_slot", "hc", "region", "zero", "hf", "pc", "first", "vm", "lv", "lvs",
                 "lddw_const", "lv_prog", "seen")

    def __init__(self, fp: "FastPath"):
        self.fp = fp
        self.env = self.mem = None
        self.compiled: Optional[Compiled] = None
        self.hc = _NO_HOOK
        self.pc = _NO_PLAIN             # the load cache a run starts with (P, PB, PE, PW)
        self.first: Optional[Region] = None     # the first region a run loaded from (P)
        self.vm = _UNVERSIONED          # MV: the memory whose version tells regions changed
        self.lv = _NO_LDDW_CACHE        # LV: the running program's resolved map references
        self.lvs: dict[int, tuple[Program, list]] = {}     # id(program) -> (program, LV), this env
        self.lddw_const = False
        self.lv_prog: Optional[Program] = None     # the program self.lv was last made for
        # (memory version, r1, first, hc, pc) of the previous start: a run whose memory
        # changed only by the stack's remove and add since then starts with the same caches
        self.seen: tuple = (-1, None, None, _NO_HOOK, _NO_PLAIN)
        self.region = new_stack()       # the stack, kept from run to run
        self.zero = memoryview(self.region.data)    # zeroed through a view: 10x faster than
        #                                             bytearray slice assignment (CPython 3.11)

    def prepare(self, env: Env, budget: int) -> "_State":
        """Ready for a run on `env` (a state is reused from run to run)."""
        self.budget = budget
        self.n = 0
        self.depth = 0
        if env is not self.env or env.mem is not self.mem:
            self.env = env
            self.mem = env.mem
            self.helper = env.helper
            self.hf = _HelperTable(env)
            self.cacheable = _cacheable(env.mem)
            self.vm = env.mem if self.cacheable else _UNVERSIONED
            self.lvs = {}
            self.lddw_const = _lddw_constant(env)
            self.lv_prog = None
            self.seen = (-1, None, None, _NO_HOOK, _NO_PLAIN)
        return self

    @property
    def steps(self) -> int:
        return self.n

    # --- called by generated code
    def finish(self, pc: int, n: int, depth: int, frames, regs: tuple) -> int:
        """The budget runs out within the block at `pc`: the interpreter runs the rest of
        this activation, so the outcome (where the budget ends, or a fault or exit before
        that) is exactly the interpreter's."""
        irun = interpreter.InterpRun(None, self.env, self.budget)
        irun.code = self.compiled.code
        irun.ctx = self.ctx
        irun.steps = n
        act = interpreter.Activation(irun.code, list(regs), depth,
                                      [(f[0], tuple(f[1:])) for f in frames])
        try:
            r0 = irun.loop(act, pc)
        except (Stop, ProgramExit, TailCall) as e:
            e.steps = irun.steps
            raise
        self.n = irun.steps
        return r0

    def ld(self, a: int, size: int, P, PB, PE, PW, HK, HB, HE, W, WB, WE):
        """env.mem.load, and the caches after it: a plain region becomes the load cache P
        (with whether it is writable; and the store cache W if that is empty: a counter is
        read, then written), a hook region the hook cache H."""
        a &= M64
        if not self.cacheable:
            return self.mem.load(a, size), P, PB, PE, PW, HK, HB, HE, W, WB, WE
        region, off = self.mem.find(a, size)
        data = region.data
        end = region.base + len(data)
        if region.hook is not None:
            return region.hook.load(off, size), P, PB, PE, PW, region.hook.load, region.base, end, W, WB, WE
        v = int.from_bytes(data[off:off + size], "little")
        if self.first is None:
            self.first = region
        if region.writable and not WE:      # W empty (e.g. after a helper call)
            return v, data, region.base, end, True, HK, HB, HE, data, region.base, end
        return v, data, region.base, end, region.writable, HK, HB, HE, W, WB, WE

    def at(self, a: int):
        """The load and store caches (P, PB, PE, PW, W, WB, WE) set to the plain region
        holding address `a` (a pointer a helper returned), or empty: never a Fault, the
        accesses decide."""
        if self.cacheable:
            mem = self.mem
            i = bisect_right(mem._bases, a) - 1
            if i >= 0:
                r = mem._regions[i]
                data = r.data
                if r.hook is None and a - r.base < len(data):
                    end = r.base + len(data)
                    if r.writable:
                        return data, r.base, end, True, data, r.base, end
                    return data, r.base, end, False, None, 1, 0
        return None, 1, 0, False, None, 1, 0

    def sto(self, a: int, size: int, v: int, W, WB, WE):
        a &= M64
        self.mem.store(a, size, v)
        if not self.cacheable:
            return W, WB, WE
        region, _ = self.mem.find(a, size)
        if region.hook is None and region.writable:
            return region.data, region.base, region.base + len(region.data)
        return W, WB, WE

    def wfind(self, a: int, size: int, W, WB, WE):
        """The store cache set to the plain writable region holding [a, a + size), if any
        (faults as env.mem would when no region holds it)."""
        if not self.cacheable:
            return W, WB, WE
        region, _ = self.mem.find(a & M64, size)
        if region.hook is None and region.writable:
            return region.data, region.base, region.base + len(region.data)
        return W, WB, WE

    def atomic(self, op: str, a: int, size: int, src: int, r0: int, width: int,
               src_is_r0: bool = False) -> tuple[int, int]:
        a &= M64
        new, src_val, r0_val = atomic(op, self.mem.load(a, size), src, r0, width)
        self.mem.store(a, size, new)
        # the interpreter's order: src register first, then r0 (they may be one register)
        if src_val is not None:
            src = src_val
            if src_is_r0:
                r0 = src_val
        if r0_val is not None:
            r0 = r0_val
        return src, r0

    def lddw(self, src: int, imm: int) -> int:
        return self.env.lddw_value(src, imm)

    def bounds(self) -> tuple[int, int]:
        return packet_bounds(self.env, self.ctx)

    # --- Caller protocol (bpf_loop)
    def call(self, func_addr: int, args: tuple[int, ...]) -> int:
        comp = self.compiled
        idx = callback_index(func_addr, comp.code.size)
        depth = self.depth + 1
        if depth >= MAXF:
            raise Fault(f"call depth above {MAXF} frames")
        if idx not in comp.labels:
            comp = self.fp.compiled(comp.code.program, idx)
        a = [x & M64 for x in args[:5]] + [0] * (5 - len(args[:5]))
        # a callback runs inside a helper call, which may have moved regions: it starts with
        # empty caches (its code refills them from env.mem)
        self.pc = _NO_PLAIN
        self.hc = _NO_HOOK
        saved = self.depth
        try:
            return comp.fn(idx, a[0], a[1], a[2], a[3], a[4], frame_top(depth), depth, self)
        finally:
            self.depth = saved

    # --- entry for interpreter.execute()
    def start(self, program: Program, stack: Region, r1: int, budget: int) -> int:
        fp = self.fp
        comp = fp.main if program is fp.program else fp.compiled(program)
        self.compiled = comp
        if not comp.lddw_n:
            self.lv = _NO_LDDW_CACHE
        elif program is not self.lv_prog or getattr(self.env, "program", program) is not program:
            self.lv = self._lddw_list(program, comp)
        self.stack = stack.data
        self.ctx = r1
        self.depth = 0
        # the context's hook region, so that its loads skip env.mem, and the region the
        # previous run loaded from first (the packet) if it is still mapped
        if self.cacheable:
            v = self.mem.version
            seen = self.seen
            if v == seen[0] + 2 and r1 == seen[1] and self.first is seen[2]:
                self.hc = seen[3]      # only the stack left and came back since the last start
                self.pc = seen[4]
            else:
                self.hc = _hook_at(self.mem, r1)
                self.pc = _still_mapped(self.mem, self.first)
                if self.pc is _NO_PLAIN:
                    self.first = None
            self.seen = (v, r1, self.first, self.hc, self.pc)
        else:
            self.hc = _NO_HOOK
            self.pc = _NO_PLAIN
        try:
            return comp.fn(0, r1, 0, 0, 0, 0, _TOP, 0, self)
        except (Fault, Stop, ProgramExit, TailCall) as e:
            self._locate(e)
            if isinstance(e, Fault):
                raise Stop(str(e), self._slot) from None
            raise

    def _lddw_list(self, program: Program, comp: Compiled):
        """LV for `program` on this env: kept from run to run when the env's values are
        constant and the env runs this program (XdpEnv resolves by its running program)."""
        self.lv_prog = None
        if not self.lddw_const or getattr(self.env, "program", program) is not program:
            return _NO_LDDW_CACHE
        hit = self.lvs.get(id(program))
        if hit is None or hit[0] is not program:
            hit = self.lvs[id(program)] = (program, [None] * comp.lddw_n)
        self.lv_prog = program
        return hit[1]

    def _locate(self, e: BaseException) -> None:
        """Steps and slot of an exception from the innermost generated frame of its traceback."""
        self._slot = None
        tb = e.__traceback__
        inner = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith("<fastpath "):
                inner = tb
            tb = tb.tb_next
        if getattr(e, "steps", None) is not None:
            self.n = e.steps
            return
        if inner is None:
            return
        comp = self.fp.by_filename.get(inner.tb_frame.f_code.co_filename)
        info = comp.lines.get(inner.tb_lineno) if comp is not None else None
        if info is None:
            return
        self._slot, k = info
        n_local = inner.tb_frame.f_locals.get("n", self.n)
        self.n = max(self.n, n_local + k)


class FastPath:
    """Executor (emulator.env.Executor) running generated code; compiled once per program."""

    def __init__(self, program: Program):
        self.program = program
        self._decoded = DecodeCache(decode_program)
        self._compiled: dict[tuple[int, int], tuple[Program, Compiled]] = {}
        self.by_filename: dict[str, Compiled] = {}
        self.main = self.compiled(program)     # compile now: a run then only executes
        self._spare: Optional[_State] = None

    def compiled(self, program: Program, extra_label: Optional[int] = None) -> Compiled:
        key = (id(program), -1 if extra_label is None else extra_label)
        hit = self._compiled.get(key)
        if hit is None or hit[0] is not program:
            extra = frozenset() if extra_label is None else frozenset([extra_label])
            code = self._decoded.get(program)
            try:
                comp = compile_program(code, extra)
            except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
                comp = interpreted(code)      # Python could not compile it: still exact, slower
            self.by_filename[comp.filename] = comp
            hit = (program, comp)
            self._compiled[key] = hit
        return hit[1]

    def run(self, env: Env, r1: int, budget: int = DEFAULT_BUDGET) -> RunResult:
        """interpreter.execute (stack region, tail calls, errors), inline: it is per packet."""
        st = self._spare               # state and stack kept between runs (None while in use,
        self._spare = None             # e.g. when a helper runs this executor again)
        if st is None:
            st = _State(self)
        st.budget = budget
        st.n = 0
        st.depth = 0
        if env is not st.env or env.mem is not st.mem:
            st.prepare(env, budget)
        stack = st.region
        zero = st.zero
        zero[:] = _ZERO_STACK
        mem = env.mem
        program = self.program
        r1 &= M64
        added = False
        try:
            mem.add(stack)
            added = True
            while True:
                try:
                    return RunResult(st.start(program, stack, r1, budget) & M64, None, st.n)
                except TailCall as tc:
                    program = tc.program
                    zero[:] = _ZERO_STACK
                except ProgramExit as pe:
                    return RunResult(int(pe.r0) & M64, None, st.n)
        except Stop as e:
            return RunResult(0, str(e), st.n)
        except Fault as e:
            return RunResult(0, str(e), st.n)
        except RecursionError:
            return RunResult(0, "internal: recursion too deep", st.n)
        except Exception as e:      # a bug here or in the env: never escape to the caller
            return RunResult(0, f"internal: {type(e).__name__}: {e}", st.n)
        finally:
            if added:
                try:
                    mem.remove(stack)
                except ValueError:
                    pass
            self._spare = st

    def source(self) -> str:
        """The generated Python code (for reading and debugging)."""
        return self.compiled(self.program).source


def run(program: Program, env: Env, r1: int, budget: int = DEFAULT_BUDGET) -> RunResult:
    return FastPath(program).run(env, r1, budget)
