"""Helpers and the packet buffer: the limits and return values measured on Linux 6.18's
BPF_PROG_TEST_RUN (tests/test_runtime_kernel.py re-checks them against the running kernel)."""
import struct

import pytest

from isa import layout
from emulator.runtime.env import TailCall
from emulator.runtime.memory import Fault, Memory, Region
from emulator.runtime import helpers as H
from emulator.runtime.fib import parse_fib
from emulator.runtime.maps import MapSet
from emulator.runtime.session import XdpEnv
from emulator.runtime.xdp import (MAX_LINEAR, FrameRefused, PacketBuffer, RxInfo, XdpContext,
                                  check_frame)
from isa.errors import InputError
from isa.insn import Insn
from isa.program import MapDef, Program
from isa.uapi import MAP_TYPE_IDS as T

SCR = 0x5000_0000


def frame(n):
    return bytes(i & 0xFF for i in range(n))


def test_frame_limits():
    for n in (0, 13):
        with pytest.raises(FrameRefused):
            check_frame(n)
    check_frame(14)
    with pytest.raises(FrameRefused):
        check_frame(MAX_LINEAR + 17 * 4096 + 1)


def test_linear_part_and_fragments():
    p = PacketBuffer(Memory(), frame(9000))
    assert p.end - p.data == 3520 and [len(f) for f in p.frags] == [4096, 1384]
    assert p.buff_len() == 9000 and p.data_bytes() == frame(9000)


@pytest.mark.parametrize("off, rc, length", [(-300, -22, 60), (-217, -22, 60), (-216, 0, 276),
                                             (46, 0, 14), (47, -22, 60), (0, 0, 60)])
def test_adjust_head(off, rc, length):
    p = PacketBuffer(Memory(), frame(60))
    assert p.adjust_head(off) == rc
    assert p.end - p.data == length
    if off < 0 and rc == 0:
        assert p.data_bytes()[:-off] == bytes(-off)          # the headroom is zeroed


@pytest.mark.parametrize("off, rc", [(-256, -22), (-220, -22), (-216, 0), (-4, 0), (-2, -13), (4, -22)])
def test_adjust_meta(off, rc):
    p = PacketBuffer(Memory(), frame(60))
    assert p.adjust_meta(off) == rc
    assert len(p.meta_bytes()) == (-off if rc == 0 else 0)


def test_adjust_head_moves_metadata():
    p = PacketBuffer(Memory(), frame(60))
    assert p.adjust_meta(-8) == 0
    p.buf[p.meta:p.data] = b"METADATA"
    assert p.adjust_head(-209) == -22                        # data may not go below 40 + 8
    assert p.adjust_head(-200) == 0 and p.meta_bytes() == b"METADATA"


@pytest.mark.parametrize("size, off, rc, total", [
    (60, -47, -22, 60), (60, -46, 0, 14), (60, 3460, 0, 3520), (60, 3461, -22, 60),
    (9000, -5479, 0, 3521), (9000, -6000, 0, 3000), (9000, 200, 0, 9200), (9000, 2713, -22, 9000),
    (3530, -11, 0, 3519), (3521, 3700, 0, 7221)])
def test_adjust_tail(size, off, rc, total):
    p = PacketBuffer(Memory(), frame(size))
    assert p.adjust_tail(off) == rc
    assert p.buff_len() == total and len(p.data_bytes()) == total
    if rc == 0 and off > 0:
        assert p.data_bytes()[size:] == bytes(off)


def test_frags_grow_needs_a_frag_size():
    p = PacketBuffer(Memory(), frame(5000), frags_grow=False)
    assert p.adjust_tail(1) == -95


def test_load_store_bytes_across_fragments():
    p = PacketBuffer(Memory(), frame(9000))
    assert p.load_bytes(3516, 8) == frame(9000)[3516:3524]
    assert p.store_bytes(3518, b"ABCD") == 0 and p.data_bytes()[3518:3522] == b"ABCD"
    assert p.load_bytes(8996, 5) == -22 and p.load_bytes(65536, 1) == -14


class Env(XdpEnv):
    """An XdpEnv with a scratch region and a packet, for calling helpers directly."""

    def __init__(self, maps=(), size=60, **kw):
        super().__init__(MapSet.build(list(maps)), {}, **kw)
        self.mem.add(Region("scratch", SCR, bytearray(4096), True, "mem"))
        self.pkt = PacketBuffer(self.mem, frame(size))
        self.mem.add(XdpContext(self.pkt, RxInfo()).region)

    def call(self, num, *args, caller=None):
        v = self.helper(num, tuple(args) + (0,) * (5 - len(args)), caller)
        return v - (1 << 64) if v >> 63 else v


