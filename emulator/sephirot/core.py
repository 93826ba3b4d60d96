"""Sephirot, the hXDP VLIW core, as a cycle model: the row-by-row reference engine and the
executor (`emulator.runtime.env.Executor`) both engines run under.

Row semantics are the instruction-memory ABI of isa/image.py (docs/sephirot.md):
1. hardware bounds checks of the row (image sidecar, `bounds` lanes) before it executes;
2. datapath lanes (ALU, memory, lddw) read registers and memory as at row start; their
   register writes and stores take effect together at the end of the datapath;
3. control lanes, in lane order (lane 0 first = highest priority), see those writes: a
   call runs its helper (its r0 is written at commit), the first taken branch or exit ends
   the row's control work.
Instruction meanings come from isa.semantics (alu, jump_taken, atomic, ...); memory, helpers
and lddw values from the Env, exactly as the interpreter uses them.

Timing (timing.py, cycles relative to core start): rows issue one per cycle from
`start_cycles`; a row waits (stall causes in stats.py) until its load addresses, operands
and packet frames are ready; an exit ends the packet at its IF (early exit) or when r0 is
committed.  The stream of packets is clocked by aps.StreamClock.
"""
from __future__ import annotations

from typing import Callable, Optional

from isa import layout
from emulator.runtime.env import Env, ProgramExit, RunResult, TailCall, budget_exhausted
from emulator.runtime.memory import Fault, Region
from emulator.sephirot.aps import StreamClock
from emulator.sephirot.decode import LOADS, Decoded, RowInfo, ScheduleViolation, decode_image
from emulator.sephirot.stats import FIELD_MASK, PacketStats, StreamStats, unpack_lanes
from emulator.sephirot.timing import (DEFAULT_TIMING, Timing, call_timing, exit_timing, latency_needs_key,
                                      waits_whole_packet)
from isa.image import Image
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M64, Kind
from isa.uapi import XDP_PASS, XDP_REDIRECT, XDP_TX
from isa.semantics import alu, atomic, endian, jump_taken, movsx, neg, sext

STACK_BASE = layout.STACK_TOP - layout.STACK_SIZE
ZERO_STACK = bytes(layout.STACK_SIZE)
NO_PACKET = (-(1 << 80), b"", 0)
NO_WAIT = -(1 << 80)
NO_BOUNDS = (None, None)
EMITTING = (XDP_PASS, XDP_TX, XDP_REDIRECT)


