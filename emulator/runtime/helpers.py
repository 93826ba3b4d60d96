"""The BPF helpers an XDP program may call, by their Linux numbers (include/uapi/linux/bpf.h).

Each helper is ``fn(env, args, caller) -> r0`` where ``env`` is the session's XdpEnv,
``args`` = (r1, ..., r5) as unsigned 64-bit values and ``caller`` the executor's Caller
(bpf_loop calls back through it).  Return values and errnos are the kernel's (Linux 6.18,
net/core/filter.c, kernel/bpf/helpers.c, ringbuf.c); a negative errno is returned as a
negative int and the env wraps it to 64 bits.  What differs from the kernel is listed in
docs/runtime.md.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Optional

from emulator.runtime.env import TailCall
from emulator.runtime.memory import Fault
from emulator.runtime import maps as M
from emulator.runtime import printk
from emulator.runtime.fib import PARAMS_SIZE
from isa.errors import InputError
from isa.helpers import helper_name, number as helper_number  # noqa: F401  (helper_name: re-exported)
from isa.insn import spec_or_none
from isa.opcodes import M32, M64, Kind
from isa.program import Program
from isa.uapi import XDP_ABORTED, XDP_REDIRECT

EINVAL, EFAULT, ENOENT, E2BIG, EAGAIN = 22, 14, 2, 7, 11
MAX_TAIL_CALL_CNT = 33
BPF_MAX_LOOPS = 8 * 1024 * 1024
BPF_F_INDEX_MASK, BPF_F_CURRENT_CPU, BPF_F_CTXLEN_MASK = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFF << 32
BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS = 1 << 3, 1 << 4
BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP = 1, 2




def s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


# ---------------------------------------------------------------- maps

def _key(env, m: M.Map, addr: int) -> bytes:
    return env.mem.read(addr, m.d.key_size)


def map_lookup_elem(env, a, caller) -> int:
    m = env.maps.by_handle(a[0])
    return m.lookup(_key(env, m, a[1]))


def map_update_elem(env, a, caller) -> int:
    m = env.maps.by_handle(a[0])
    return m.update(_key(env, m, a[1]), env.mem.read(a[2], m.d.value_size), a[3])


def map_delete_elem(env, a, caller) -> int:
    m = env.maps.by_handle(a[0])
    return m.delete(_key(env, m, a[1]))


def map_lookup_percpu_elem(env, a, caller) -> int:
    m = env.maps.by_handle(a[0])
    if not m.percpu:
        raise Fault(f"bpf_map_lookup_percpu_elem on {m.type_name} map {m.name!r} is rejected by the verifier")
    cpu = a[2] & M32
    if cpu >= m.ncpu:
        return 0
    addr = m.lookup(_key(env, m, a[1]))
    return addr + (cpu - m.cpu) * m.elem if addr else 0


# ---------------------------------------------------------------- time, randomness, cpu

def ktime_get_ns(env, a, caller) -> int:
    return env.now_ns()


def get_prandom_u32(env, a, caller) -> int:
    return env.rng.getrandbits(32)


def get_smp_processor_id(env, a, caller) -> int:
    return env.cpu


def get_numa_node_id(env, a, caller) -> int:
    return 0


# ---------------------------------------------------------------- packet

def xdp_adjust_head(env, a, caller) -> int:
    return env.pkt.adjust_head(s32(a[1]))


def xdp_adjust_meta(env, a, caller) -> int:
    return env.pkt.adjust_meta(s32(a[1]))


def xdp_adjust_tail(env, a, caller) -> int:
    return env.pkt.adjust_tail(s32(a[1]))


def xdp_get_buff_len(env, a, caller) -> int:
    return env.pkt.buff_len()


def xdp_load_bytes(env, a, caller) -> int:
    got = env.pkt.load_bytes(a[1] & M32, a[3] & M32)
    if isinstance(got, int):
        return got
    env.mem.write(a[2], got)
    return 0


def xdp_store_bytes(env, a, caller) -> int:
    n = a[3] & M32
    off = a[1] & M32
    if off > 0xFFFF or n > 0xFFFF:
        return -EFAULT
    return env.pkt.store_bytes(off, env.mem.read(a[2], n))


def _csum_partial(data: bytes, seed: int) -> int:
    """x86-64 csum_partial as a value: 32-bit ones' complement sum of little-endian words."""
    if len(data) % 4:
        data = data + bytes(4 - len(data) % 4)
    total = seed + sum(struct.unpack(f"<{len(data) // 4}I", data))
    if total == 0:
        return 0
    return (total - 1) % M32 + 1


def _csum_add(x: int, y: int) -> int:
    r = (x + y) & M32
    return (r + (r < y)) & M32


