"""The fast executor: each program becomes one generated Python function.

Same interface and results as the reference interpreter (emulator.interp.interpreter),
checked instruction for instruction by tests; only the speed differs.  The parts:
codegen.py (the generator, with emit_memory.py and the templates of isa.semantics),
cfg.py (labels, check points), regions.py (the region caches), runloop.py (the run loop
the interpreter uses too).  How (docs/interpreter.md):
- step counting and the budget cost nothing per instruction: budget checks sit at check
  points only (entries, call targets, return points, back-edge targets: every cycle goes
  through one), each for the longest way to the next one, and after helper calls; when one
  could be exceeded, the interpreter runs the rest of the activation, so even that outcome
  is the oracle's;
- map references (lddw with a map source) are resolved once per (env, program) when the
  env says they are constant (the runtime's XdpEnv), and then read from a list;
- faults keep no bookkeeping on the hot path: the traceback's line number in the
  generated code tells which instruction faulted.
"""
from __future__ import annotations

from functools import partial
from typing import Optional

from emulator.runtime.env import Env, ProgramExit, RunResult, TailCall
from emulator.interp import interpreter
from emulator.interp.codegen import Compiled, compile_program, interpreted
from emulator.interp.helpertable import HelperTable, defined_in
from emulator.interp.interpreter import DecodeCache, decode_program
from emulator.interp.regions import NO_PLAIN, NO_STORE, EntryCaches, cacheable, plain_at
from emulator.interp.runloop import (DEFAULT_BUDGET, Stop, callback_args, callback_index, check_call_depth,
                                     execute, frame_top, new_stack, packet_bounds, zeroer)
from emulator.runtime.memory import Fault
from isa import layout
from isa.opcodes import M64
from isa.program import Program
from isa.semantics import atomic

_TOP = layout.STACK_TOP
_NO_CACHES = (*NO_PLAIN, *NO_STORE)


def _no_caches(a: int) -> tuple:
    return _NO_CACHES


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
            and defined_in(cls, "lddw_value") is defined_in(cls, "LDDW_CONSTANT"))


class _State:
    """What generated code reads from its `st` argument; also the helpers' `Caller`."""
    __slots__ = ("fp", "env", "mem", "budget", "steps", "depth", "ctx", "stack", "helper", "compiled",
                 "cacheable", "_slot", "rc", "region", "clear", "hf", "vm", "lv", "lvs",
                 "lddw_const", "lv_prog", "at")

    def __init__(self, fp: "FastPath"):
        self.fp = fp
        self.env = self.mem = None
        self.compiled: Optional[Compiled] = None
        self.rc = EntryCaches()         # the region caches a run starts with
        self.vm = _UNVERSIONED          # MV: the memory whose version tells regions changed
        self.lv = _NO_LDDW_CACHE        # LV: the running program's resolved map references
        self.lvs: dict[int, tuple[Program, list]] = {}     # id(program) -> (program, LV), this env
        self.lddw_const = False
        self.lv_prog: Optional[Program] = None     # the program self.lv was last made for
        self.region = new_stack()       # the stack, kept from run to run
        self.clear = zeroer(self.region)
        self.steps = 0

    def prepare(self, env: Env, budget: int) -> "_State":
        """Ready for a run on `env` (a state is reused from run to run)."""
        self.budget = budget
        self.steps = 0
        self.depth = 0
        if env is not self.env or env.mem is not self.mem:
            self.env = env
            self.mem = env.mem
            self.helper = env.helper
            self.hf = HelperTable(env)
            self.cacheable = cacheable(env.mem)
            # at(a): the load and store caches (P, PB, PE, PW, W, WB, WE) set to the plain
            # region holding address `a` (a pointer a helper returned), or empty
            self.at = partial(plain_at, env.mem) if self.cacheable else _no_caches
            self.vm = env.mem if self.cacheable else _UNVERSIONED
            self.lvs = {}
            self.lddw_const = _lddw_constant(env)
            self.lv_prog = None
            self.rc.forget()
        return self

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
        self.steps = irun.steps
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
        rc = self.rc
        if rc.first is None:
            rc.first = region
        if region.writable and not WE:      # W empty (e.g. after a helper call)
            return v, data, region.base, end, True, HK, HB, HE, data, region.base, end
        return v, data, region.base, end, region.writable, HK, HB, HE, W, WB, WE

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
        check_call_depth(depth)
        if idx not in comp.labels:
            comp = self.fp.compiled(comp.code.program, idx)
        a = callback_args(args)
        self.rc.empty()
        saved, steps = self.depth, self.steps
        self.steps = 0      # a callback invocation has a budget of its own (runloop.py)
        try:
            return comp.fn(idx, a[0], a[1], a[2], a[3], a[4], frame_top(depth), depth, self)
        except BaseException as e:
            e.outer_steps = steps       # what the run reports: its caller's count (the outermost wins)
            raise
        finally:
            self.depth, self.steps = saved, steps

    # --- entry for runloop.execute()
    def start(self, program: Program, stack, r1: int, budget: int) -> int:
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
        if self.cacheable:
            rc = self.rc
            seen = rc.seen     # EntryCaches.start when the previous start's caches hold, inline
            v = self.mem.version
            if v == seen[0] + 2 and r1 == seen[1] and rc.first is seen[2]:
                rc.hook = seen[3]
                rc.plain = seen[4]
                rc.seen = (v, r1, seen[2], seen[3], seen[4])
            else:
                rc.refresh(self.mem, r1)
        else:
            self.rc.empty()
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
        # an exception from inside a callback: the run's count is its caller's
        outer = getattr(e, "outer_steps", None)
        if outer is not None:
            self.steps = outer
        if getattr(e, "steps", None) is not None:
            if outer is None:
                self.steps = e.steps
            return
        if inner is None:
            return
        comp = self.fp.by_filename.get(inner.tb_frame.f_code.co_filename)
        info = comp.lines.get(inner.tb_lineno) if comp is not None else None
        if info is None:
            return
        self._slot, k = info
        if outer is None:
            n_local = inner.tb_frame.f_locals.get("n", self.steps)
            self.steps = max(self.steps, n_local + k)


class FastPath:
    """Executor (emulator.runtime.env.Executor) running generated code; compiled once per program."""

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
        st = self._spare               # state and stack kept between runs (None while in use,
        self._spare = None             # e.g. when a helper runs this executor again)
        if st is None:
            st = _State(self)
        st.budget = budget
        st.steps = 0
        st.depth = 0
        if env is not st.env or env.mem is not st.mem:
            st.prepare(env, budget)
        rr = execute(st, self.program, env, r1, st.region, st.clear)     # never raises an Exception
        self._spare = st
        return rr

    def source(self) -> str:
        """The generated Python code (for reading and debugging)."""
        return self.compiled(self.program).source


def run(program: Program, env: Env, r1: int, budget: int = DEFAULT_BUDGET) -> RunResult:
    return FastPath(program).run(env, r1, budget)
