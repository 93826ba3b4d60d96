"""Sephirot's fast engine: the image's rows become generated Python code.

The blocks reachable from row 0 become one function (`run_all`): a binary decision tree on the
row number leads to each block's statements, and a block continues the loop with the next row
(registers in locals, the cycle counter and per-packet constants too).  A block entered by
a single edge is not in the tree: its statements follow that edge's jump or fall-through
directly (nested ifs, no dispatch), up to an indentation depth Python's parser accepts.
Images with very many reachable blocks get one function per block instead, built on first use.

Same results as the row-by-row engine (core.run_core): action, memory, errors AND every
cycle figure (tests/test_sephirot_fast.py checks both agree).  How:
- a block is a run of rows entered only at its first row; it ends at a row with a branch
  or exit, or before a row some branch targets;
- everything the core decides from the image alone is decided here at generation time:
  forwarding violations between rows of a block, malformed rows, data-bus groups, which
  operands can stall (only a helper's r0 can be late for an ALU operand; any register can
  be late by one cycle for a load address), the per-lane counters;
- the dynamic rules (stalls on register readiness, frames not yet received, helper
  latency, the exit's cycle) call the same functions as the core (core.do_call,
  core.exit_cycle, RunState.frame_need) or replicate their one-line arithmetic in the same
  order, so stall attributions match;
- per-packet work done once: the cycle from which no frame can stall (RunState.wp; frame
  rules are skipped from then on), xdp_md.data/data_end for the hardware bounds checks
  (RunState.bde, read again after a helper call or a store that could change them),
  helper latencies that depend only on the image (do_call's bookkeeping inline), the exit's
  cycle (exit_cycle inline), stalls added to the stall dict directly;
- register operations are the expression templates of isa.semantics (the interpreter's
  fast path pastes the same); xchg/cmpxchg call isa.semantics.atomic; which helpers keep
  the packet where it is comes from the helper table (isa.helpers), call and exit timing
  from timing.call_timing / exit_timing, like core.do_call and core.exit_cycle.
A block that could cross the row budget runs on the core engine instead (exact budget).
"""
from __future__ import annotations

import struct
from typing import Optional

from isa import layout
from emulator.runtime.env import ProgramExit
from emulator.interp.helpertable import HelperTable
from emulator.runtime.memory import Fault
from emulator.sephirot.core import (NO_CALLBACKS, End, Stop, bounds_ctx, bounds_fail, do_call, exit_cycle,
                                    run_core)
from emulator.sephirot.decode import LOADS, UNSUPPORTED_CALLS, Decoded, RowInfo
from emulator.sephirot.timing import (Timing, call_timing, exit_timing, latency_needs_args, latency_needs_key,
                                      waits_whole_packet)
from isa.helpers import keeps_packet
from isa.opcodes import LDDW_FUNC, LDDW_IMM64, M32, M64, Kind
from isa.semantics import (TEMPLATE_GLOBALS, alu_expr, atomic, atomic_alu_expr, atomic_base,
                           atomic_fetches, cond_expr, end_expr, movsx_expr, neg_expr, sext_load_expr)

S64 = 1 << 63
S32 = 1 << 31
MAX_BLOCK_ROWS = 48          # longer straight runs are split (bounded code size per function)
MAX_INDENT = 60           # deepest indentation an inlined block may start at (parser limit 100)
MAX_WHOLE_BLOCKS = 400       # more reachable blocks: one function per block instead of one in all

_STRUCT = {2: "<H", 4: "<I", 8: "<Q"}
_GLOBALS = {
    **TEMPLATE_GLOBALS, "NO_CALLBACKS": NO_CALLBACKS, "End": End, "Stop": Stop, "Fault": Fault,
    "ProgramExit": ProgramExit, "atomic": atomic, "do_call": do_call, "exit_cycle": exit_cycle,
    "bounds_fail": bounds_fail, "bounds_ctx": bounds_ctx,
}
for _n, _f in _STRUCT.items():       # packet and stack bytes: struct, no slice object per access
    _GLOBALS[f"U{_n}"] = struct.Struct(_f).unpack_from
    _GLOBALS[f"P{_n}"] = struct.Struct(_f).pack_into