A = struct.pack("<4I", 0x12345678, 0x9ABCDEF0, 0xFFFF0000, 0x0000FFFF)   # the probe's u32 arrays
B = struct.pack("<4I", 0x11111111, 0x22222222, 0x33333333, 0x44444444)


@pytest.mark.parametrize("fs, ts, seed, want", [
    (0, 4, 0, 8738), (4, 0, 0, 38739), (4, 4, 0, 47477), (8, 8, 0, 33804), (0, 0, 0x12345678, 26796),
    (2, 4, 0, 52137), (3, 0, 0, 43347), (0, 4, 0xFFFFFFFF, 8738), (4, 0, 0xFFFFFFFF, 38739),
    (12, 8, 123456, 26190)])
def test_csum_diff_matches_kernel(fs, ts, seed, want):
    env = Env()
    env.mem.write(SCR, A)
    env.mem.write(SCR + 16, B)
    assert env.call(28, SCR, fs, SCR + 16, ts, seed) == want


def test_ctx_loads_and_faults():
    env = Env()
    assert env.mem.load(layout.CTX_BASE, 4) == layout.PACKET_BASE + 256
    assert env.mem.load(layout.CTX_BASE + 4, 4) == layout.PACKET_BASE + 316
    assert env.mem.load(layout.CTX_BASE + 12, 4) == 1
    for off, size in ((0, 8), (2, 4), (20, 4)):
        with pytest.raises(Fault):
            env.mem.load(layout.CTX_BASE + off, size)
    with pytest.raises(Fault):
        env.mem.store(layout.CTX_BASE, 4, 0)
    with pytest.raises(Fault):                               # outside [data_meta, data_end)
        env.mem.load(layout.PACKET_BASE + 255, 1)


def test_maps_through_helpers_and_lddw():
    d = MapDef("h", T["hash"], 4, 8, 2)
    env = Env([d])
    handle = env.lddw_value(5, 0)
    env.mem.write(SCR, struct.pack("<IQ", 7, 99))
    assert env.call(2, handle, SCR, SCR + 4, 0) == 0
    addr = env.call(1, handle, SCR)
    assert env.mem.load(addr, 8) == 99
    env.mem.store(addr, 8, 100)                              # writes through the pointer stay
    assert env.maps.maps[0].dump() == [{"key": "07000000", "value": struct.pack("<Q", 100).hex()}]
    assert env.call(3, handle, SCR) == 0 and env.call(3, handle, SCR) == -2
    with pytest.raises(Fault, match="not a map pointer"):
        env.call(1, handle + 8, SCR)
    with pytest.raises(Fault, match="objdump"):
        env.lddw_value(1, 3)


def test_redirect_and_redirect_map():
    dm = MapDef("tx", T["devmap"], 4, 4, 4)
    env = Env([dm])
    env.maps.maps[0].preload([{"key": "01000000", "value": "05000000"}], "w", {})
    h = env.lddw_value(5, 0)
    assert env.call(23, 3, 0) == 4 and env.redirect_index == 3 and env.redirect_map is None
    assert env.call(23, 3, 1) == 0
    assert env.call(51, h, 1, 0) == 4 and env.redirect_map is env.maps.maps[0]
    assert env.call(51, h, 2, 2) == 2 and env.redirect_map is None   # lookup fails: flags' action
    assert env.call(51, h, 1, 32) == 0                               # unknown flag: XDP_ABORTED


def test_tail_call_limits():
    target = Program("next", [Insn(0x95)])
    env = Env([MapDef("jmp", T["prog_array"], 4, 4, 2)])
    env.maps.maps[0].preload([{"key": "00000000", "value": "next"}], "w", {"next": target})
    h = env.lddw_value(5, 0)
    assert env.call(12, layout.CTX_BASE, h, 1) == 0                   # empty slot: falls through
    assert env.call(12, layout.CTX_BASE, h, 2) == 0                   # beyond max_entries
    for _ in range(32):
        with pytest.raises(TailCall):
            env.call(12, layout.CTX_BASE, h, 0)
    assert env.tail_calls == 33                                       # the empty slot counted too
    assert env.call(12, layout.CTX_BASE, h, 0) == 0


class Caller:
    def __init__(self, stop_at=None):
        self.calls = []
        self.stop_at = stop_at

    def call(self, fn, args):
        self.calls.append((fn, args))
        return 1 if args[0] == self.stop_at else 0