def csum_diff(env, a, caller) -> int:
    """bpf_csum_diff (Linux >= 6.13): the 16-bit folded sum, the same on every architecture."""
    from_size, to_size, seed = a[1] & M32, a[3] & M32, a[4] & M32
    frm = env.mem.read(a[0], from_size) if from_size else b""
    to = env.mem.read(a[2], to_size) if to_size else b""
    if from_size and to_size:
        ret = _csum_add(_csum_partial(to, seed), ~_csum_partial(frm, 0) & M32)
    elif to_size:
        ret = _csum_partial(to, seed)
    elif from_size:
        ret = ~_csum_partial(frm, ~seed & M32) & M32
    else:
        ret = seed
    ret = (ret + (((ret >> 16) | (ret << 16)) & M32)) & M32     # csum_from32to16
    return ret >> 16


def fib_lookup(env, a, caller) -> int:
    plen = s32(a[2])
    if plen < PARAMS_SIZE:
        return -EINVAL
    p = bytearray(env.mem.read(a[1], PARAMS_SIZE))
    rc = env.fib.lookup(p, plen, a[3] & M32)
    env.mem.write(a[1], bytes(p))
    return rc


# ---------------------------------------------------------------- redirect, tail calls

def redirect(env, a, caller) -> int:
    if a[1]:
        return XDP_ABORTED
    env.redirect_index = a[0] & M32
    env.redirect_map = None
    env.redirect_set = True
    return XDP_REDIRECT


def redirect_map(env, a, caller) -> int:
    m = env.maps.by_handle(a[0])
    flags = a[2]
    if isinstance(m, M.CpuMap) or isinstance(m, M.XskMap):
        flag_mask = 0
    elif isinstance(m, M.DevMap):
        flag_mask = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
    else:
        raise Fault(f"bpf_redirect_map on {m.type_name} map {m.name!r} is rejected by the verifier")
    if flags & ~(3 | flag_mask):
        return XDP_ABORTED
    key = a[1] & M32
    found = not isinstance(m, M.XskMap) and m.target(key) is not None
    env.redirect_set = True
    if not found and not flags & BPF_F_BROADCAST:
        env.redirect_map = None           # map_id = INT_MAX: an ifindex redirect to tgt_index
        return flags & 3
    env.redirect_index = key
    env.redirect_map = m
    return XDP_REDIRECT


def tail_call(env, a, caller) -> int:
    m = env.maps.by_handle(a[1])
    if not isinstance(m, M.ProgArray):
        raise Fault(f"bpf_tail_call on {m.type_name} map {m.name!r} is rejected by the verifier")
    index = a[2] & M32
    if index >= m.d.max_entries or env.tail_calls >= MAX_TAIL_CALL_CNT:
        return 0
    env.tail_calls += 1
    prog = m.get(index)
    if prog is None:
        return 0
    env.enter(prog)
    raise TailCall(prog)


def loop(env, a, caller) -> int:
    nr, fn, cb_ctx, flags = a[0] & M32, a[1], a[2], a[3]
    if flags:
        return -EINVAL
    if nr > BPF_MAX_LOOPS:
        return -E2BIG
    for i in range(nr):
        if caller.call(fn, (i, cb_ctx, 0, 0, 0)) & M64:
            return i + 1
    return nr


# ---------------------------------------------------------------- outputs

def perf_event_output(env, a, caller) -> int:
    m = env.maps.by_handle(a[1])
    if not isinstance(m, M.PerfEventArray):
        raise Fault(f"bpf_perf_event_output on {m.type_name} map {m.name!r} is rejected by the verifier")
    flags, size = a[2], a[4] & M64
    ctx_len = (flags & BPF_F_CTXLEN_MASK) >> 32
    if flags & ~(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK):
        return -EINVAL
    if ctx_len > env.pkt.buff_len():
        return -EFAULT
    index = flags & BPF_F_INDEX_MASK
    if index == BPF_F_CURRENT_CPU:
        index = env.cpu
    if index >= m.d.max_entries:
        return -E2BIG
    data = env.mem.read(a[3], size) + env.pkt.data_bytes()[:ctx_len]
    m.records.append((index, data))
    env.event({"type": "perf_event_output", "map": m.name, "cpu": index, "data": data.hex()})
    return 0


def _ringbuf(env, addr: int, what: str) -> M.RingBuf:
    m = env.maps.by_handle(addr)
    if not isinstance(m, M.RingBuf):
        raise Fault(f"bpf_{what} on {m.type_name} map {m.name!r} is rejected by the verifier")
    return m


def ringbuf_output(env, a, caller) -> int:
    m = _ringbuf(env, a[0], "ringbuf_output")
    size, flags = a[2] & M64, a[3]
    if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
        return -EINVAL
    addr = m.reserve(size)
    if not addr:
        return -EAGAIN
    data = env.mem.read(a[1], size)
    env.mem.write(addr, data)
    m.finish(addr, False)
    env.event({"type": "ringbuf", "map": m.name, "data": data.hex()})
    return 0


