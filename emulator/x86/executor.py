"""Running the x86 translation in unicorn, on the runtime's Env like every executor.

Memory: the Env's `Memory` stays the one truth.  Unicorn maps a page of scratch memory
wherever a program touches a region (mapped on first use, kept across packets); a data read
hook loads the value from `env.mem` into the page just before the x86 instruction reads it,
and a write hook stores what the instruction writes into `env.mem`.  So regions can change
per packet, move (adjust_head/tail) or appear (helper buffers) without any copying, and an
access outside every region faults with the interpreter's text.  The x86 side (helper
stubs, code, its own stack) lives at STUB_BASE, outside the hooked ranges.

Control: helpers are a `call` to a stub address; the block hook at a stub calls
`env.helper(num, args, self)` (this object is the Caller bpf_loop calls back through, with a
nested emu_start), sets rax, and the stub's `ret` returns.  The same block hook counts the
budget (eBPF instructions of each translated block) and the executed x86 instructions.
An activation returns to STOP_STUB, emu_start's `until`, so the last block is not retranslated.
"""
from __future__ import annotations

import bisect
from typing import Optional

from unicorn import (UC_ARCH_X86, UC_MEM_WRITE_UNMAPPED, UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_HOOK_MEM_UNMAPPED, UC_HOOK_MEM_WRITE,
                     UC_MODE_64, Uc, UcError)
from unicorn.x86_const import (UC_X86_REG_R8, UC_X86_REG_R11, UC_X86_REG_R13,
                               UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RAX, UC_X86_REG_RBP, UC_X86_REG_RBX,
                               UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RDX, UC_X86_REG_RIP, UC_X86_REG_RSI,
                               UC_X86_REG_RSP)

from isa import layout
from isa.insn import mem_access
from isa.opcodes import M64
from isa.program import Program
from emulator.runtime.env import Env, ProgramExit, RunResult, TailCall, budget_exhausted
from emulator.runtime.memory import Fault, Region
from emulator.x86.slow import run_slow
from emulator.x86.translate import (CALL_DEPTH_FAULT, CALLX_STUB, CODE_BASE, CODE_STRIDE, FAULT_STUB,
                                    HELPER_STUBS, SLOW_STUB, STOP_STUB, STUB_BASE, Translation, translate)

DEFAULT_BUDGET = 1_000_000        # the interpreter's (emulator.interp.runloop.DEFAULT_BUDGET)
STACK_BYTES = layout.STACK_SIZE * layout.MAX_CALL_FRAMES
STACK_BASE = layout.STACK_TOP - STACK_BYTES
PAGE = 0x1000
NATIVE_STACK = STUB_BASE + 0x8_0000          # the x86 stack (return addresses, saved registers)
NATIVE_STACK_SIZE = 0x4_0000
NATIVE_END = CODE_BASE + 32 * CODE_STRIDE    # end of the unhooked x86 area
MAX_PROGRAMS = 32                            # programs one executor can hold (tail-call targets)
NOP5 = bytes.fromhex("0f1f440000")
# eBPF register -> unicorn register (translate.REG's mapping)
UC_REG = (UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_RCX, UC_X86_REG_R8,
          UC_X86_REG_RBX, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RBP)
ARGS = UC_REG[1:6]


class _Stopped(Exception):
    """An activation ended abnormally (the reason is in X86.error); unwinds nested callbacks."""


THUNKS = STUB_BASE + 2 * PAGE              # per program: the entry thunk (registers, stacks), 64 bytes each
THUNK_SIZE = 64
assert SLOW_STUB < THUNKS and THUNKS + MAX_PROGRAMS * THUNK_SIZE <= THUNKS + PAGE <= NATIVE_STACK < CODE_BASE


