"""Running packets through an XDP program: the XdpEnv every executor runs on, and Session.

A Session holds what persists between packets (maps, the random generator, captured
events) and, per packet, builds the packet buffer and xdp_md context, runs the executor
with r1 = layout.CTX_BASE, and turns the end state into a PacketResult.
"""
from __future__ import annotations

import random
from typing import Optional

from isa import layout
from emulator.runtime.env import Env, Executor, RunResult, is_budget_error
from emulator.runtime.memory import Fault, Memory
from emulator.runtime import helpers as H
from emulator.runtime.fib import Fib
from emulator.runtime.maps import DevMap, MapSet
from emulator.runtime.pcapio import apply_ctx, check_ctx
from emulator.runtime.results import PacketInput, PacketResult
from emulator.runtime.xdp import (ETH_HLEN, MAX_FRAGS, MAX_LINEAR, PAGE_SIZE, FrameRefused, PacketBuffer,
                                  RxInfo, XdpContext, check_frame)
from isa.opcodes import M64
from isa.opcodes import LDDW_MAP_FD, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE, LDDW_MAP_VALUE
from isa.program import Program
from isa.uapi import XDP_REDIRECT

_HELPERS = H.HELPERS
MAX_FRAME = MAX_LINEAR + MAX_FRAGS * PAGE_SIZE    # check_frame's bounds
BUDGET_HINT = " (the budget bounds each activation; raise it with --budget N)"


class XdpEnv(Env):
    """Memory (context, packet, map values), the helper table and lddw map references."""

    # lddw_value(src, imm) is constant while the same program runs on this env (the map set
    # is fixed for the session): the fast path may resolve each reference once
    LDDW_CONSTANT = True

    def __init__(self, maps: MapSet, programs: dict[str, Program], *, fib: Optional[Fib] = None,
                 seed: int = 0, cpu: int = 0):
        super().__init__(Memory())
        self.maps = maps
        self.programs = programs
        self.fib = fib if fib is not None else Fib()
        self.rng = random.Random(seed)
        self.cpu = cpu
        self.clock_ns = 0
        self.events: list[dict] = []
        self.pkt: Optional[PacketBuffer] = None
        self.program: Optional[Program] = None
        self._index_map: dict[int, list[int]] = {}   # id(program) -> its map index -> ours
        # lddw values of the running program, by (src, imm): they depend only on the program
        # and the map set, both fixed for the session (id(program) -> (program, values))
        self._lddw_cache: dict[int, tuple[Program, dict]] = {}
        self._lddw: dict = {}
        self.packet_index = -1
        for m in maps.maps:
            for r in m.regions():
                self.mem.add(r)
        self.reset_packet_state()

    # -- per packet ----------------------------------------------------------------------
    def reset_packet_state(self) -> None:
        self.redirect_set = False
        self.redirect_index = 0
        self.redirect_map: Optional[DevMap] = None
        self.tail_calls = 0

    def enter(self, program: Program) -> None:
        """The program now running (entry, or a tail call's target)."""
        if program is self.program:
            return
        if id(program) not in self._index_map:
            miss = H.missing_helper(program)          # a tail call's target, checked once
            if miss is not None:
                raise Fault(f"tail call into {miss.program}: instruction {miss.slot}: {miss.call()}")
        self.program = program
        if id(program) not in self._index_map:
            names = {m.name: i for i, m in enumerate(self.maps.maps)}
            self._index_map[id(program)] = [names.get(d.name, -1) for d in program.maps]
        hit = self._lddw_cache.get(id(program))
        if hit is None or hit[0] is not program:
            hit = self._lddw_cache[id(program)] = (program, {})
        self._lddw = hit[1]

    def now_ns(self) -> int:
        return self.clock_ns & M64

    def event(self, e: dict) -> None:
        self.events.append({"pkt": self.packet_index, **e})

    # -- Env -----------------------------------------------------------------------------
    def has_helper(self, num: int) -> bool:
        return num in H.HELPERS

    def helper(self, num: int, args, caller) -> int:
        fn = _HELPERS.get(num)
        if fn is None:
            raise Fault(f"unknown helper {H.helper_name(num)} ({num})")
        if self.pkt is None:
            raise Fault(f"{H.helper_name(num)} called outside a packet run")
        return fn(self, args, caller) & M64      # executors pass r1-r5 as unsigned 64-bit

    def helper_fn(self, num: int):
        """`f(args, caller) -> r0` doing exactly what `helper(num, args, caller)` does, with
        the dispatch done once (for generated code that calls the same helper per packet);
        None if the runtime has no helper `num`."""
        fn = _HELPERS.get(num)
        if fn is None:
            return None
        name = H.helper_name(num)

        def call(args, caller, env=self, fn=fn):
            if env.pkt is None:
                raise Fault(f"{name} called outside a packet run")
            return fn(env, args, caller) & M64
        return call

    def _our_index(self, imm: int) -> int:
        table = self._index_map.get(id(self.program)) if self.program is not None else None
        if table is None:
            i = imm
        else:
            i = table[imm] if 0 <= imm < len(table) else -1
        if not 0 <= i < len(self.maps.maps):
            raise Fault(f"lddw refers to map {imm}, which the program does not define")
        return i

    def lddw_value(self, src: int, imm: int) -> int:
        v = self._lddw.get((src, imm))
        if v is None:
            v = self._lddw[(src, imm)] = self._lddw_value(src, imm)
        return v

    def _lddw_value(self, src: int, imm: int) -> int:
        if src == LDDW_MAP_IDX:
            return self.maps.maps[self._our_index(imm & 0xFFFFFFFF)].handle
        if src == LDDW_MAP_IDX_VALUE:
            m = self.maps.maps[self._our_index(imm & 0xFFFFFFFF)]
            off = (imm >> 32) & 0xFFFFFFFF
            if m.region is None or off >= m.d.value_size:
                raise Fault(f"lddw: offset {off} is outside the value of map {m.name!r}")
            return m.base + off
        if src in (LDDW_MAP_FD, LDDW_MAP_VALUE):
            raise Fault(f"lddw with source {src} refers to a map by file descriptor, and this "
                        "input (objdump text) carries no map definitions; use the ELF object")
        raise Fault(f"lddw with source {src} is not a map reference")


