"""The fast path's code generator: a decoded program becomes one Python function.

`fn(bb, r1, r2, r3, r4, r5, r10, depth, st) -> r0` is one ``while True:`` loop with a
binary-search dispatch on ``bb``, the instruction index of a label (entry, jump and call
targets, return points); each label starts an *arm*: the instructions from it, falling
through (past conditional branches and helper calls), up to the next label or an
instruction that does not fall through (docs/interpreter.md has the whole picture).
The generator plans labels, inlining, duplication and budget check points (cfg.py), then
emits each instruction with the method ``k_<kind>`` of its ISA table kind: register
operations paste the expression templates of isa.semantics, memory operations are
emit_memory.py's, control flow and calls are here.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

from isa import layout
from emulator.runtime.env import ProgramExit
from emulator.interp.cfg import cut_points, falls_through, reach, successors, written_registers
from emulator.interp.emit_memory import MEMORY_GLOBALS, MemoryEmitter
from emulator.interp.interpreter import Decoded
from emulator.interp.runloop import BAD_TARGET_FAULT, CALL_DEPTH_FAULT, FELL_OFF, MAX_FRAMES, Stop
from emulator.runtime.memory import Fault
from isa.helpers import returns_pointer
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M32, M64, Kind, OpSpec
from isa.semantics import (TEMPLATE_GLOBALS, alu_expr, cond_expr, end_expr, movsx_expr,
                           neg_expr)

MAXF = MAX_FRAMES
MAX_NESTING = 40          # inlined arms within one another (Python allows 100 indentation levels)
DUP_ARM = 48              # loop-free programs: arms up to this size (inlined ones included) are duplicated
DUP_CAP_FACTOR, DUP_CAP_EXTRA = 4, 400    # ... while the code stays under 4 n + 400 instructions

# namespace every generated function sees
GLOBALS = {**TEMPLATE_GLOBALS, **MEMORY_GLOBALS, "Fault": Fault, "Stop": Stop, "ProgramExit": ProgramExit}


def _h(v: int) -> str:
    return hex(v)


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


class Generator(MemoryEmitter):
    """One decoded program (or callback entry) as the source of `fn`."""

    def __init__(self, code: Decoded, extra_labels: frozenset):
        self.c = code
        self.n = code.size
        self.out: list[str] = []
        self.info: dict[int, tuple[int, int]] = {}
        self.cur: Optional[tuple[int, int]] = None
        ok = [not code.invalid[i] for i in range(self.n)]
        self.has_calls = any(ok[i] and code.specs[i].kind == Kind.CALL_LOCAL for i in range(self.n))
        self.r10_fixed = not any(ok[i] and 10 in written_registers(code.insns[i], code.specs[i])
                                 for i in range(self.n))
        # labels: where an arm starts.  Entry, call targets, return points and callback entries
        # are reached through the dispatch; so is a jump target with several ways in.  A jump
        # target with exactly one way in (that jump) is emitted inside the jump's `if`.
        required = {0} | {i for i in extra_labels if 0 <= i < self.n}
        ways_in: dict[int, int] = {}
        for i in range(self.n):
            if not ok[i]:
                continue
            spec, t = code.specs[i], code.targets[i]
            if spec.is_branch and t is not None:
                ways_in[t] = ways_in.get(t, 0) + 1
            elif t is not None:          # call_local target, lddw function address
                required.add(t)
            if spec.kind == Kind.CALL_LOCAL and i + 1 < self.n:
                required.add(i + 1)
            if falls_through(code.specs[i]) and i + 1 < self.n:
                ways_in[i + 1] = ways_in.get(i + 1, 0) + 1
        jump_targets = {code.targets[i] for i in range(self.n) if ok[i] and code.targets[i] is not None
                        and code.specs[i].is_branch}
        # budget checks: only at check points, the dispatched labels every cycle goes through
        # (entries, call targets, return points, targets of the DFS back edges), each for the
        # longest way to the next check point; and after each helper call (callbacks use steps)
        succ = successors(code, ok)
        self.checks = (required | cut_points(succ)) if self.n else set()
        self.reach = reach(succ, self.checks)
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
                if j in cand and self.c.specs[i].is_branch:
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
        return bool(self.c.invalid[last]) or not falls_through(self.c.specs[last])

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
                    if t in self.inline and self.c.specs[i].is_branch:
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
        self.emit(1, "n = st.steps; budget = st.budget; S = st.stack")
        self.emit(1, "r0 = r6 = r7 = r8 = r9 = 0")
        self.emit(1, "W = Q = None; WB = QB = 1; WE = QE = 0; P, PB, PE, PW = st.rc.plain; HK, HB, HE = st.rc.hook")
        if self.n and self.lddw_keys:
            self.emit(1, "LV = st.lv")
        if self.n and self.has_helpers:
            self.emit(1, "MV = st.vm")
        if self.has_calls:
            self.emit(1, "frames = []")
        if not self.n:
            self.emit(1, f"raise Stop({FELL_OFF!r}, 0)")
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
        while not self.c.invalid[i] and falls_through(self.c.specs[i]):
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
            self.ctx_regs -= written_registers(ins, spec)
            if copies_ctx:
                self.ctx_regs.add(ins.dst)
        last = chain[-1]
        if not falls_through(self.c.specs[last]):
            return
        nxt = last + 1
        self.cur = (self.c.slots[last], self.k)    # k: 0 after a helper call updated n
        if nxt >= self.n:
            self.emit(ind, f"raise Stop({FELL_OFF!r}, {self._end_slot(last)})")
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
        if spec.imm_reg:
            b, bc = f"r{ins.imm}", None
        else:
            bc = ins.imm & (M64 if spec.width == 64 else M32)
            b = _h(bc)
        self.emit(ind, f"r{ins.dst} = {alu_expr(spec.op, spec.width, f'r{ins.src}', b, bc)}")

    def k_neg(self, i, ins, spec, ind):
        self.emit(ind, f"r{ins.dst} = {neg_expr(spec.width, f'r{ins.dst}')}")

    def k_movsx(self, i, ins, spec, ind):
        self.emit(ind, f"r{ins.dst} = {movsx_expr(spec.variant, spec.width, f'r{ins.src}')}")

    def k_end(self, i, ins, spec, ind):
        d = f"r{ins.dst}"
        if spec.op == "le" and spec.width == 64:
            return          # the identity
        self.emit(ind, f"{d} = {end_expr(spec.op, spec.width, d)}")

    def _goto(self, i: int, ind: int) -> None:
        t = self.c.targets[i]
        if t is None:
            self.emit(ind, f"raise Fault({BAD_TARGET_FAULT!r})")
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
        self.emit(ind, f"st.steps = n + {self.k}; st.depth = depth; _mv = MV.version")
        if num.isdigit():     # a known helper: its function, looked up once per env (st.hf)
            self.emit(ind, f"r0 = st.hf[{num}]((r1, r2, r3, r4, r5), st)")
        else:
            self.emit(ind, f"r0 = st.helper({num}, (r1, r2, r3, r4, r5), st) & M64")
        self.ctx_regs.discard(0)
        self.emit(ind, "n = st.steps")
        self.emit(ind, "if MV.version != _mv: PB = WB = HB = QB = 1; PE = WE = HE = QE = 0")   # regions changed
        if num.isdigit() and returns_pointer(int(num)):     # r0 is read next: its region
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
            self.emit(ind, f"raise Fault({BAD_TARGET_FAULT!r})")
            return
        self.emit(ind, f"if depth >= {MAXF - 1}: raise Fault({CALL_DEPTH_FAULT!r})")
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
        self.emit(ind, "st.steps = n")
        self.emit(ind, "return r0")

    def k_exit(self, i, ins, spec, ind):
        self._exit(ind)

    def k_pexit(self, i, ins, spec, ind):
        self.emit(ind, f"r0 = {_h(ins.imm & M64)}")
        self._exit(ind)

    def k_bounds(self, i, ins, spec, ind):
        self.emit(ind, "_d, _e = st.bounds()")
        self.emit(ind, f"if _d + {ins.imm} > _e: st.steps = n + {self.k}; raise ProgramExit({_h(ins.off & M64)})")

    def k_nop(self, i, ins, spec, ind):
        self.emit(ind, "pass")

    def k_lddw(self, i, ins, spec, ind):
        d = f"r{ins.dst}"
        if ins.src == LDDW_IMM64:
            self.emit(ind, f"{d} = {_h(ins.imm & M64)}")
        elif ins.src == LDDW_FUNC:
            t = self.c.targets[i]
            if t is None:
                self.emit(ind, f"raise Fault({BAD_TARGET_FAULT!r})")
            else:
                self.emit(ind, f"{d} = {_h(layout.FUNC_BASE + t)}")
        else:
            k = self.lddw_keys[(ins.src, ins.imm)]
            self.emit(ind, f"{d} = LV[{k}]")
            self.emit(ind, f"if {d} is None: {d} = LV[{k}] = st.lddw({ins.src}, {ins.imm}) & M64")


def compile_program(code: Decoded, extra_labels: frozenset = frozenset()) -> Compiled:
    gen = Generator(code, extra_labels)
    source = gen.generate()
    filename = f"<fastpath {code.program.name} #{next(_serial)}>"
    ns = dict(GLOBALS)
    exec(compile(source, filename, "exec"), ns)
    return Compiled(code, ns["fn"], frozenset(gen.labels), gen.info, filename, source, len(gen.lddw_keys))


def _interpret(bb, r1, r2, r3, r4, r5, r10, depth, st):
    return st.finish(bb, st.steps, depth, (), (0, r1, r2, r3, r4, r5, 0, 0, 0, 0, r10))


def interpreted(code: Decoded) -> Compiled:
    """A stand-in for a program whose generated code Python refuses (far beyond real XDP
    sizes): every entry runs the interpreter, through the same path as a budget hand-over."""
    return Compiled(code, _interpret, frozenset(range(code.size)), {}, f"<interpreted {code.program.name}>",
                    "# interpreted\n", len(lddw_keys(code)))