def test_bpf_loop():
    env = Env()
    c = Caller()
    assert env.call(181, 5, layout.FUNC_BASE + 3, 77, 0, caller=c) == 5
    assert c.calls[2] == (layout.FUNC_BASE + 3, (2, 77, 0, 0, 0))
    assert env.call(181, 5, layout.FUNC_BASE, 0, 0, caller=Caller(stop_at=1)) == 2
    assert env.call(181, 5, layout.FUNC_BASE, 0, 1, caller=c) == -22
    assert env.call(181, (1 << 23) + 1, layout.FUNC_BASE, 0, 0, caller=c) == -7


def test_trace_printk_formats_and_captures():
    env = Env()
    env.mem.write(SCR, b"x=%d y=%x s=%pI4\n\0")
    env.mem.write(SCR + 64, bytes([10, 0, 0, 1]))
    n = env.call(6, SCR, 18, (-5) & (2 ** 64 - 1), 255, SCR + 64)
    assert env.events[-1]["text"] == "x=-5 y=ff s=10.0.0.1\n" and n == len("x=-5 y=ff s=10.0.0.1\n")
    env.mem.write(SCR, b"no nul")
    assert env.call(6, SCR, 6) == -22
    env.mem.write(SCR, b"%d %d %d %d\0")
    assert env.call(6, SCR, 12, 1, 2, 3) == -22


def test_clock_random_cpu():
    env = Env(seed=7)
    env.clock_ns = 123
    assert env.call(5) == 123 and env.call(125) == 123
    a = [env.call(7) for _ in range(3)]
    assert a == [Env(seed=7).call(7) for _ in range(1)] + a[1:] and env.call(8) == 0


FIB = {"routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "gateway": "10.0.0.254"},
                  {"prefix": "10.1.0.0/16", "ifindex": 3},
                  {"prefix": "10.9.0.0/16", "type": "blackhole"}],
       "neighbours": [{"ip": "10.0.0.254", "mac": "02:00:00:00:00:fe", "ifindex": 2}],
       "interfaces": [{"ifindex": 2, "mac": "02:00:00:00:00:02", "mtu": 1500},
                      {"ifindex": 3, "mac": "02:00:00:00:00:03", "mtu": 9000}]}


def fib_params(dst, ifindex=1, tot_len=100):
    p = bytearray(64)
    p[0] = 2
    struct.pack_into("<HI", p, 6, tot_len, ifindex)
    p[32:36] = bytes(int(x) for x in dst.split("."))
    return p


@pytest.mark.parametrize("dst, tot_len, ifindex, rc", [
    ("10.2.3.4", 100, 1, 0), ("10.1.2.3", 100, 1, 7), ("11.0.0.1", 100, 1, 4), ("10.9.1.1", 100, 1, 1),
    ("10.2.3.4", 1501, 1, 8), ("10.2.3.4", 100, 9, -19)])
def test_fib_lookup(dst, tot_len, ifindex, rc):
    env = Env(fib=parse_fib(FIB, "fib.json"))
    env.mem.write(SCR, bytes(fib_params(dst, ifindex, tot_len)))
    assert env.call(69, layout.CTX_BASE, SCR, 64, 0) == rc
    out = env.mem.read(SCR, 64)
    if rc == 0:
        assert struct.unpack_from("<HI", out, 6) == (1500, 2)
        assert out[32:36] == bytes([10, 0, 0, 254])
        assert out[52:58] == bytes.fromhex("020000000002") and out[58:64] == bytes.fromhex("0200000000fe")
    if rc == 8:
        assert struct.unpack_from("<H", out, 6)[0] == 1500
    assert env.call(69, layout.CTX_BASE, SCR, 63, 0) == -22


def test_fib_file_errors():
    with pytest.raises(InputError, match="routes\\[0\\]"):
        parse_fib({"routes": [{"prefix": "10.0.0.0/99", "ifindex": 1}]}, "f.json")
    with pytest.raises(InputError, match="MAC"):
        parse_fib({"interfaces": [{"ifindex": 2, "mac": "zz"}]}, "f.json")


def test_unknown_helper_is_a_load_time_error():
    prog = Program("p", [Insn(0xB7, 0, 0, 0, 0), Insn(0x85, 0, 0, 0, 14), Insn(0x95)], path="p.o")
    with pytest.raises(InputError) as e:
        H.check_helpers(prog)
    assert "instruction 1" in str(e.value) and "bpf_get_current_pid_tgid" in str(e.value)