def _get(buf: str, off: str, size: int) -> str:
    """Expression of the little-endian unsigned `size`-byte value at buf[off] (in bounds)."""
    if size == 1:
        return f"{buf}[{off}]"
    if size in _STRUCT:
        return f"U{size}({buf}, {off})[0]"
    return f"int.from_bytes({buf}[{off}:{off} + {size}], 'little')"


def _put(buf: str, off: str, size: int, v: str) -> str:
    """Statement storing `v` (already masked to `size` bytes) at buf[off] (in bounds)."""
    if size == 1:
        return f"{buf}[{off}] = {v}"
    if size in _STRUCT:
        return f"P{size}({buf}, {off}, {v})"
    return f"{buf}[{off}:{off} + {size}] = ({v}).to_bytes({size}, 'little')"


def _ends_block(info: RowInfo) -> bool:
    """A branch, an unconditional jump or an exit ends a block (so does a malformed row)."""
    return any(op.spec.is_branch or not op.spec.falls_through for op in info.control) or \
        bool(info.error or info.violation)


def _targets(decoded: Decoded) -> set:
    """Rows a block starts at: row 0, branch targets and the rows after conditional branches."""
    out = {0}
    for info in decoded.rows:
        for op in info.control:
            if op.spec.is_branch:
                out.add(op.target)
                if op.spec.falls_through:
                    out.add(info.index + 1)
    return out