def executor_for(executor, program: Program) -> Executor:
    """`executor` itself when it is an Executor (has `run`), else `executor(program)`: a
    factory such as an executor class.  Targets by name are the registry's (hxdpc.targets)."""
    if hasattr(executor, "run") and not isinstance(executor, type):
        return executor
    if not callable(executor):
        raise TypeError(f"Session(executor=...) takes an executor or a factory, not {executor!r}")
    return executor(program)


def _program_maps(program: Program, programs: dict[str, Program]) -> list:
    """The object's maps in order: the entry program's, then any others' by name."""
    defs = list(program.maps)
    seen = {d.name for d in defs}
    for p in programs.values():
        for d in p.maps:
            if d.name not in seen:
                defs.append(d)
                seen.add(d.name)
    return defs


class Session:
    """Packets through one program, in order, maps persisting between packets.

    `executor` is an Executor or a factory `f(program) -> Executor` (see `executor_for`)."""

    def __init__(self, program: Program, *, executor, maps: Optional[dict] = None,
                 clock_ns: Optional[int] = None, seed: int = 0, fib: Optional[Fib] = None,
                 ctx: Optional[dict] = None, cpus: int = 1, programs: Optional[dict] = None,
                 maps_source: str = "MAPS.json", budget: Optional[int] = None):
        self.program = program
        self.programs = dict(programs or {})
        self.programs.setdefault(program.name, program)
        H.check_helpers(program)
        self.mapset = MapSet.build(_program_maps(program, self.programs), cpus)
        if maps:
            self.mapset.preload(maps, maps_source, self.programs)
        self.env = XdpEnv(self.mapset, self.programs, fib=fib, seed=seed)
        if ctx:
            check_ctx(ctx, "--ctx")
        self.ctx = ctx or {}
        self.clock_start = clock_ns
        self._first_ts: Optional[int] = None
        self.budget = budget
        self.executor = executor_for(executor, program)
        self.lru_first_eviction: dict[str, int] = {}     # map name -> packet index
        self._lru = [m for m in self.mapset.maps if getattr(m, "lru", False)]
        self._buf: Optional[PacketBuffer] = None
        self._rx = RxInfo()
        self._ctx: Optional[XdpContext] = None

    def close(self) -> None:
        """Unmap the packet and context regions (the session can still dump its maps)."""
        if self._buf is not None:
            self._buf.close()
            self.env.mem.remove(self._ctx.region)
            self._buf = self._ctx = None

    def _clock(self, pkt: PacketInput) -> int:
        if self.clock_start is None:
            return pkt.ts_ns
        if self._first_ts is None:
            self._first_ts = pkt.ts_ns
        return self.clock_start + (pkt.ts_ns - self._first_ts)

    def run(self, pkt: PacketInput) -> PacketResult:
        env = self.env
        if self.ctx:
            pkt = apply_ctx(pkt, self.ctx)
        env.packet_index = index = pkt.index
        env.clock_ns = pkt.ts_ns if self.clock_start is None else self._clock(pkt)
        env.redirect_set = False                 # reset_packet_state, inline (per packet)
        env.redirect_index = 0
        env.redirect_map = None
        env.tail_calls = 0
        frame = pkt.data
        n = len(frame)
        if n < ETH_HLEN or n > MAX_FRAME:
            try:
                check_frame(n)
            except FrameRefused as e:
                return PacketResult(index, 0, bytes(frame), error=e.reason, ran=False)
        rx = self._rx
        rx.ingress_ifindex = ifindex = pkt.ingress_ifindex
        rx.rx_queue_index = pkt.rx_queue_index
        buf = self._buf
        if buf is None:
            buf = self._buf = PacketBuffer(env.mem, frame, ifindex == 1)
            self._ctx = XdpContext(buf, rx)
            env.mem.add(self._ctx.region)
        else:
            buf.reset(frame, ifindex == 1)
        env.pkt = buf
        if env.program is not self.program:
            env.enter(self.program)
        lru = self._lru
        if lru:
            evictions = [m.evictions for m in lru]
        try:
            if self.budget is not None:
                rr: RunResult = self.executor.run(env, layout.CTX_BASE, self.budget)
            else:
                rr = self.executor.run(env, layout.CTX_BASE)
        finally:
            env.pkt = None
        if lru:
            for m, before in zip(lru, evictions):
                if m.evictions != before:
                    self.lru_first_eviction.setdefault(m.name, index)
        error = rr.error
        if error is not None and is_budget_error(error):
            error += BUDGET_HINT
        if error is None:
            action = rr.r0 & 0xFFFFFFFF
            redirect = None
            if action == XDP_REDIRECT and env.redirect_set:
                if env.redirect_map is not None:
                    redirect = {"map": env.redirect_map.name, "key": env.redirect_index}
                else:
                    redirect = {"ifindex": env.redirect_index}
        else:
            action = 0
            redirect = None
        extra = rr.extra
        if "steps" not in extra:
            extra["steps"] = rr.steps
        return PacketResult(index, action, buf.data_bytes(), buf.meta_bytes() if buf.meta != buf.data else b"",
                            redirect, error, extra)

    def redirect_ifindex(self, redirect: Optional[dict]) -> Optional[int]:
        """The device a redirect goes to (devmap entries resolved), None if not a device."""
        if not redirect:
            return None
        if "ifindex" in redirect:
            return redirect["ifindex"]
        m = self.mapset.by_name(redirect["map"])
        if isinstance(m, DevMap) and type(m) is DevMap:
            return m.ifindex(redirect["key"])
        return None

    def dump_maps(self) -> dict:
        return self.mapset.dump()

    @property
    def events(self) -> list[dict]:
        return self.env.events