def ringbuf_reserve(env, a, caller) -> int:
    m = _ringbuf(env, a[0], "ringbuf_reserve")
    if a[2]:
        return 0
    return m.reserve(a[1] & M64)


def _ringbuf_finish(env, a, discard: bool) -> int:
    addr = a[0]
    for m in env.maps.maps:
        if isinstance(m, M.RingBuf) and m.base <= addr < m.base + m.size:
            if a[1] & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
                return 0                   # the kernel ignores bad flags here (void helper)
            m.finish(addr, discard)
            if not discard:
                n = m.records[addr - m.HDR - m.base]["len"]
                env.event({"type": "ringbuf", "map": m.name, "data": env.mem.read(addr, n).hex()})
            return 0
    raise Fault("bpf_ringbuf_submit/discard of a pointer ringbuf_reserve did not return", addr)


def ringbuf_submit(env, a, caller) -> int:
    return _ringbuf_finish(env, a, False)


def ringbuf_discard(env, a, caller) -> int:
    return _ringbuf_finish(env, a, True)


# ---------------------------------------------------------------- trace_printk

def _reader(env):
    """(addr, n) -> bytes, None where the memory faults (copy_from_kernel_nofault)."""
    def read(addr: int, n: int):
        try:
            return env.mem.read(addr & M64, n)
        except Fault:
            return None
    return read


def trace_printk(env, a, caller) -> int:
    """bpf_trace_printk: the kernel's format rules and return value (emulator/runtime/printk.py)."""
    size = a[1] & M32
    raw = env.mem.read(a[0], size) if size else b""
    nul = raw.find(b"\0")
    if nul < 0:
        return -EINVAL
    printed = printk.bprintf(raw[:nul], [a[2], a[3], a[4]], _reader(env))
    if isinstance(printed, int):
        return printed
    env.event({"type": "trace_printk", "text": printed.text.split(b"\0")[0].decode("latin-1")})
    return printed.length


# ---------------------------------------------------------------- the table

# the implementation of each helper, by its name in THE helper table (isa/helpers.py gives the number)
IMPLEMENTATIONS: dict[str, Callable] = {
    "map_lookup_elem": map_lookup_elem, "map_update_elem": map_update_elem, "map_delete_elem": map_delete_elem,
    "ktime_get_ns": ktime_get_ns, "trace_printk": trace_printk, "get_prandom_u32": get_prandom_u32,
    "get_smp_processor_id": get_smp_processor_id, "tail_call": tail_call, "redirect": redirect,
    "perf_event_output": perf_event_output, "csum_diff": csum_diff, "get_numa_node_id": get_numa_node_id,
    "xdp_adjust_head": xdp_adjust_head, "redirect_map": redirect_map, "xdp_adjust_meta": xdp_adjust_meta,
    "xdp_adjust_tail": xdp_adjust_tail, "fib_lookup": fib_lookup, "ktime_get_boot_ns": ktime_get_ns,
    "ringbuf_output": ringbuf_output, "ringbuf_reserve": ringbuf_reserve, "ringbuf_submit": ringbuf_submit,
    "ringbuf_discard": ringbuf_discard, "ktime_get_coarse_ns": ktime_get_ns, "loop": loop,
    "xdp_get_buff_len": xdp_get_buff_len, "xdp_load_bytes": xdp_load_bytes, "xdp_store_bytes": xdp_store_bytes,
    "map_lookup_percpu_elem": map_lookup_percpu_elem, "ktime_get_tai_ns": ktime_get_ns,
}
HELPERS: dict[int, Callable] = dict(sorted((helper_number(name), fn) for name, fn in IMPLEMENTATIONS.items()))


@dataclass(frozen=True)
class MissingHelper:
    """A call, in `program`, to a helper the runtime does not implement."""
    program: str
    slot: int          # as llvm-objdump counts
    num: int

    def call(self) -> str:
        return f"call to {helper_name(self.num)} (helper {self.num}), which the XDP runtime does not provide"


def missing_helper(program: Program) -> Optional[MissingHelper]:
    """The first call in `program` (linked: its BPF-to-BPF callees are in it) to a helper the
    runtime lacks; None when there is none."""
    for ins, slot in zip(program.insns, program.slots()):
        spec = spec_or_none(ins)
        if spec is not None and spec.kind == Kind.CALL and ins.imm not in HELPERS:
            return MissingHelper(program.name, slot, ins.imm)
    return None


def check_helpers(program: Program) -> None:
    """Load-time check of the selected program only: the object's other programs may use
    helpers the runtime lacks (e.g. an sk_reuseport program beside the XDP one). A program
    reached by a tail call is checked when the tail call enters it (`XdpEnv.enter`): there a
    missing helper ends the run as a fault.

    Raises InputError naming the program, the instruction (slot) and the helper."""
    miss = missing_helper(program)
    if miss is not None:
        raise InputError(f"{program.path or program.name}: {program.name}: instruction {miss.slot}", miss.call())