class _Gen:
    def __init__(self, decoded: Decoded, timing: Timing):
        self.d = decoded
        self.tm = timing
        self.lines: list[str] = []
        self.consts: dict = {}
        # r10 never written: stack addresses are constants, accessed in the stack bytes
        self.whole = False
        self.cur: list = []
        self.r10_fixed = not any(10 in op.writes for info in decoded.rows for op in info.data + info.control)

    def stack_index(self, op) -> Optional[int]:
        """Offset in the 512-byte stack of a constant r10-relative access inside it."""
        if op.addr_reg != 10 or not self.r10_fixed:
            return None
        i = layout.STACK_SIZE + op.insn.off
        return i if 0 <= i and i + op.spec.size <= layout.STACK_SIZE else None

    def const(self, v) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = v
        return name

    def emit(self, ind: int, s: str) -> None:
        self.lines.append("    " * ind + s)

    # -- operands
    def reg(self, r: int) -> str:
        return f"r{r}" if self.whole else f"R[{r}]"

    def operand(self, op, width: int):
        """(expression, constant or None) of the second operand, truncated to width."""
        ins, spec = op.insn, op.spec
        if spec.reg_src:
            return self.reg(ins.src), None
        c = ins.imm & (M64 if width == 64 else M32)
        return hex(c), c

    def load(self, op) -> str:
        """Expression of a load: stack bytes, the packet's bytes (the region cached per run
        and after each helper call), else env.mem -- all three give what Memory.load gives."""
        si = self.stk.get(op.lane)
        size = op.spec.size
        if si is None:
            a = self.addr[op.lane]
            slow = f"load({a}, {size})"
            if size == 4 and op.spec.kind == Kind.LDX:     # xdp_md.data / data_end: BD, BE when known
                slow = (f"(BD if {a} == CXK and BD is not None else BE if {a} == CXK + 4 and BD is not None "
                        f"else {slow})")
            return f"({_get('PD', 'o', size)} if 0 <= (o := {a} - PB) <= PL - {size} else {slow})"
        return _get("STK", str(si), size)

    def store(self, op, v: str) -> str:
        si = self.stk.get(op.lane)
        size = op.spec.size
        mask = hex((1 << (8 * size)) - 1)
        if si is None:
            a = self.addr[op.lane]
            ind = "    " * self.ind
            return (f"if 0 <= (o := {a} - PB) <= PL - {size}:\n"
                    f"{ind}    {_put('PD', 'o', size, f'{v} & {mask}')}\n"
                    f"{ind}    if not KB: BD = None\n"       # r1 is not the XDP context: reread
                    f"{ind}else: store({a}, {size}, {v}); BD = None")
        return _put("STK", str(si), size, f"{v} & {mask}")

    def goto(self, ind: int, src: int, target: int, t_next: str) -> None:
        """Leave the block for row `target` after row `src`; a forwarding violation on this
        edge is known now (the core reports it when `target` is reached, after its budget
        check, and after the target's own malformed-row/violation checks)."""
        rows = self.d.rows
        e = self.emit
        if self.whole:
            e(ind, f"lr = {src}" if t_next == "t" else f"t = {t_next}; lr = {src}")
            if not 0 <= target < len(rows):
                e(ind, f"st.t = t; raise Stop('execution left the image (row {target}, "
                       f"image has {len(rows)} rows)')")
                return
            if not (rows[target].error or rows[target].violation):
                v = self.d.edge_violation(src, target)
                if v:
                    e(ind, "if base + n < REM:")
                    e(ind + 1, f"st.t = t; raise Stop({('schedule violation: ' + v)!r}, True)")
            b = self.cur
            acct = f"base += {len(b)}; LP += {hex(_cumulative(b)[-1])}"
            tb = self.by_start.get(target) if target in self.inline_ok else None
            if tb is None or target in self.open_blocks:
                e(ind, f"{acct}; row = {target}; continue")
                return
            if ind > MAX_INDENT:       # too deep for Python's parser: through the dispatcher
                self.refused.add(target)
                e(ind, f"{acct}; row = {target}; continue")
                return
            # the target's only way in is this edge: its statements follow here, no dispatch
            e(ind, acct)
            self.leaf_entry(tb, ind)
            saved = (self.cur, self.addr, self.stk, getattr(self, "ind", ind))
            self.open_blocks.add(target)
            self.body(tb, ind)
            self.open_blocks.discard(target)
            self.cur, self.addr, self.stk, self.ind = saved
            return
        e(ind, f"st.t = {t_next}; st.last_row = {src}")
        if 0 <= target < len(rows) and not (rows[target].error or rows[target].violation):
            v = self.d.edge_violation(src, target)
            if v:
                e(ind, "if st.rows + n < st.maxr:")
                e(ind + 1, f"raise Stop({('schedule violation: ' + v)!r}, True)")
        e(ind, f"return {target}")

    # -- calls and exits (core.do_call and core.exit_cycle, specialised)
    def call(self, ind: int, num: int) -> None:
        """A helper whose latency depends on the map in r1 at most: do_call's updates, in
        its order, then the helper through the Env."""
        e = self.emit
        tm = self.tm
        plain = call_timing(tm, num, (), 0)
        commit = None if plain.commit is None else plain.commit - plain.ready   # after x
        if latency_needs_key(num):
            maps = self.d.image.maps
            table = {}
            for i in range(len(maps)):
                ct = call_timing(tm, num, (), maps[i].key_size)
                assert (ct.commit is None) == (commit is None) and (ct.commit is None or ct.commit - ct.ready == commit)
                table[layout.MAP_HANDLE_BASE + i * 0x100] = ct.ready
            e(ind, f"x = t + {self.const(table)}.get({self.reg(1)}, {plain.ready})")
        else:
            e(ind, f"x = t + {plain.ready}")
        e(ind, "st.t = t; st.helper_free = x; rdy[0] = x")
        if commit is not None:
            e(ind, f"if x + {commit} > lc: lc = x + {commit}")
        e(ind, "st.last_commit = lc")
        args = ", ".join(self.reg(i) for i in range(1, 6))
        if keeps_packet(num):     # data/data_end of the XDP context stay (KB: r1 is one)
            e(ind, f"{self.reg(0)} = HT[{num}](({args}), NO_CALLBACKS)")
            e(ind, "if not KB: BD = None")
        else:
            e(ind, f"{self.reg(0)} = HT[{num}](({args}), NO_CALLBACKS); BD = None")
            e(ind, "PB, PD, PL = st.pkt_view()")

    def exit(self, ind: int, r0: str, plain: bool) -> None:
        e = self.emit
        et = exit_timing(self.tm, plain)
        e(ind, f"st.r0 = {r0}")
        e(ind, f"x = t + {et.offset}" if et.offset else "x = t")
        if et.readback is not None:
            e(ind, f"if rdy[0] + {et.readback} > x: x = rdy[0] + {et.readback}")
        if et.readback is not None or et.offset:
            e(ind, "if x > t: SD['exit_wait'] = SD.get('exit_wait', 0) + x - t")
        e(ind, "st.e = x; return None")

    # -- one row
    def row(self, info: RowInfo, n: int, ind: int) -> bool:
        self.ind = ind
        e = self.emit
        tm = self.tm
        e(ind, f"# row {info.index}")
        e(ind, f"n = {n}")
        # stalls, in the core's order: load address, operands/helper, frames, data bus
        loads = [op for op in info.data if op.spec.kind in LOADS or op.spec.kind == Kind.ATOMIC]
        if tm.load_address_stall and loads:
            e(ind, "need = t")
            for op in loads:
                e(ind, f"x = rdy[{op.addr_reg}] - 1")
                e(ind, "if x > need: need = x")
            e(ind, "if need > t:")
            e(ind + 1, "SD['load_address'] = SD.get('load_address', 0) + need - t; t = need")
        reads_r0 = any(0 in op.reads for op in info.data) or any(
            0 in op.reads for op in info.control if op.spec.kind != Kind.EXIT)
        calls = [op for op in info.control if op.spec.kind in (Kind.CALL, Kind.CALLX)]
        if reads_r0 != bool(calls):     # one candidate: no running maximum
            e(ind, "x = rdy[0] - 2" if reads_r0 else "x = st.helper_free - 2")
            e(ind, "if x > t:")
            e(ind + 1, "SD['helper'] = SD.get('helper', 0) + x - t; t = x")
        elif reads_r0 or calls:
            e(ind, "need = t")
            if reads_r0:
                e(ind, "x = rdy[0] - 2")
                e(ind, "if x > need: need = x")
            if calls:
                e(ind, "x = st.helper_free - 2")
                e(ind, "if x > need: need = x")
            e(ind, "if need > t:")
            e(ind + 1, "SD['helper'] = SD.get('helper', 0) + need - t; t = need")
        pkt_helpers = [op for op in calls if op.spec.kind == Kind.CALL and waits_whole_packet(op.insn.imm)]
        addr = {}
        stk = {}
        for k, op in enumerate(info.data):
            if op.addr_reg is not None:
                si = self.stack_index(op)
                if si is not None:
                    stk[op.lane] = si
                    continue
                addr[op.lane] = f"a{k}"
                if op.insn.off:
                    e(ind, f"a{k} = ({self.reg(op.addr_reg)} + {op.insn.off}) & M64")
                else:       # registers always hold values below 2**64
                    e(ind, f"a{k} = {self.reg(op.addr_reg)}")
        self.addr, self.stk = addr, stk
        ploads = [op for op in loads if op.lane not in stk]
        if ploads or pkt_helpers:
            # every frame wait ends by the cycle the whole packet is in (WP, -inf without a
            # packet): from then on the core's frame rules cannot stall, so skip them
            e(ind, "if t < WP:")
            e(ind + 1, "need = t")
            for op in ploads:
                a = addr[op.lane]
                e(ind + 1, f"if d0 <= {a} < e0:")
                e(ind + 2, f"x = fr0 + (min({a} + {op.spec.size}, e0) - 1 - d0) // {tm.frame_bytes}")
                e(ind + 2, "if x > need: need = x")
            if pkt_helpers:
                e(ind + 1, "x = st.whole_packet()")
                e(ind + 1, "if x > need: need = x")
            e(ind + 1, "if need > t:")
            e(ind + 2, "SD['frame'] = SD.get('frame', 0) + need - t; t = need")
        groups = -(-info.mem_ops // tm.data_bus_ports) if info.mem_ops else 1
        if groups > 1:
            e(ind, f"SD['data_bus'] = SD.get('data_bus', 0) + {groups - 1}; t += {groups - 1}")
        if info.bounds:
            # core.bounds_fail with xdp_md.data/data_end read once and kept (BD, BE) until a
            # helper call or a store that could change them
            e(ind, "if BD is None: BD, BE = bounds_ctx(st)")
            for length, action in info.bounds:
                e(ind, f"if BD + {length} > BE:")
                e(ind + 1, f"st.r0 = {hex(action & M64)}; st.e = t; return None")
        # datapath: values first (registers and memory as at row start), then stores, writes
        writes = []
        stores = []
        for k, op in enumerate(info.data):
            ins, spec = op.insn, op.spec
            kd = spec.kind
            v = f"v{k}"
            if kd in (Kind.ALU, Kind.MOV):
                b, bc = self.operand(op, spec.width)
                e(ind, f"{v} = {_alu_source(spec, self.reg(ins.dst), b, bc)}")
                writes.append((ins.dst, v))
            elif kd == Kind.ALU3:
                if spec.imm_reg:
                    b, bc = self.reg(ins.imm), None
                else:
                    bc = ins.imm & (M64 if spec.width == 64 else M32)
                    b = hex(bc)
                e(ind, f"{v} = {_alu_source(spec, self.reg(ins.src), b, bc)}")
                writes.append((ins.dst, v))
            elif kd in (Kind.LDX, Kind.LDX48):
                e(ind, f"{v} = {self.load(op)}")
                writes.append((ins.dst, v))
            elif kd == Kind.LDXSX:
                e(ind, f"{v} = {sext_load_expr(spec.size * 8, self.load(op))}")
                writes.append((ins.dst, v))
            elif kd == Kind.ST:
                stores.append((op, hex(ins.imm & M64)))
            elif kd in (Kind.STX, Kind.STX48):
                e(ind, f"{v} = {self.reg(ins.src)}")
                stores.append((op, v))
            elif kd == Kind.LDDW:
                if ins.src == LDDW_IMM64:
                    e(ind, f"{v} = {hex(op.imm64 & M64)}")
                elif ins.src == LDDW_FUNC:
                    e(ind, "raise Fault('lddw of a function address (bpf_loop callback) is not "
                           "supported by Sephirot')")
                else:
                    e(ind, f"{v} = env.lddw_value({ins.src}, {op.imm64}) & M64")
                writes.append((ins.dst, v))
            elif kd == Kind.NEG:
                e(ind, f"{v} = {neg_expr(spec.width, self.reg(ins.dst))}")
                writes.append((ins.dst, v))
            elif kd == Kind.MOVSX:
                e(ind, f"{v} = {movsx_expr(spec.variant, spec.width, self.reg(ins.src))}")
                writes.append((ins.dst, v))
            elif kd == Kind.END:
                e(ind, f"{v} = {end_expr(spec.op, spec.width, self.reg(ins.dst))}")
                writes.append((ins.dst, v))
            elif kd == Kind.ATOMIC and atomic_base(spec.op) and not atomic_fetches(spec.op):
                # counters (lock add/or/and/xor): the template of isa.semantics, inline
                e(ind, f"{v}n = {atomic_alu_expr(spec.op, spec.width, self.load(op), self.reg(ins.src))}")
                stores.append((op, f"{v}n"))
            elif kd == Kind.ATOMIC:
                e(ind, f"{v}n, {v}s, {v}r = atomic({spec.op!r}, {self.load(op)}, "
                       f"{self.reg(ins.src)}, {self.reg(0)}, {spec.width})")
                stores.append((op, f"{v}n"))
                if spec.op == "cmpxchg":
                    writes.append((0, f"{v}r"))
                elif spec.op == "xchg" or spec.op.startswith("fetch_"):
                    writes.append((ins.src, f"{v}s"))
            else:
                e(ind, f"raise Fault('unexpected {spec.key} in a datapath lane')")
        for op, v in stores:
            e(ind, self.store(op, v))
        for reg, v in writes:
            if reg == 0 or tm.load_address_stall:   # only these readiness values are ever read
                e(ind, f"{self.reg(reg)} = {v}; rdy[{reg}] = t + 3")
            else:
                e(ind, f"{self.reg(reg)} = {v}")
        if stores:
            e(ind, "lc = t + 4")
        # control lanes in priority order
        pen = tm.branch_taken_penalty
        for op in info.control:
            ins, spec = op.insn, op.spec
            kd = spec.kind
            if kd == Kind.JCOND:
                b, bc = self.operand(op, spec.width)
                cond = cond_expr(spec.op, spec.width, self.reg(ins.dst), b, bc)
                e(ind, f"if {cond}:")
                if pen:
                    e(ind + 1, f"SD['branch'] = SD.get('branch', 0) + {pen}")
                self.goto(ind + 1, info.index, op.target, f"t + {1 + pen}")
            elif kd == Kind.JA:
                if pen:
                    e(ind, f"SD['branch'] = SD.get('branch', 0) + {pen}")
                self.goto(ind, info.index, op.target, f"t + {1 + pen}")
                return True
            elif kd == Kind.CALL and not latency_needs_args(ins.imm):
                self.call(ind, ins.imm)
            elif kd in (Kind.CALL, Kind.CALLX):
                num = str(ins.imm) if kd == Kind.CALL else self.reg(ins.dst)
                e(ind, "st.t = t; st.last_commit = lc")
                if self.whole:     # the helper reads its arguments from st.regs
                    e(ind, "R[1] = r1; R[2] = r2; R[3] = r3; R[4] = r4; R[5] = r5")
                e(ind, f"{self.reg(0)} = do_call(st, DEC, {num}, t); BD = None")
                e(ind, "lc = st.last_commit; PB, PD, PL = st.pkt_view()")
            elif kd == Kind.EXIT:
                self.exit(ind, self.reg(0), True)
                return True
            elif kd == Kind.PEXIT:
                self.exit(ind, hex(ins.imm & M64), False)
                return True
            elif kd == Kind.BOUNDS:
                continue
            else:
                e(ind, f"raise Fault({(spec.key + ' is not supported by Sephirot (BPF-to-BPF and kfunc calls must be inlined by the compiler)')!r})")
                return True
        e(ind, "t += 1")

    def body(self, rows: list[RowInfo], ind: int) -> None:
        """The statements of one block (rows in order)."""
        e = self.emit
        self.cur = rows
        for k, info in enumerate(rows):
            # the core's order: malformed row, violation inside the row, forwarding edge
            if info.error:
                e(ind, f"st.t = t; raise Stop({(info.error + f' at row {info.index}')!r})")
                return
            if info.violation:
                e(ind, f"st.t = t; raise Stop({('schedule violation: ' + info.violation)!r}, True)")
                return
            v = self.d.edge_violation(rows[k - 1].index, info.index) if k > 0 else ""
            if v:
                e(ind, f"st.t = t; raise Stop({('schedule violation: ' + v)!r}, True)")
                return
            if self.row(info, k + 1, ind):
                return            # the row left the block (jump, exit, fault): no fall-through
        self.goto(ind, rows[-1].index, rows[-1].index + 1, "t")

    def program(self, blocks: list[list[RowInfo]]) -> str:
        """One function for all the blocks reachable from row 0: a binary decision tree on
        `row` leads to each block's statements; a block continues the loop with the next row."""
        self.lines = []
        self.whole = True
        e = self.emit
        e(0, "def run_all(st, R, rdy, load, store, env, stall, HT):")
        e(1, "t = st.t; d0 = st.d0; e0 = st.e0; fr0 = st.fr0; STK = st.stk; lc = st.last_commit; SD = st.stalls")
        e(1, "PB, PD, PL = st.pv; WP = st.wp; BD, BE = st.bde; KB = st.kb; CXK = st.ctx if KB else -1")
        e(1, "base = 0; LP = 0; n = 0; cur = 0; lr = st.last_row; REM = st.maxr - st.rows; row = 0")
        e(1, "r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = R")
        e(1, "try:")
        e(2, "while True:")
        by_start = {b[0].index: b for b in blocks}
        self.by_start = by_start
        self.open_blocks = set()
        self.refused = set()
        # blocks entered by exactly one edge (never row 0) are emitted at that edge
        self.inline_ok = {b for b, k in _in_degrees(blocks).items() if k == 1 and b != 0 and b in by_start}
        head = list(self.lines)
        while True:
            self.lines = list(head)
            starts = sorted(b for b in by_start if b not in self.inline_ok)
            self.refused = set()
            self._tree(starts, by_start)
            if not self.refused:
                break
            self.inline_ok -= self.refused        # too deep to inline: dispatched instead
        e(1, "except Fault as f:")
        e(2, "st.t = t")
        e(2, "raise Stop(f'{f} at row {cur + n - 1}') from None")
        e(1, "finally:")
        e(2, "st.last_commit = lc")
        e(2, "st.rows += base + n; st.lp += LP + CP[cur][n]")
        self.whole = False
        return "\n".join(self.lines)

    def leaf_entry(self, b: list, ind: int) -> None:
        """Entering block `b` (whole-program function): its budget check."""
        e = self.emit
        st_ = b[0].index
        e(ind, f"cur = {st_}; n = 0")
        e(ind, f"if base + {len(b)} > REM:")
        e(ind + 1, "st.t = t; st.last_row = lr; R[:] = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10]")
        e(ind + 1, f"return {st_}")

    def _tree(self, starts: list, by_start: dict) -> None:
        e = self.emit

        def tree(lo: int, hi: int, ind: int) -> None:
            if hi - lo == 1:
                st_ = starts[lo]
                b = by_start[st_]
                e(ind, f"if row == {st_}:")
                e(ind + 1, f"cur = {st_}; n = 0")
                e(ind + 1, f"if base + {len(b)} > REM:")
                e(ind + 2, "st.t = t; st.last_row = lr; R[:] = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10]")
                e(ind + 2, "return row")
                self.open_blocks = {st_}
                self.body(b, ind + 1)
                self.open_blocks = set()
                e(ind, "st.t = t; st.last_row = lr; R[:] = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10]")
                e(ind, "return row")
                return
            mid = (lo + hi) // 2
            e(ind, f"if row < {starts[mid]}:")
            tree(lo, mid, ind + 1)
            e(ind, "else:")
            tree(mid, hi, ind + 1)

        tree(0, len(starts), 3)

    def block(self, rows: list[RowInfo]) -> str:
        """Source of the function of one block (rows in order)."""
        first = rows[0].index
        self.lines = []
        e = self.emit
        e(0, f"def block_{first}(st, R, rdy, load, store, env, stall, HT):")
        e(1, "t = st.t; n = 0; d0 = st.d0; e0 = st.e0; fr0 = st.fr0; STK = st.stk; lc = st.last_commit; SD = st.stalls")
        e(1, "PB, PD, PL = st.pv; WP = st.wp; BD = BE = None; KB = st.kb; CXK = st.ctx if KB else -1")
        e(1, "try:")
        self.body(rows, 2)
        e(1, "except Fault as f:")
        e(2, "st.t = t")
        e(2, f"raise Stop(f'{{f}} at row {{{first} + n - 1}}') from None")
        e(1, "finally:")
        e(2, "st.last_commit = lc")
        e(2, "if n:")
        e(3, "st.rows += n; st.lp += CP[n]")
        return "\n".join(self.lines)


def _alu_source(spec, a: str, b: str, bc) -> str:
    """Python source of `a OP b` for an ALU row slot: isa.semantics' template."""
    return alu_expr(spec.op, spec.width, a, b, bc)


def _successors(last: RowInfo) -> list[int]:
    """Rows control can reach after a block ending in row `last` (its branch targets, then the
    fall-through unless an unconditional jump, an exit or an unsupported call ends the row)."""
    if last.error or last.violation:
        return []
    out = []
    for op in last.control:
        if op.spec.is_branch:
            out.append(op.target)
        if not op.spec.falls_through or op.spec.kind in UNSUPPORTED_CALLS:
            return out
    out.append(last.index + 1)
    return out


def _in_degrees(blocks: list[list[RowInfo]]) -> dict:
    """How many control-flow edges (as FastProgram._reachable follows them) enter each block."""
    deg: dict = {}
    for blk in blocks:
        for t in _successors(blk[-1]):
            deg[t] = deg.get(t, 0) + 1
    return deg


def _cumulative(rows: list[RowInfo]) -> list:
    """The packed slot counters (stats.pack_slots) of the first n rows of a block, for each n."""
    out = [0]
    for info in rows:
        out.append(out[-1] + info.pack)
    return out


class FastProgram:
    """The generated blocks of one decoded image and their dispatcher."""

    def __init__(self, decoded: Decoded, timing: Timing):
        self.decoded = decoded
        self.timing = timing
        self.blocks: dict[int, tuple] = {}
        self.sources: dict[int, str] = {}
        self.leaders = _targets(decoded)
        self._gen = _Gen(decoded, timing)
        self.whole = None
        self._ht = None
        blocks = self._reachable()
        if blocks is not None:
            gen = self._gen
            gen.consts = {}
            src = gen.program(blocks)
            ns = dict(_GLOBALS)
            ns.update(gen.consts)
            ns["ROWS"] = decoded.rows
            ns["DEC"] = decoded
            cp = {b[0].index: _cumulative(b) for b in blocks}
            cp.setdefault(0, [0])
            ns["CP"] = cp
            exec(compile(src, "<sephirot program>", "exec"), ns)
            self.whole = ns["run_all"]
            self.sources[-1] = src

    def _split(self, start: int) -> list:
        rows = self.decoded.rows
        n = len(rows)
        blk = [rows[start]]
        i = start
        while (not _ends_block(rows[i]) and i + 1 < n and (i + 1) not in self.leaders
               and len(blk) < MAX_BLOCK_ROWS):
            i += 1
            blk.append(rows[i])
        return blk

    def _reachable(self) -> Optional[list]:
        """The blocks reachable from row 0 (None if there are too many for one function)."""
        rows = self.decoded.rows
        n = len(rows)
        if not n:
            return None
        seen: dict[int, list] = {}
        todo = [0]
        while todo:
            s0 = todo.pop()
            if s0 in seen or not 0 <= s0 < n:
                continue
            blk = self._split(s0)
            seen[s0] = blk
            if len(seen) > MAX_WHOLE_BLOCKS:
                return None
            todo.extend(_successors(blk[-1]))
        return list(seen.values())

    def block(self, start: int) -> tuple:
        """The generated function of the block starting at row `start` (built on first use:
        images are often padded with thousands of empty rows that never run)."""
        rows = self.decoded.rows
        blk = self._split(start)
        gen = self._gen
        gen.consts = {}
        src = gen.block(blk)
        ns = dict(_GLOBALS)
        ns.update(gen.consts)
        ns["ROWS"] = rows
        ns["DEC"] = self.decoded
        ns["CP"] = _cumulative(blk)
        exec(compile(src, f"<sephirot block {start}>", "exec"), ns)
        entry = (ns[f"block_{start}"], len(blk))
        self.blocks[start] = entry
        self.sources[start] = src
        return entry

    def run(self, st, decoded: Decoded) -> None:
        """Execute from row 0 until the exit (st.r0, st.e) or a Stop, like core.run_core."""
        blocks = self.blocks
        n = len(decoded.rows)
        maxr = st.maxr
        R = st.regs
        rdy = st.rdy
        mem = st.mem
        load, store, env, stall = mem.load, mem.store, st.env, st.stall
        ht = self._ht
        if ht is None or ht.env is not env:      # helper number -> function, per env
            ht = self._ht = HelperTable(env)
        row = 0
        if self.whole is not None:
            row = self.whole(st, R, rdy, load, store, env, stall, ht)
            if row is None:
                return
            return run_core(st, decoded, row)   # the row budget is near: exact accounting
        while True:
            if row is None:              # the packet ended (st.r0, st.e set)
                return
            if not 0 <= row < n:
                raise Stop(f"execution left the image (row {row}, image has {n} rows)")
            entry = blocks.get(row)
            fn, size = entry if entry is not None else self.block(row)
            if st.rows + size > maxr:
                return run_core(st, decoded, row)
            row = fn(st, R, rdy, load, store, env, stall, ht)
            rdy = st.rdy


def compile_fast(decoded: Decoded, timing: Timing) -> FastProgram:
    return FastProgram(decoded, timing)