class Stop(Exception):
    """Ends a packet abnormally (fault, budget, violation) at relative cycle `t`."""

    def __init__(self, reason: str, violation: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.violation = violation


class End(Exception):
    """Ends a packet normally with action r0, the exit resolving at relative cycle `e`."""

    def __init__(self, r0: int, e: int):
        super().__init__(r0)
        self.r0 = r0
        self.e = e


class NoCallbacks:
    """The `Caller` Sephirot offers helpers: it has no call stack for bpf_loop callbacks."""

    def call(self, func_addr: int, args: tuple) -> int:
        raise Fault("bpf_loop callbacks are not supported by Sephirot (no call stack; "
                    "the compiler rejects bpf_loop)")


NO_CALLBACKS = NoCallbacks()


class RunState:
    """Everything one packet's run changes; both engines read and write it."""
    __slots__ = ("env", "mem", "ctx", "timing", "nf", "d0", "e0", "regs", "rdy", "t", "last_row",
                 "helper_free", "last_commit", "rows", "lp", "stalls", "trace",
                 "fr0", "stk", "r0", "e", "pkt", "pv", "maxr", "wp", "bde", "kb")

    def __init__(self, env: Env, mem, ctx: int, timing: Timing, fr0: int = 0, nf: int = 1, d0: int = 0,
                 e0: int = 0):
        self.env, self.mem, self.ctx, self.timing = env, mem, ctx, timing
        self.d0, self.e0 = d0, e0          # packet data / data_end when the run started (frames)
        self.fr0, self.nf = fr0, nf        # frame j is readable from cycle fr0 + j + 1; nf frames
        self.regs = [0] * 11
        self.rdy = [0] * 11                # cycle each register's value is ready from
        self.t = timing.start_cycles       # issue cycle of the next row
        self.last_row = -1                 # previous row executed (forwarding checks), -1 none
        self.helper_free = 0               # cycle the helper module can start a new call
        self.last_commit = 0               # cycle from which every store is in the difference buffer
        self.rows = 0
        self.lp = 0                        # slot counters, packed (stats.pack_slots)
        self.stalls: dict = {}
        self.trace: Optional[list] = None
        self.stk: Optional[bytearray] = None   # the stack's bytes (fast engine's direct access)
        self.r0 = 0                        # the action and the cycle the exit resolved at
        self.e = 0
        self.maxr = timing.max_rows        # row budget of this run
        self.pkt = None                    # the packet's memory region (fast engine's direct access)
        self.pv = NO_PACKET
        # fast engine: the cycle from which every frame is in (whole_packet(); NO_WAIT without
        # a packet): no frame can stall a row issued from then on
        self.wp = fr0 + nf - 1 if e0 > d0 else NO_WAIT
        # fast engine: (xdp_md.data, data_end) as a bounds check would read them now, when the
        # run read them from the context itself (Sephirot.run sets it), else (None, None)
        self.bde = NO_BOUNDS
        # fast engine: r1 is the XDP context, whose data/data_end only helpers that move the
        # packet change (a store to the packet bytes or a map helper leaves them)
        self.kb = False

    @property
    def slots(self) -> int:
        return self.lp & FIELD_MASK

    def pkt_view(self) -> tuple:
        """(base, bytes, length) of the packet region as it is now (helpers may move it)."""
        r = self.pkt
        self.pv = NO_PACKET if r is None else (r.base, r.data, len(r.data))
        return self.pv

    def stall(self, cause: str, n: int) -> None:
        if n > 0:
            self.stalls[cause] = self.stalls.get(cause, 0) + n

    def frame_need(self, addr: int, size: int) -> int:
        """Earliest issue cycle for a row whose ID reads [addr, addr+size) (0: no wait)."""
        if self.d0 <= addr < self.e0:
            last = min(addr + size, self.e0) - 1 - self.d0
            return self.fr0 + last // self.timing.frame_bytes
        return 0

    def whole_packet(self) -> int:
        """Cycle from which the last frame is readable, minus one (aps.Admission.frame_ready)."""
        return self.fr0 + self.nf - 1


def map_key_size(decoded: Decoded, handle: int) -> int:
    """Key size of the map whose `lddw` handle is in r1 (0 if it is not one)."""
    idx = (handle - layout.MAP_HANDLE_BASE) // 0x100
    maps = decoded.image.maps
    if 0 <= idx < len(maps) and (handle - layout.MAP_HANDLE_BASE) % 0x100 == 0:
        return maps[idx].key_size
    return 0


def do_call(st: RunState, decoded: Decoded, num: int, t: int) -> int:
    """Run helper `num` for a call row issued at `t`; returns r0 and sets r0's ready time.
    May raise Fault, ProgramExit or TailCall (handled by the executor)."""
    r = st.regs
    args = (r[1], r[2], r[3], r[4], r[5])
    key = map_key_size(decoded, r[1]) if latency_needs_key(num) else 0
    ct = call_timing(st.timing, num, args, key)
    st.helper_free = t + ct.ready
    if ct.commit is not None:
        st.last_commit = max(st.last_commit, t + ct.commit)
    st.rdy[0] = t + ct.ready
    return int(st.env.helper(num, args, NO_CALLBACKS)) & M64


def exit_cycle(st: RunState, t: int, plain: bool) -> int:
    """Relative cycle at which an exit issued at `t` resolves (the last busy cycle)."""
    et = exit_timing(st.timing, plain)
    e = t + et.offset
    if et.readback is not None:
        e = max(e, st.rdy[0] + et.readback)
    st.stall("exit_wait", e - t)
    return e


def _region_load(reg: Region, off: int, size: int) -> int:
    """Memory.load of [off, off + size) of a region known to hold it (found by Memory.find)."""
    if off + size > len(reg.data):
        raise Fault(f"invalid {size}-byte access", reg.base + off)
    if reg.hook is not None:
        return reg.hook.load(off, size)
    return int.from_bytes(reg.data[off:off + size], "little")


# ---------------------------------------------------------------- the row-by-row engine

def _operand(r: list, op) -> int:
    return r[op.insn.src] if op.spec.reg_src else op.insn.imm & M64


def issue_time(st: RunState, info: RowInfo, t: int, regs: list) -> int:
    """Apply the stall rules to a row that could issue at `t`; returns its issue cycle."""
    tm = st.timing
    rdy = st.rdy
    need = t
    if tm.load_address_stall:
        for op in info.data:
            if op.spec.kind in LOADS or op.spec.kind == Kind.ATOMIC:
                need = max(need, rdy[op.addr_reg] - 1)
    st.stall("load_address", need - t)
    t = need
    for op in info.data:
        for reg in op.reads:
            need = max(need, rdy[reg] - 2)
    for op in info.control:
        if op.spec.kind != Kind.EXIT:        # an exit's r0 wait is exit_wait (exit_cycle)
            for reg in op.reads:
                need = max(need, rdy[reg] - 2)
        if op.spec.kind in (Kind.CALL, Kind.CALLX):
            need = max(need, st.helper_free - 2)
    st.stall("helper", need - t)
    t = need
    if st.e0 > st.d0:
        for op in info.data:
            if op.addr_reg is not None and (op.spec.kind in LOADS or op.spec.kind == Kind.ATOMIC):
                a = (regs[op.addr_reg] + op.insn.off) & M64
                need = max(need, st.frame_need(a, op.spec.size))
        for op in info.control:
            if op.spec.kind == Kind.CALL and waits_whole_packet(op.insn.imm):
                need = max(need, st.whole_packet())
    st.stall("frame", need - t)
    t = need
    groups = -(-info.mem_ops // tm.data_bus_ports) if info.mem_ops else 1
    if groups > 1:
        st.stall("data_bus", groups - 1)
        t += groups - 1
    return t


def bounds_ctx(st: RunState) -> tuple[int, int]:
    """xdp_md.data and data_end, as a hardware bounds check reads them."""
    try:
        return st.mem.load(st.ctx, 4), st.mem.load(st.ctx + 4, 4)
    except Fault:
        raise Fault("a hardware bounds check needs an XDP context in r1") from None


def bounds_fail(st: RunState, info: RowInfo) -> Optional[int]:
    """The action of the first failing hardware bounds check of the row, or None."""
    if not info.bounds:
        return None
    data, end = bounds_ctx(st)
    for length, action in info.bounds:
        if data + length > end:
            return action & M64
    return None


def execute_row(st: RunState, decoded: Decoded, info: RowInfo, t: int, ev: Optional[dict] = None) -> int:
    """Run one row issued at `t`.  Returns the next row index, or raises End / Stop /
    Fault / TailCall / ProgramExit.  `ev` (tracing) receives what the row did."""
    r = st.regs
    mem = st.mem
    writes = []
    stores = []
    for op in info.data:
        ins = op.insn
        spec = op.spec
        k = spec.kind
        if k == Kind.ALU or k == Kind.MOV:
            writes.append((ins.dst, alu(spec.op, r[ins.dst], _operand(r, op), spec.width)))
        elif k == Kind.ALU3:
            b = r[ins.imm] if spec.imm_reg else ins.imm & M64
            writes.append((ins.dst, alu(spec.op, r[ins.src], b, spec.width)))
        elif k == Kind.LDX or k == Kind.LDX48:
            writes.append((ins.dst, mem.load((r[ins.src] + ins.off) & M64, spec.size)))
        elif k == Kind.LDXSX:
            v = mem.load((r[ins.src] + ins.off) & M64, spec.size)
            writes.append((ins.dst, sext(v, spec.size * 8) & M64))
        elif k == Kind.ST:
            stores.append(((r[ins.dst] + ins.off) & M64, spec.size, ins.imm & M64))
        elif k == Kind.STX or k == Kind.STX48:
            stores.append(((r[ins.dst] + ins.off) & M64, spec.size, r[ins.src]))
        elif k == Kind.LDDW:
            if ins.src == LDDW_IMM64:
                v = op.imm64
            elif ins.src == LDDW_FUNC:
                raise Fault("lddw of a function address (bpf_loop callback) is not supported by Sephirot")
            else:
                v = st.env.lddw_value(ins.src, op.imm64)
            writes.append((ins.dst, v & M64))
        elif k == Kind.NEG:
            writes.append((ins.dst, neg(r[ins.dst], spec.width)))
        elif k == Kind.MOVSX:
            writes.append((ins.dst, movsx(r[ins.src], spec.variant, spec.width)))
        elif k == Kind.END:
            writes.append((ins.dst, endian(spec.op, r[ins.dst], spec.width)))
        elif k == Kind.ATOMIC:
            addr = (r[ins.dst] + ins.off) & M64
            new, sv, r0v = atomic(spec.op, mem.load(addr, spec.size), r[ins.src], r[0], spec.width)
            stores.append((addr, spec.size, new))
            if sv is not None:
                writes.append((ins.src, sv))
            if r0v is not None:
                writes.append((0, r0v))
        else:   # pragma: no cover - decode puts only datapath kinds here
            raise Fault(f"unexpected {spec.key} in a datapath lane")
    for addr, size, v in stores:
        mem.store(addr, size, v)
    rdy = st.rdy
    for reg, v in writes:
        r[reg] = v
        rdy[reg] = t + 3
    if stores:
        st.last_commit = max(st.last_commit, t + 4)
    if ev is not None:
        ev["writes"] = {reg: v for reg, v in writes}
        ev["stores"] = stores
    nxt = info.index + 1
    call_r0 = None
    for op in info.control:
        ins = op.insn
        k = op.spec.kind
        if k == Kind.JCOND:
            spec = op.spec
            if jump_taken(spec.op, r[ins.dst], _operand(r, op), spec.width):
                nxt = _take_branch(st, t, op, ev, f"lane {op.lane}: branch taken -> row {op.target}")
                break
        elif k == Kind.JA:
            nxt = _take_branch(st, t, op, ev, f"lane {op.lane}: goto row {op.target}")
            break
        elif k == Kind.CALL or k == Kind.CALLX:
            num = ins.imm if k == Kind.CALL else r[ins.dst]
            st.t = t
            call_r0 = do_call(st, decoded, num, t)
            r[0] = call_r0
            if ev is not None:
                ev["writes"][0] = call_r0
                ev["call"] = f"lane {op.lane}: helper {num} -> r0 = {call_r0:#x}"
        elif k == Kind.EXIT:
            if ev is not None:
                ev["control"] = f"lane {op.lane}: exit r0 = {r[0]}"
            raise End(r[0], exit_cycle(st, t, True))
        elif k == Kind.PEXIT:
            if ev is not None:
                ev["control"] = f"lane {op.lane}: exit {ins.imm & M64}"
            raise End(ins.imm & M64, exit_cycle(st, t, False))
        elif k == Kind.BOUNDS:
            continue
        else:
            raise Fault(f"{op.spec.key} is not supported by Sephirot (BPF-to-BPF and kfunc calls must "
                        f"be inlined by the compiler)")
    else:
        st.t = t + 1
    return nxt


def _take_branch(st: RunState, t: int, op, ev: Optional[dict], what: str) -> int:
    """A taken branch: the penalty, the trace line; the row it goes to."""
    if ev is not None:
        ev["control"] = what
    st.t = t + 1 + st.timing.branch_taken_penalty
    st.stall("branch", st.timing.branch_taken_penalty)
    return op.target


def run_core(st: RunState, decoded: Decoded, row: int = 0) -> None:
    """Execute `decoded` from `row` until the exit, which sets st.r0 and st.e (the cycle
    it resolves at), or a Stop."""
    try:
        _run_rows(st, decoded, row)
    except End as end:
        st.r0, st.e = end.r0, end.e


def _run_rows(st: RunState, decoded: Decoded, row: int) -> None:
    rows = decoded.rows
    n = len(rows)
    while True:
        if not 0 <= row < n:
            raise Stop(f"execution left the image (row {row}, image has {n} rows)")
        info = rows[row]
        if st.rows >= st.maxr:
            raise Stop(f"{budget_exhausted(st.maxr, 'row')} at row {row}")
        if info.error:
            raise Stop(f"{info.error} at row {row}")
        if info.violation:
            raise Stop(f"schedule violation: {info.violation}", True)
        if st.last_row >= 0:
            v = decoded.edge_violation(st.last_row, row)
            if v:
                raise Stop(f"schedule violation: {v}", True)
        stalls_before = dict(st.stalls) if st.trace is not None else None
        t = issue_time(st, info, st.t, st.regs)
        st.t = t
        st.rows += 1
        st.lp += info.pack
        ev = None
        if st.trace is not None:
            ev = {"t": t, "row": row, "writes": {}, "stores": [], "control": None,
                  "stalls": _diff(stalls_before, st.stalls)}
            st.trace.append(ev)
        try:
            action = bounds_fail(st, info)
            if action is not None:
                if ev is not None:
                    ev["control"] = f"hardware bounds check failed: exit {action}"
                raise End(action, t)
            st.last_row = row
            row = execute_row(st, decoded, info, t, ev)
        except Fault as f:
            raise Stop(f"{f} at row {info.index}") from None


def _diff(before: Optional[dict], after: dict) -> dict:
    before = before or {}
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# ---------------------------------------------------------------- the executor

class Sephirot:
    """The hXDP core executing an Image on an Env, with cycle accounting over the stream
    of packets it is given (one `run` per packet, in arrival order).

    `compile_fn(program) -> Image` builds the image of a tail call's target (the caller
    provides it: the emulator does not import compiler passes).  `engine` is "fast"
    (generated code, fast.py) or "core" (this module's row-by-row reference).  `strict`
    raises ScheduleViolation instead of reporting it in RunResult.error (for tests)."""

    def __init__(self, image: Image, *, timing: Timing = DEFAULT_TIMING, clock_mhz: Optional[float] = None,
                 compile_fn: Optional[Callable] = None, engine: str = "fast", strict: bool = False):
        if clock_mhz is not None and clock_mhz != timing.clock_mhz:
            timing = timing.with_(clock_mhz=clock_mhz)
        self.image = image
        self.timing = timing
        self.clock_mhz = timing.clock_mhz
        self.compile_fn = compile_fn
        self.engine = engine
        self.strict = strict
        self.decoded = decode_image(image)
        self.lanes = self.decoded.lanes
        self._images: dict[int, tuple] = {}
        self._fast: dict[int, object] = {}
        self._stack = Region("stack", STACK_BASE, bytearray(layout.STACK_SIZE), True, "stack")
        self._stack_view = memoryview(self._stack.data)
        self._run_main = self._engine_for(self.decoded, False)
        self.clock = StreamClock(timing)
        self.stats = StreamStats(self.clock_mhz, self.lanes)
        self.trace_packets: set[int] = set()     # packet numbers (0-based) to trace
        self.traces: dict[int, list] = {}
        self.trace_results: dict[int, dict] = {}
        self._last: Optional[tuple] = None    # the latest packet's figures (see `last`)

    def reset_stream(self) -> None:
        """Start a new stream: clock and statistics from zero."""
        self.clock.reset()
        self.stats = StreamStats(self.clock_mhz, self.lanes)
        self.traces = {}

    def format_trace(self, packet: int) -> str:
        """The pipeline of traced packet `packet` (listed in `trace_packets` before the run)."""
        from emulator.sephirot.trace import format_trace
        return format_trace(self.traces.get(packet), self.decoded, packet, self.trace_results.get(packet))

    # -- engines
    def _engine_for(self, decoded: Decoded, traced: bool):
        if self.engine == "core" or traced:
            return run_core
        fp = self._fast.get(id(decoded))
        if fp is None:
            from emulator.sephirot.fast import compile_fast
            fp = compile_fast(decoded, self.timing)
            self._fast[id(decoded)] = fp
        return fp.run

    def _tail_image(self, program) -> Decoded:
        hit = self._images.get(id(program))
        if hit is None or hit[0] is not program:
            if self.compile_fn is None:
                raise Stop(f"tail call to {program.name or 'a program'}: no compiler was given "
                           f"to build its image (Sephirot(compile_fn=...))")
            try:
                image = self.compile_fn(program)
            except Exception as e:   # the target does not compile: end the packet clearly
                raise Stop(f"tail call to {program.name or 'a program'}: cannot compile it: {e}") from None
            hit = (program, decode_image(image))
            self._images[id(program)] = hit
        return hit[1]

    @property
    def last(self) -> Optional[PacketStats]:
        """The figures of the latest packet (built on demand: the per-packet path keeps a tuple)."""
        if self._last is None:
            return None
        cyc, occ, rows, lp, stalls, lat, fin, fout, action, error, violation = self._last
        return PacketStats(cyc, occ, rows, lp & FIELD_MASK, unpack_lanes(lp, self.lanes), stalls, lat,
                           fin, fout, action, error, violation)

    def run(self, env: Env, r1: int, budget: Optional[int] = None) -> RunResult:
        """One packet (r1 = its context).  `budget`: rows this run may execute (default the
        timing table's max_rows), like the interpreter's instruction budget."""
        stats = self.stats
        pkt_no = stats.packets
        traced = pkt_no in self.trace_packets if self.trace_packets else False
        mem = env.mem
        tm = self.timing
        r1 &= M64
        d0 = e0 = 0
        ctx = None                       # the context region, when r1 points into one
        try:
            reg, off = mem.find(r1, 8)
            if reg.kind == "ctx":          # xdp_md.data / data_end, read as a program would
                ctx = (reg, off)
                d0, e0 = _region_load(reg, off, 4), _region_load(reg, off + 4, 4)
        except Fault:
            pass
        clock = self.clock
        _, x, c, nf, wait = clock.admit_t(e0 - d0 if e0 > d0 else 0)
        st = RunState(env, mem, r1, tm, x - c, nf, d0, e0)
        if budget is not None:
            st.maxr = max(0, int(budget))
        if ctx is not None:
            st.bde = (d0, e0)          # what bounds_ctx would read until a helper or a store runs
            st.kb = True
        if e0 > d0:
            try:
                reg = mem.find(d0, 1)[0]
                if reg.kind == "packet" and reg.hook is None and reg.writable:
                    st.pkt = reg
                    st.pv = (reg.base, reg.data, len(reg.data))       # st.pkt_view(), inline
            except Fault:
                pass
        if traced:
            st.trace = []
        if wait:
            st.stalls["aps_buffer"] = wait
        stack = self._stack
        self._stack_view[:] = ZERO_STACK       # program state self-reset (§4.2); a view: faster
        st.stk = stack.data
        r0, error, violation, e = 0, None, False, st.t
        decoded = self.decoded
        try:
            mem.add(stack)
            regs = st.regs
            regs[1] = r1
            regs[10] = layout.STACK_TOP
            while True:
                try:
                    (self._run_main if decoded is self.decoded and not traced
                     else self._engine_for(decoded, traced))(st, decoded)
                    r0, e = st.r0, st.e
                    break
                except TailCall as tc:
                    st.bde = NO_BOUNDS         # helpers ran: the context is read again
                    decoded = self._tail_image(tc.program)
                    stack.data[:] = ZERO_STACK
                    st.t = max(st.t + 1, st.helper_free) + tm.tail_call_cycles
                    st.rdy = [0] * 11
                    regs = st.regs
                    regs[:] = [0] * 11
                    regs[1] = r1
                    regs[10] = layout.STACK_TOP
                    st.last_row = -1
                    continue
        except ProgramExit as pe:
            r0, e = int(pe.r0) & M64, max(st.t, st.helper_free)
        except Stop as s:
            error, violation, e = s.reason, s.violation, st.t
        except Fault as f:
            error, e = str(f), st.t
        except RecursionError:
            error = "internal: recursion too deep"
        except Exception as ex:       # a bug here or in the env: never escape to the caller
            error = f"internal: {type(ex).__name__}: {ex}"
        finally:
            try:
                mem.remove(stack)
            except ValueError:
                pass
        if violation and self.strict:
            raise ScheduleViolation(error)
        out = 0
        if error is None and e0 > d0 and r0 in EMITTING:
            try:          # data_end - data_meta: the region is still the context (r1 + 4, + 8)
                reg, off = ctx
                out = _region_load(reg, off + 4, 4) - _region_load(reg, off + 8, 4)
            except Fault:
                out = 0
        occupancy = e + 1
        end, _, _, latency = clock.depart_t(x, c, occupancy, st.last_commit, out)
        lp = st.lp
        slots = lp & FIELD_MASK
        rows = st.rows
        stalls = st.stalls
        fout = -(-out // tm.frame_bytes) if out > 0 else 0     # frames(out)
        action = r0 if error is None else 0
        nxt = clock.next_arrival                                   # clock.span, inline
        stats.add_run(end - x, rows, slots, lp ^ slots, stalls, latency, action, error, violation,
                      (end if end > nxt else nxt) - (clock.first_arrival or 0))
        self._last = (end - x, occupancy, rows, lp, stalls, latency, nf, fout, action, error, violation)
        extra = {"cycles": end - x, "occupancy": occupancy, "rows": rows, "latency": latency,
                 "frames_in": nf, "frames_out": fout}
        if stalls:
            extra["stalls"] = dict(stalls)
        if traced:
            self.traces[pkt_no] = st.trace
            self.trace_results[pkt_no] = {"action": action, "error": error, **extra}
        return RunResult(action, error, slots, extra)
