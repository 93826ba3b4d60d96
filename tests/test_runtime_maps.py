"""Map semantics as the kernel returns them to programs (flags, capacity, errnos, LRU, LPM,
per-CPU, value addresses) and the MAPS.json preload/dump format."""
import struct

import pytest

from isa import layout
from emulator.runtime.memory import Memory
from emulator.runtime import maps as M
from isa.errors import InputError
from isa.program import MapDef
from isa.uapi import MAP_TYPE_IDS as T


def mk(kind, key=4, value=8, n=4, flags=0, name="m", index=0, ncpu=1, initial=None):
    return M.make_map(index, MapDef(name, T[kind], key, value, n, flags, initial), ncpu)


def k32(i):
    return struct.pack("<I", i)


def v64(i):
    return struct.pack("<Q", i)


def read(m, addr):
    mem = Memory()
    for r in m.regions():
        mem.add(r)
    return mem.read(addr, m.d.value_size)


def test_array_flags_and_errors():
    m = mk("array")
    assert m.update(k32(1), v64(5), M.BPF_ANY) == 0
    assert m.update(k32(1), v64(6), M.BPF_EXIST) == 0
    assert m.update(k32(1), v64(7), M.BPF_NOEXIST) == -M.EEXIST
    assert m.update(k32(4), v64(7), M.BPF_ANY) == -M.E2BIG
    assert m.update(k32(1), v64(7), 3) == -M.EINVAL
    assert m.update(k32(1), v64(7), M.BPF_F_LOCK) == -M.EINVAL
    assert m.delete(k32(1)) == -M.EINVAL
    assert m.lookup(k32(4)) == 0
    addr = m.lookup(k32(1))
    assert addr == layout.MAP_BASE + 8 and read(m, addr) == v64(6)
    assert m.dump() == [{"key": "01000000", "value": v64(6).hex()}]


def test_array_value_stride_is_rounded_to_8():
    m = mk("array", value=5, index=2)
    assert m.lookup(k32(3)) == layout.MAP_BASE + 2 * layout.MAP_STRIDE + 24


def test_hash_flags_capacity_delete():
    m = mk("hash", n=2)
    assert m.update(k32(1), v64(1), M.BPF_EXIST) == -M.ENOENT
    assert m.update(k32(1), v64(1), M.BPF_NOEXIST) == 0
    assert m.update(k32(1), v64(2), M.BPF_NOEXIST) == -M.EEXIST
    assert m.update(k32(2), v64(3), M.BPF_ANY) == 0
    assert m.update(k32(3), v64(4), M.BPF_ANY) == -M.E2BIG
    assert m.update(k32(1), v64(9), M.BPF_ANY) == 0          # replacing works when full
    assert m.delete(k32(7)) == -M.ENOENT
    assert m.delete(k32(2)) == 0
    assert m.update(k32(3), v64(4), M.BPF_ANY) == 0
    assert m.dump() == [{"key": "01000000", "value": v64(9).hex()}, {"key": "03000000", "value": v64(4).hex()}]


def test_hash_value_address_stable_until_replaced():
    m = mk("hash")
    m.update(k32(1), v64(1), 0)
    a = m.lookup(k32(1))
    assert m.lookup(k32(1)) == a
    m.update(k32(2), v64(2), 0)
    assert m.lookup(k32(1)) == a
    m.update(k32(1), v64(3), 0)                                # the kernel takes a new element
    assert m.lookup(k32(1)) != a and read(m, m.lookup(k32(1))) == v64(3)


def test_lru_evicts_least_recently_used():
    m = mk("lru_hash", n=3)
    for i in (1, 2, 3):
        assert m.update(k32(i), v64(i), 0) == 0
    m.lookup(k32(1))                                           # 2 is now the oldest
    assert m.update(k32(4), v64(4), 0) == 0
    assert m.evictions == 1
    assert sorted(e["key"] for e in m.dump()) == ["01000000", "03000000", "04000000"]


def test_percpu_hash_updates_this_cpu_and_zeroes_others():
    m = mk("percpu_hash", ncpu=2)
    m.sys_update(k32(1), [v64(7), v64(8)])
    assert m.update(k32(1), v64(5), 0) == 0                    # existing: CPU 0 only, in place
    assert m._get(m.entries[k32(1)], 1) == v64(8)
    assert m.update(k32(2), v64(6), 0) == 0                    # new: others zeroed
    assert m._get(m.entries[k32(2)], 1) == v64(0)
    assert m.dump()[0] == {"key": "01000000", "value": v64(5).hex()}