def _entry_thunk(at: int, entry: int) -> bytes:
    """x86 code setting what the interpreter sets at entry (every register 0 but r1, r10 =
    STACK_TOP before the prologue's frame move, a return to STOP_STUB), then `jmp entry`:
    one emu_start and one register write per packet instead of thirteen."""
    from emulator.x86 import emit as E
    buf = E.Buffer()
    buf.b(0x48, 0xC7, 0xC4)                            # mov rsp, imm32
    buf.i32(NATIVE_STACK + NATIVE_STACK_SIZE)
    buf.b(0x68)                                        # push imm32
    buf.i32(STOP_STUB)
    for reg in (E.RAX, E.RSI, E.RDX, E.RCX, E.R8, E.RBX, E.R13, E.R14, E.R15):
        E.emit_alu_rr(buf, "xor", False, reg, reg)
    E.emit_mov_imm32(buf, False, E.RBP, layout.STACK_TOP + layout.STACK_SIZE)
    E.emit_jmp(buf, None, False)
    buf.patch32(buf.pos - 4, entry - at)
    assert buf.pos <= THUNK_SIZE
    return bytes(buf.code)


def _align(addr: int) -> int:
    return addr & ~(PAGE - 1)


class X86:
    """Executor: `program` translated once to x86 and run in one unicorn instance per executor."""

    def __init__(self, program: Program):
        self.program = program
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uc.mem_map(STUB_BASE, 2 * PAGE)                     # helper stubs, then STOP/FAULT/...
        self.uc.mem_write(STUB_BASE, b"\xc3" * (2 * PAGE))        # every stub is a `ret`
        self.uc.mem_map(THUNKS, PAGE)
        self.uc.mem_map(NATIVE_STACK, NATIVE_STACK_SIZE)
        self.loaded: dict[int, tuple[Program, Translation, dict]] = {}
        self.thunks: dict[int, int] = {}
        self.fault_at: dict[int, tuple[str, int]] = {}          # return address -> (reason, slot)
        self.mapped: set[int] = set()
        self.mapped_version, self.mapped_mem = -1, None
        self.stack = Region("stack", STACK_BASE, bytearray(STACK_BYTES), True, "stack")
        self._stack_view = memoryview(self.stack.data)
        self._zero = bytes(STACK_BYTES)
        self.bound_env: Optional[Env] = None
        self.total_x86 = 0
        self.runs = 0
        self.env: Optional[Env] = None
        self.current: Optional[Translation] = None
        self.translation = self._load(program)
        uc = self.uc
        uc.hook_add(UC_HOOK_BLOCK, self._block)
        for begin, end in ((0, STUB_BASE - 1), (NATIVE_END, M64)):
            uc.hook_add(UC_HOOK_MEM_READ, self._read, begin=begin, end=end)
            uc.hook_add(UC_HOOK_MEM_WRITE, self._write, begin=begin, end=end)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._unmapped)

    # ------------------------------------------------------------ programs
    def _load(self, program: Program) -> Translation:
        hit = self.loaded.get(id(program))
        if hit is not None and hit[0] is program:
            return hit[1]
        k = len(self.loaded)
        if k >= MAX_PROGRAMS:
            raise Fault(f"more than {MAX_PROGRAMS} programs in one x86 executor")
        t = translate(program, CODE_BASE + k * CODE_STRIDE)
        size = max(PAGE, (len(t.code) + PAGE - 1) & ~(PAGE - 1))
        for page in range(t.base, t.base + size, PAGE):     # one mapping per page: unicorn 2.1 misses memory
            # hooks in blocks on the second page of a multi-page code mapping
            self.uc.mem_map(page, PAGE)
        self.uc.mem_write(t.base, t.code)
        if 0 in t.entries:
            thunk = THUNKS + k * THUNK_SIZE
            self.uc.mem_write(thunk, _entry_thunk(thunk, t.base + t.entries[0]))
            self.thunks[id(program)] = thunk
        for off, fault in t.faults.items():
            self.fault_at[t.base + off] = fault
        self.loaded[id(program)] = (program, t, {})
        if self.bound_env is not None:
            self._bind(t, self.bound_env)
        return t

    def _bind(self, t: Translation, env: Env) -> None:
        """Patch the map lddws of `t` with `env`'s values (a Fault: a call to the fault stub)."""
        for field, src, imm, slot in t.lddw:
            at = t.base + field
            try:
                value = env.lddw_value(src, imm) & M64
            except Fault as f:
                self.uc.mem_write(at - 2, b"\xe8" + (FAULT_STUB - (at + 3)).to_bytes(4, "little", signed=True)
                                  + NOP5)
                self.fault_at[at + 3] = (str(f), slot)
                continue
            self.uc.mem_write(at - 2, t.code[field - 2:field] + value.to_bytes(8, "little"))

    def _bind_env(self, env: Env) -> None:
        if env is not self.bound_env:
            self.bound_env = env
            for _, t, _ in self.loaded.values():
                self._bind(t, env)

    # ------------------------------------------------------------ a run
    def run(self, env: Env, r1: int, budget: Optional[int] = None) -> RunResult:
        self.env, self.mem = env, env.mem
        self.budget = DEFAULT_BUDGET if budget is None else budget
        self.steps = self.x86 = 0
        self.error: Optional[str] = None
        self.dead = False
        self.block_start: Optional[tuple[int, int]] = None
        self._stack_view[:] = self._zero
        added = False
        try:
            self._bind_env(env)
            env.mem.add(self.stack)
            added = True
            self._map_regions(env.mem)
            r0 = self._program_run(r1 & M64)
            result = RunResult(r0, None, self.steps)
        except _Stopped:
            result = RunResult(0, self.error, self.steps)
        except Fault as f:
            result = RunResult(0, str(f), self.steps)
        except Exception as e:      # a bug here or in the env: never escape to the caller
            result = RunResult(0, f"internal: {type(e).__name__}: {e}", self.steps)
        finally:
            if added:
                env.mem.remove(self.stack)
        self.runs += 1
        self.total_x86 += self.x86
        result.extra["x86_insns"] = self.x86
        return result

    def _program_run(self, r1: int) -> int:
        program = self.program
        self.ctx = r1
        while True:
            t = self._load(program)
            try:
                return self._enter(t, r1)
            except TailCall as tc:
                program = tc.program
                self.dead = False
                self._stack_view[:] = self._zero
            except ProgramExit as pe:
                return int(pe.r0) & M64

    def _enter(self, t: Translation, r1: int) -> int:
        """The program's run from its entry thunk (registers set there)."""
        self.uc.reg_write(UC_X86_REG_RDI, r1)
        return self._emulate(t, self.thunks[id(t.program)])

    def _emulate(self, t: Translation, start: int) -> int:
        uc = self.uc
        outer, self.current = self.current, t
        self.pending = None
        try:
            try:
                uc.emu_start(start, STOP_STUB)
            except UcError as e:
                if self.error is None:
                    self.error = self._crash_reason(e)
                raise _Stopped() from None
            if self.pending is not None:
                raise self.pending
            if self.error is not None:
                raise _Stopped()
            return uc.reg_read(UC_X86_REG_RAX)
        finally:
            self.current = outer

    def _activation(self, t: Translation, index: int, regs: list[int], r10: int, sp: int) -> int:
        """Run function `index` of `t` with eBPF registers `regs` (r10 given) until it returns."""
        uc = self.uc
        entry = t.entries.get(index)
        if entry is None:
            raise Fault(f"callback address 0x{layout.FUNC_BASE + index:x} is not a function of the program")
        for reg, value in zip(UC_REG, regs):
            uc.reg_write(reg, value)
        uc.reg_write(UC_X86_REG_RBP, r10 + layout.STACK_SIZE)    # the prologue moves it down a frame
        sp -= 8
        uc.mem_write(sp, STOP_STUB.to_bytes(8, "little"))
        uc.reg_write(UC_X86_REG_RSP, sp)
        return self._emulate(t, t.base + entry)

    # ------------------------------------------------------------ the Caller protocol (bpf_loop)
    def call(self, func_addr: int, args: tuple[int, ...]) -> int:
        uc = self.uc
        t = self.current
        index = func_addr - layout.FUNC_BASE
        if not 0 <= index < len(t.slots):
            raise Fault(f"callback address 0x{func_addr & M64:x} is not a function of the program")
        depth = (layout.STACK_TOP - uc.reg_read(UC_X86_REG_RBP)) // layout.STACK_SIZE + 1
        if depth >= layout.MAX_CALL_FRAMES:
            raise Fault(CALL_DEPTH_FAULT)
        a = [x & M64 for x in args[:5]]
        regs = [0, *a, *[0] * (5 - len(a)), 0, 0, 0, 0][:10]
        saved = uc.context_save()
        steps, pending = self.steps, self.pending
        self.steps = 0               # a callback invocation has a budget of its own (runloop.py)
        try:
            return self._activation(t, index, regs + [0], layout.STACK_TOP - depth * layout.STACK_SIZE,
                                    uc.reg_read(UC_X86_REG_RSP) - 64)
        finally:
            uc.context_restore(saved)
            self.pending = pending
            self.steps = steps       # what the run reports: its own count, as the interpreter

    # ------------------------------------------------------------ hooks
    def _slot_at(self, rip: int) -> int:
        t = self.current
        return t.slots[t.index_at(rip - t.base)] if t.slots else 0

    def _stop(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        self.dead = True
        self.uc.emu_stop()

    def _fault_here(self, f: Fault) -> None:
        """A fault of the instruction at rip: the steps it ran are those of its block up to it."""
        t = self.current
        index = t.index_at(self.uc.reg_read(UC_X86_REG_RIP) - t.base)
        if self.error is None and self.block_start is not None:
            before, first = self.block_start
            self.steps = before + index - first + 1
        self._stop(f"{f} at pc {t.slots[index] if t.slots else 0}")

    def _block(self, uc, addr: int, size: int, _data) -> None:
        if self.dead:
            uc.emu_stop()
            return
        if addr < CODE_BASE:
            if addr < THUNKS:
                self._stub(uc, addr)
            return
        t = self.current
        cache = self.loaded[id(t.program)][2]
        counts = cache.get((addr, size))
        if counts is None:
            counts = cache[(addr, size)] = _block_counts(t, addr - t.base, size)
        n, x86, first = counts
        if self.steps + n > self.budget:
            k = self.budget - self.steps
            self.steps = self.budget
            self._stop(f"{budget_exhausted(self.budget)} at pc {t.slots[first + k]}")
            return
        self.block_start = (self.steps, first)
        self.steps += n
        self.x86 += x86

    def _stub(self, uc, addr: int) -> None:
        ret = int.from_bytes(uc.mem_read(uc.reg_read(UC_X86_REG_RSP), 8), "little")
        if addr == FAULT_STUB:
            reason, slot = self.fault_at[ret]
            self._stop(f"{reason} at pc {slot}")
            return
        if addr == SLOW_STUB:
            self._slow(uc, ret)
            return
        num = uc.reg_read(UC_X86_REG_R11) if addr == CALLX_STUB else addr - STUB_BASE
        if not (addr == CALLX_STUB or 0 <= num < HELPER_STUBS):
            self._stop(f"internal: unknown stub 0x{addr:x}")
            return
        args = uc.reg_read_batch(ARGS)
        try:
            r0 = self.env.helper(num, args, self) & M64
        except Fault as f:
            self._stop(f"{f} at pc {self._slot_at(ret - 5)}")
            return
        except (ProgramExit, TailCall) as e:
            self.pending = e
            self.dead = True
            uc.emu_stop()
            return
        except _Stopped:
            self.dead = True
            uc.emu_stop()
            return
        uc.reg_write(UC_X86_REG_RAX, r0)

    def _slow(self, uc, ret: int) -> None:
        index = uc.reg_read(UC_X86_REG_R11)
        t = self.current
        try:
            run_slow(t.program.insns[index], UC_REG, uc, self.env, self.ctx)
        except Fault as f:
            self._stop(f"{f} at pc {t.slots[index]}")
        except ProgramExit as e:
            self.pending = e
            self.dead = True
            uc.emu_stop()

    def _read(self, uc, access, addr: int, size: int, value, _data) -> None:
        if self.dead:
            return
        try:
            v = self.mem.load(addr, size)
        except Fault as f:
            self._fault_here(f)
            return
        uc.mem_write(addr, v.to_bytes(size, "little"))

    def _write(self, uc, access, addr: int, size: int, value: int, _data) -> None:
        if self.dead:
            return
        try:
            self.mem.store(addr, size, value & ((1 << (size * 8)) - 1))
        except Fault as f:
            self._fault_here(f)

    def _unmapped(self, uc, access, addr: int, size: int, value, _data) -> bool:
        """First touch of a page no region was on when the run started (a helper's buffer):
        map scratch memory if a region is there and do the access's hook work, else fault."""
        if self.dead:
            return False
        addr = self._real_address(addr)
        try:
            self.mem.find(addr, size)
        except Fault as f:
            self._fault_here(f)
            return False
        self._map_pages(addr, addr + size)
        if access == UC_MEM_WRITE_UNMAPPED:
            self._write(uc, access, addr, size, value, None)
        else:
            self._read(uc, access, addr, size, value, None)
        return True

    def _real_address(self, addr: int) -> int:
        """The eBPF address of the access at rip (unicorn truncates a non-canonical one)."""
        t = self.current
        ins = t.mem_insns.get(t.index_at(self.uc.reg_read(UC_X86_REG_RIP) - t.base))
        if ins is None:
            return addr
        ma = mem_access(ins)
        return (self.uc.reg_read(UC_REG[ma.base]) + ma.off) & M64

    def _map_pages(self, start: int, end: int) -> None:
        for page in range(_align(start), end, PAGE):
            if page not in self.mapped and not STUB_BASE <= page < NATIVE_END:
                self.uc.mem_map(page, PAGE)
                self.mapped.add(page)

    def _map_regions(self, mem) -> None:
        """Scratch pages under every region of `mem` (once per layout: Memory.version)."""
        if mem.version != self.mapped_version or mem is not self.mapped_mem:
            for r in mem.regions():
                if len(r.data):
                    self._map_pages(r.base, r.end)
            self.mapped_version, self.mapped_mem = mem.version, mem

    def _crash_reason(self, e: UcError) -> str:
        """Why unicorn stopped on its own (a non-canonical address): the access the
        instruction at rip makes, checked against env.mem for the interpreter's text."""
        rip = self.uc.reg_read(UC_X86_REG_RIP)
        t = self.current
        index = t.index_at(rip - t.base)
        ins = t.mem_insns.get(index)
        if ins is not None:
            ma = mem_access(ins)
            addr = (self.uc.reg_read(UC_REG[ma.base]) + ma.off) & M64
            try:
                self.mem.find(addr, ma.size)
            except Fault as f:
                return f"{f} at pc {t.slots[index]}"
        return f"internal: unicorn: {e} at pc {t.slots[index] if t.slots else 0}"

    # ------------------------------------------------------------ figures
    def figures(self) -> dict:
        t = self.translation
        return {"x86_insns_per_packet": round(self.total_x86 / self.runs, 3) if self.runs else 0.0,
                "x86_insns": self.total_x86, "x86_static_insns": t.static_insns, "x86_code_bytes": len(t.code)}

    def figures_text(self) -> str:
        f = self.figures()
        return (f"x86: {f['x86_insns_per_packet']:g} instructions executed per packet "
                f"({f['x86_static_insns']} instructions, {f['x86_code_bytes']} bytes of code)")


def _block_counts(t: Translation, start: int, size: int) -> tuple[int, int, int]:
    """(eBPF instructions, x86 instructions, first eBPF index) of the code [start, start + size)."""
    lo = bisect.bisect_left(t.insn_offsets, start)
    hi = bisect.bisect_left(t.insn_offsets, start + size)
    x86 = bisect.bisect_left(t.x86_starts, start + size) - bisect.bisect_left(t.x86_starts, start)
    return hi - lo, x86, lo