def test_percpu_array_lookup_gives_cpu0_value():
    m = mk("percpu_array", ncpu=3)
    m.preload([{"key": "00000000", "value": v64(1).hex(), "values": [v64(1).hex(), v64(2).hex()]}], "w", {})
    assert [m._get(0, c) for c in range(3)] == [v64(1), v64(2), v64(1)]
    assert m.lookup(k32(0)) == layout.MAP_BASE


def lpm_key(plen, ip):
    return struct.pack("<I", plen) + bytes(int(x) for x in ip.split("."))


def test_lpm_longest_prefix_and_errors():
    m = mk("lpm_trie", key=8, value=4, n=3)
    assert m.update(lpm_key(8, "10.0.0.0"), k32(8), 0) == 0
    assert m.update(lpm_key(16, "10.1.0.0"), k32(16), 0) == 0
    assert m.update(lpm_key(16, "10.1.9.9"), k32(17), M.BPF_NOEXIST) == -M.EEXIST   # same prefix
    assert m.update(lpm_key(24, "10.2.0.0"), k32(1), M.BPF_EXIST) == -M.ENOENT
    assert m.update(lpm_key(33, "10.2.0.0"), k32(1), 0) == -M.EINVAL
    assert m.update(lpm_key(24, "10.1.2.0"), k32(24), 0) == 0
    assert m.update(lpm_key(24, "10.1.3.0"), k32(25), 0) == -M.ENOSPC
    val = lambda ip: read(m, m.lookup(lpm_key(32, ip))) if m.lookup(lpm_key(32, ip)) else None
    assert val("10.1.2.3") == k32(24) and val("10.1.3.3") == k32(16) and val("10.9.9.9") == k32(8)
    assert val("11.0.0.1") is None
    assert m.lookup(lpm_key(20, "10.1.2.3")) == m.lookup(lpm_key(32, "10.1.3.3"))    # key prefix caps the match
    assert m.delete(lpm_key(24, "10.1.2.0")) == 0 and m.delete(lpm_key(24, "10.1.2.0")) == -M.ENOENT


def test_devmap_and_prog_array_preload_dump():
    dm = mk("devmap", value=4, n=4)
    dm.preload([{"key": "02000000", "value": "07000000"}], "w", {})
    assert dm.ifindex(2) == 7 and dm.target(1) is None
    assert dm.dump() == [{"key": "02000000", "value": "07000000"}]
    pa = mk("prog_array", value=4)
    prog = object()
    pa.preload([{"key": "01000000", "value": "next"}], "w", {"next": prog})
    assert pa.get(1) is prog and pa.dump() == [{"key": "01000000", "value": "next"}]
    with pytest.raises(InputError, match="must name a program"):
        pa.preload([{"key": "00000000", "value": "nope"}], "w", {"next": prog})


def test_global_data_initial_and_rodata_readonly():
    m = mk("array", value=6, n=1, flags=M.BPF_F_RDONLY_PROG, name=".rodata", initial=b"abcdef")
    assert read(m, m.lookup(k32(0))) == b"abcdef" and not m.region.writable
    assert m.dump() == [{"key": "00000000", "value": b"abcdef".hex()}]


def test_ringbuf_space_follows_kernel_positions():
    rb = mk("ringbuf", key=0, value=0, n=4096)
    addrs = [rb.reserve(1000) for _ in range(5)]
    assert all(addrs[:4]) and addrs[4] == 0                    # 4 x 1008 fits, a fifth does not
    rb.finish(addrs[0], False)
    rb.finish(addrs[1], True)
    assert len(rb.committed()) == 1


@pytest.mark.parametrize("spec, msg", [
    ({"nosuch": []}, "not in the program"),
    ({"m": {}}, "list of"),
    ({"m": [{"key": "0100", "value": "00"}]}, "bytes where the map holds 4"),
    ({"m": [{"key": "zz", "value": "00"}]}, "not hex"),
])
def test_preload_errors_name_the_entry(spec, msg):
    ms = M.MapSet([mk("hash")])
    with pytest.raises(InputError, match=msg):
        ms.preload(spec, "MAPS.json", {})
