"""BPF maps with the kernel's semantics as programs see them (kernel/bpf/arraymap.c,
hashtab.c, lpm_trie.c, devmap.c, cpumap.c, xskmap.c, ringbuf.c; Linux 6.x).

Every map owns the address window ``layout.MAP_BASE + index * MAP_STRIDE``.  Values live in
one writable region per map, so a program reads and writes a value through the pointer
``bpf_map_lookup_elem`` returned, exactly as in the kernel:
- arrays: element i at ``base + i * round_up(value_size, 8)`` (per CPU: ``(i * ncpu + cpu)``);
- hash-like maps (hash, LRU, LPM trie): a preallocated pool of ``max_entries + ncpu``
  elements, like the kernel's prealloc hashtab with its per-CPU spare element.  An entry keeps
  its element while it lives; an update that replaces an entry takes a new element and frees
  the old one (the kernel does the same), so an old pointer then reads freed memory.

Errors are the negative errnos the kernel's helpers return to programs.  Preload and dump use
the contract's MAPS.json format (docs/runtime.md).
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from isa import layout
from emulator.runtime.memory import Fault, Region
from isa.errors import InputError, expect_list, expect_object, expect_str, plain, quote
from isa.program import MapDef
from isa.uapi import MAP_TYPE_IDS

BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4
BPF_F_RDONLY_PROG = 0x80
ENOENT, EAGAIN, ENOMEM, EFAULT, EEXIST, EINVAL, ENOSPC, E2BIG, EOPNOTSUPP = 2, 11, 12, 14, 17, 22, 28, 7, 95

T = MAP_TYPE_IDS
HANDLE_STRIDE = 0x100


def round8(n: int) -> int:
    return (n + 7) & ~7


def parse_hex(where: str, text, size: Optional[int]) -> bytes:
    """Raw bytes of a MAPS.json hex string (InputError naming `where` if it is not `size` bytes)."""
    if not isinstance(text, str):
        raise InputError(where, f"expected a hex string, got {type(text).__name__}")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError(where, f"not hex: {quote(text)}") from None
    if size is not None and len(raw) != size:
        raise InputError(where, f"{len(raw)} bytes where the map holds {size}")
    return raw


ENTRY_FIELDS = ("key", "value", "values")


def map_where(where: str, name: str) -> str:
    """`where: NAME` for messages about one map of a preset (the name quoted when odd)."""
    return f"{where}: {plain(name)}"


def check_preset(spec, where: str) -> dict:
    """The shape of a MAPS.json preset before any map sees it (verify's kernel side preloads
    the same object): {name: [{"key": str, "value": str, "values": [str]}]}, nothing else.
    Sizes and hex are checked by each map, which knows them."""
    if not isinstance(spec, dict):
        raise InputError(where, 'expected {"MAPNAME": [{"key": hex, "value": hex}, ...]}')
    for name, entries in spec.items():
        w = map_where(where, name)
        if not isinstance(entries, list):
            raise InputError(w, "expected a list of {key, value} entries")
        for i, e in enumerate(entries):
            expect_object(f"{w}[{i}]", e, ENTRY_FIELDS, required=("key",))
            expect_str(f"{w}[{i}].key", e["key"])
            if "value" in e:
                expect_str(f"{w}[{i}].value", e["value"])
            if "values" in e:
                for j, v in enumerate(expect_list(f"{w}[{i}].values", e["values"])):
                    expect_str(f"{w}[{i}].values[{j}]", v)
    return spec


def preset_entries(entries, where: str, key_size: int):
    """(where, key bytes, entry) of each entry of one map's MAPS.json list, in order: the
    emulator's maps and the kernel's preload read presets the same way."""
    if not isinstance(entries, list):
        raise InputError(where, "expected a list of {key, value} entries")
    for i, e in enumerate(entries):
        w = f"{where}[{i}]"
        if not isinstance(e, dict):
            raise InputError(w, "expected an object with key and value")
        yield w, parse_hex(f"{w}.key", e.get("key"), key_size), e


class Map:
    """Common part: identity, address window, the value region, preload/dump plumbing."""
    percpu = False
    dumpable = True

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        self.index = index
        self.d = d
        self.name = d.name
        self.ncpu = ncpu if self.percpu else 1
        self.cpu = 0
        self.base = layout.MAP_BASE + index * layout.MAP_STRIDE
        self.handle = layout.MAP_HANDLE_BASE + index * HANDLE_STRIDE
        self.elem = round8(d.value_size)
        self.region: Optional[Region] = None
        self.evictions = 0

    @property
    def type_name(self) -> str:
        return self.d.type_name

    def _make_region(self, slots: int) -> None:
        size = slots * self.ncpu * self.elem
        if size > layout.MAP_STRIDE:
            raise InputError(f"map {self.name!r}",
                             f"{size} bytes of values exceed the emulator's {layout.MAP_STRIDE}-byte "
                             "window per map (lower max_entries)")
        writable = not (self.d.flags & BPF_F_RDONLY_PROG)
        self.region = Region(f"map:{self.name}", self.base, bytearray(size), writable, "map_value")

    def regions(self) -> list[Region]:
        return [self.region] if self.region is not None else []

    def value_addr(self, slot: int, cpu: Optional[int] = None) -> int:
        return self.base + (slot * self.ncpu + (self.cpu if cpu is None else cpu)) * self.elem

    def _get(self, slot: int, cpu: int) -> bytes:
        off = (slot * self.ncpu + cpu) * self.elem
        return bytes(self.region.data[off:off + self.d.value_size])

    def _put(self, slot: int, cpu: int, value: bytes) -> None:
        off = (slot * self.ncpu + cpu) * self.elem
        self.region.data[off:off + self.d.value_size] = value

    def _zero(self, slot: int) -> None:
        off = slot * self.ncpu * self.elem
        n = self.ncpu * self.elem
        self.region.data[off:off + n] = bytes(n)

    # -- program side (overridden) -------------------------------------------------------
    def lookup(self, key: bytes) -> int:
        raise Fault(f"bpf_map_lookup_elem on {self.type_name} map {self.name!r} is rejected by the verifier")

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        raise Fault(f"bpf_map_update_elem on {self.type_name} map {self.name!r} is rejected by the verifier")

    def delete(self, key: bytes) -> int:
        raise Fault(f"bpf_map_delete_elem on {self.type_name} map {self.name!r} is rejected by the verifier")

    # -- MAPS.json -----------------------------------------------------------------------
    def preload(self, entries, where: str, programs: dict) -> None:
        for w, key, e in preset_entries(entries, where, self.d.key_size):
            self.preload_one(key, e, w, programs)

    def _values(self, e: dict, w: str) -> list[bytes]:
        """The per-CPU values of a preload entry ('value' for all, or 'values' one per CPU)."""
        vs = self.d.value_size
        if "values" in e and self.percpu:
            vals = e["values"]
            if not isinstance(vals, list) or not vals:
                raise InputError(f"{w}.values", "expected a non-empty list of hex values")
            raws = [parse_hex(f"{w}.values[{i}]", v, vs) for i, v in enumerate(vals)]
            fill = parse_hex(f"{w}.value", e["value"], vs) if "value" in e else raws[-1]
            return (raws + [fill] * self.ncpu)[:self.ncpu]
        return [parse_hex(f"{w}.value", e.get("value"), vs)] * self.ncpu

    def preload_one(self, key: bytes, e: dict, w: str, programs: dict) -> None:
        rc = self.sys_update(key, self._values(e, w))
        if rc:
            raise InputError(w, f"the map refuses the entry (errno {-rc})")

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        raise InputError(f"map {self.name!r}", f"{self.type_name} maps cannot be preloaded")

    def dump(self) -> list[dict]:
        return []


# ---------------------------------------------------------------- arrays

class ArrayMap(Map):
    """array, percpu_array and global data (.data/.rodata/.bss: one-entry arrays)."""

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        self.percpu = d.type == T["percpu_array"]
        super().__init__(index, d, ncpu)
        self._make_region(d.max_entries)
        if d.initial:
            init = bytes(d.initial[:d.value_size])
            self.region.data[:len(init)] = init

    def _index(self, key: bytes) -> int:
        return struct.unpack_from("<I", key.ljust(4, b"\0"))[0]

    def lookup(self, key: bytes) -> int:
        i = self._index(key)
        return self.value_addr(i) if i < self.d.max_entries else 0

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -EINVAL
        i = self._index(key)
        if i >= self.d.max_entries:
            return -E2BIG
        if flags & BPF_NOEXIST:
            return -EEXIST
        if flags & BPF_F_LOCK:
            return -EINVAL          # no bpf_spin_lock in the value (no BTF record here)
        self._put(i, self.cpu, value)
        return 0

    def delete(self, key: bytes) -> int:
        return -EINVAL

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        i = self._index(key)
        if i >= self.d.max_entries:
            return -E2BIG
        for c, v in enumerate(values):
            self._put(i, c, v)
        return 0

    def preload_one(self, key, e, w, programs) -> None:
        if self.d.flags & BPF_F_RDONLY_PROG or self.name.startswith((".data", ".rodata", ".bss")):
            if key != b"\0" * self.d.key_size:
                raise InputError(w, "global data has only key 00000000")
        super().preload_one(key, e, w, programs)

    def dump(self) -> list[dict]:
        out = []
        for i in range(self.d.max_entries):
            v = self._get(i, 0)
            if any(v):
                out.append({"key": struct.pack("<I", i)[:self.d.key_size].hex(), "value": v.hex()})
        return out


# ---------------------------------------------------------------- hash tables

class HashMap(Map):
    """hash, percpu_hash, lru_hash, lru_percpu_hash."""

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        self.percpu = d.type in (T["percpu_hash"], T["lru_percpu_hash"])
        self.lru = d.type in (T["lru_hash"], T["lru_percpu_hash"])
        super().__init__(index, d, ncpu)
        # the kernel preallocates max_entries elements, plus one spare per CPU for plain
        # hash maps (htab_has_extra_elems) so that replacing an entry never fails
        self.capacity = d.max_entries + (0 if self.lru or self.percpu else self.ncpu)
        self._make_region(self.capacity)
        self.entries: "OrderedDict[bytes, int]" = OrderedDict()   # key -> slot, LRU order
        self.free = list(range(self.capacity - 1, -1, -1))         # pop() gives the lowest

    def _alloc(self) -> Optional[int]:
        """A free element for a new entry; None (-E2BIG) when max_entries are in use."""
        if len(self.entries) >= self.d.max_entries or not self.free:
            return None
        return self.free.pop()

    def _lru_pop(self) -> int:
        """A free LRU element, evicting the least recently used entry when none is free."""
        if not self.free:
            _, slot = self.entries.popitem(last=False)
            self.free.append(slot)
            self.evictions += 1
        return self.free.pop()

    def lookup(self, key: bytes) -> int:
        slot = self.entries.get(key)
        if slot is None:
            return 0
        if self.lru:
            self.entries.move_to_end(key)
        return self.base + (slot * self.ncpu + self.cpu) * self.elem      # value_addr(slot)

    @staticmethod
    def _check(old: Optional[int], flags: int) -> int:
        if flags == BPF_NOEXIST and old is not None:
            return -EEXIST
        if flags == BPF_EXIST and old is None:
            return -ENOENT
        return 0

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -EINVAL
        if flags & BPF_F_LOCK:
            return -EINVAL          # no bpf_spin_lock in the value (no BTF record here)
        if self.lru:
            return self._lru_update(key, value, flags)
        old = self.entries.get(key)
        err = self._check(old, flags)
        if err:
            return err
        if self.percpu and old is not None:
            self._put(old, self.cpu, value)        # per-CPU: in place, this CPU only
            return 0
        if old is not None:                        # replace: a new element, the old one freed
            slot = self.free.pop()
            del self.entries[key]
            self.free.append(old)
        else:
            slot = self._alloc()
            if slot is None:
                return -E2BIG
        self._zero(slot)
        self._put(slot, self.cpu, value)
        self.entries[key] = slot
        return 0

    def _lru_update(self, key: bytes, value: bytes, flags: int) -> int:
        """htab_lru_(percpu_)map_update_elem: take an element first (possibly evicting),
        then check the flags; per-CPU maps update an existing entry in place."""
        new = None if (self.percpu and flags == BPF_EXIST) else self._lru_pop()
        old = self.entries.get(key)
        err = self._check(old, flags)
        if err:
            if new is not None:
                self.free.append(new)
            return err
        if self.percpu and old is not None:
            self._put(old, self.cpu, value)
            self.entries.move_to_end(key)
            if new is not None:
                self.free.append(new)
            return 0
        self._zero(new)
        self._put(new, self.cpu, value)
        if old is not None:
            del self.entries[key]
            self.free.append(old)
        self.entries[key] = new
        return 0

    def delete(self, key: bytes) -> int:
        slot = self.entries.pop(key, None)
        if slot is None:
            return -ENOENT
        self.free.append(slot)
        return 0

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        slot = self.entries.get(key)
        if slot is None:
            slot = self._lru_pop() if self.lru else self._alloc()
            if slot is None:
                return -E2BIG
            self._zero(slot)
            self.entries[key] = slot
        for c, v in enumerate(values):
            self._put(slot, c, v)
        return 0

    def dump(self) -> list[dict]:
        return sorted(({"key": k.hex(), "value": self._get(s, 0).hex()} for k, s in self.entries.items()),
                      key=lambda e: e["key"])


# ---------------------------------------------------------------- LPM trie

def _prefix(data: bytes, plen: int) -> bytes:
    """The first plen bits of data (as the trie compares them), the rest zeroed."""
    full, rem = divmod(plen, 8)
    out = bytearray(len(data))
    out[:full] = data[:full]
    if rem:
        out[full] = data[full] & (0xFF << (8 - rem)) & 0xFF
    return bytes(out)


class LpmTrieMap(Map):
    """Key: u32 prefixlen + data (network order).  Lookup is longest-prefix match over the
    entries whose prefix length is at most the key's."""

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        super().__init__(index, d, ncpu)
        self.data_size = d.key_size - 4
        self.max_plen = self.data_size * 8
        self.capacity = d.max_entries + 1
        self._make_region(self.capacity)
        self.entries: dict[tuple[int, bytes], tuple[bytes, int]] = {}  # (plen, prefix) -> (key, slot)
        self.plens: dict[int, int] = {}            # prefix length -> entries
        self.free = list(range(self.capacity - 1, -1, -1))

    def _split(self, key: bytes) -> tuple[int, bytes]:
        plen = struct.unpack_from("<I", key)[0]
        return plen, key[4:4 + self.data_size]

    def lookup(self, key: bytes) -> int:
        plen, data = self._split(key)
        plen = min(plen, self.max_plen)
        for p in sorted((p for p in self.plens if p <= plen), reverse=True):
            hit = self.entries.get((p, _prefix(data, p)))
            if hit is not None:
                return self.value_addr(hit[1])
        return 0

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        if flags > BPF_EXIST:
            return -EINVAL
        plen, data = self._split(key)
        if plen > self.max_plen:
            return -EINVAL
        k = (plen, _prefix(data, plen))
        old = self.entries.get(k)
        if old is not None and flags == BPF_NOEXIST:
            return -EEXIST
        if old is None:
            if flags == BPF_EXIST:
                return -ENOENT
            if len(self.entries) >= self.d.max_entries:
                return -ENOSPC
        slot = self.free.pop()
        if old is not None:
            self.free.append(old[1])
        else:
            self.plens[plen] = self.plens.get(plen, 0) + 1
        self._put(slot, 0, value)
        self.entries[k] = (bytes(key), slot)
        return 0

    def delete(self, key: bytes) -> int:
        plen, data = self._split(key)
        if plen > self.max_plen:
            return -EINVAL
        hit = self.entries.pop((plen, _prefix(data, plen)), None)
        if hit is None:
            return -ENOENT
        self.free.append(hit[1])
        self.plens[plen] -= 1
        if not self.plens[plen]:
            del self.plens[plen]
        return 0

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        return self.update(key, values[0], BPF_ANY)

    def dump(self) -> list[dict]:
        return sorted(({"key": k.hex(), "value": self._get(s, 0).hex()} for k, s in self.entries.values()),
                      key=lambda e: e["key"])


# ---------------------------------------------------------------- redirect targets

class DevMap(Map):
    """devmap (array by index) and devmap_hash (by key); values are the 4-byte ifindex or
    struct bpf_devmap_val.  Programs may look entries up (read-only) and redirect to them."""

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        super().__init__(index, d, ncpu)
        self.hashed = d.type == T["devmap_hash"]
        self._make_region(d.max_entries)
        self.region.writable = False
        self.entries: dict[int, int] = {}          # key -> slot
        self.free = list(range(d.max_entries - 1, -1, -1))

    def _key(self, key: bytes) -> int:
        return struct.unpack_from("<I", key.ljust(4, b"\0"))[0]

    def target(self, k: int) -> Optional[int]:
        """Slot of entry k (bpf_redirect_map's lookup), None when empty."""
        return self.entries.get(k & 0xFFFFFFFF)

    def ifindex(self, k: int) -> Optional[int]:
        slot = self.target(k)
        if slot is None:
            return None
        return struct.unpack_from("<I", self._get(slot, 0).ljust(4, b"\0"))[0]

    def lookup(self, key: bytes) -> int:
        slot = self.target(self._key(key))
        return 0 if slot is None else self.value_addr(slot)

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        k = self._key(key)
        if not self.hashed and k >= self.d.max_entries:
            return -E2BIG
        slot = self.entries.get(k)
        if slot is None:
            if self.hashed:
                if not self.free:
                    return -E2BIG
                slot = self.free.pop()
            else:
                slot = k
            self.entries[k] = slot
        self._put(slot, 0, values[0])
        return 0

    def dump(self) -> list[dict]:
        return sorted(({"key": struct.pack("<I", k)[:self.d.key_size].hex(),
                        "value": self._get(s, 0).hex()} for k, s in self.entries.items()),
                      key=lambda e: e["key"])


class CpuMap(DevMap):
    """cpumap: values struct bpf_cpumap_val {qsize, prog}; only bpf_redirect_map uses it."""

    def lookup(self, key: bytes) -> int:
        return Map.lookup(self, key)


class XskMap(DevMap):
    """xskmap: entries are AF_XDP sockets, which neither the emulator nor the test-run has,
    so every slot is empty and bpf_redirect_map falls back to its flags."""
    dumpable = False

    def sys_update(self, key: bytes, values: list[bytes]) -> int:
        raise InputError(f"map {self.name!r}", "xskmap entries are AF_XDP sockets and cannot be preloaded")


class ProgArray(Map):
    """prog_array: slot -> Program (tail calls); preloaded with program names."""

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        super().__init__(index, d, ncpu)
        self.progs: dict[int, object] = {}
        self.names: dict[int, str] = {}

    def preload_one(self, key: bytes, e: dict, w: str, programs: dict) -> None:
        k = struct.unpack_from("<I", key.ljust(4, b"\0"))[0]
        name = e.get("value")
        if name not in programs:
            raise InputError(f"{w}.value", f"prog_array value must name a program of the object "
                                           f"({', '.join(sorted(programs)) or 'none loaded'}), got {quote(name)}")
        if k >= self.d.max_entries:
            raise InputError(f"{w}.key", f"index {k} is beyond max_entries {self.d.max_entries}")
        self.progs[k] = programs[name]
        self.names[k] = name

    def get(self, index: int):
        return self.progs.get(index) if index < self.d.max_entries else None

    def dump(self) -> list[dict]:
        return [{"key": struct.pack("<I", k)[:self.d.key_size].hex(), "value": self.names[k]}
                for k in sorted(self.progs)]


# ---------------------------------------------------------------- event outputs

class PerfEventArray(Map):
    """perf_event_array: bpf_perf_event_output records are captured in `records`."""
    dumpable = False

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        super().__init__(index, d, ncpu)
        self.records: list[tuple[int, bytes]] = []     # (cpu index, bytes)


class RingBuf(Map):
    """ringbuf: the data area sits in the map's window; nobody consumes during a run (as in
    the test-run), so records accumulate until the ring is full.  Positions follow
    kernel/bpf/ringbuf.c: an 8-byte header per record, lengths rounded up to 8."""
    dumpable = False
    HDR = 8
    BUSY, DISCARD = 1 << 31, 1 << 30

    def __init__(self, index: int, d: MapDef, ncpu: int = 1):
        super().__init__(index, d, ncpu)
        self.size = d.max_entries
        if self.size > layout.MAP_STRIDE:
            raise InputError(f"map {self.name!r}", f"ring buffer of {self.size} bytes exceeds the "
                                                   f"emulator's {layout.MAP_STRIDE}-byte window")
        self.region = Region(f"ringbuf:{self.name}", self.base, bytearray(self.size), True, "map_value")
        self.prod = 0
        self.records: dict[int, dict] = {}     # start position -> {"len", "state"}

    def reserve(self, size: int) -> int:
        """Address of a new record's sample, 0 when it does not fit."""
        if size > 0x0FFFFFFF - self.HDR:      # RINGBUF_MAX_RECORD_SZ
            return 0
        n = round8(size + self.HDR)
        if n > self.size:
            return 0
        pend = min((p for p, r in self.records.items() if r["state"] == "busy"), default=self.prod)
        new = self.prod + n
        if new > self.size - 1 or new - pend > self.size - 1:   # consumer stays at 0
            return 0
        start = self.prod
        self.records[start] = {"len": size, "state": "busy"}
        self.prod = new
        return self.base + start + self.HDR

    def finish(self, addr: int, discard: bool) -> None:
        start = addr - self.HDR - self.base
        rec = self.records.get(start)
        if rec is None or rec["state"] != "busy":
            raise Fault("bpf_ringbuf_submit/discard of a pointer ringbuf_reserve did not return", addr)
        rec["state"] = "discarded" if discard else "committed"

    def committed(self) -> list[bytes]:
        return [bytes(self.region.data[p + self.HDR:p + self.HDR + r["len"]])
                for p, r in sorted(self.records.items()) if r["state"] == "committed"]


class UnsupportedMap(Map):
    """Map types the runtime holds but whose helpers it does not model (map-in-map, queue,
    stack, bloom filter, ...): any helper call on them is a Fault naming the map."""
    dumpable = False


_CLASSES: dict[int, Callable[..., Map]] = {
    T["array"]: ArrayMap, T["percpu_array"]: ArrayMap,
    T["hash"]: HashMap, T["percpu_hash"]: HashMap, T["lru_hash"]: HashMap, T["lru_percpu_hash"]: HashMap,
    T["lpm_trie"]: LpmTrieMap, T["devmap"]: DevMap, T["devmap_hash"]: DevMap, T["cpumap"]: CpuMap,
    T["xskmap"]: XskMap, T["prog_array"]: ProgArray, T["perf_event_array"]: PerfEventArray,
    T["ringbuf"]: RingBuf,
}


def make_map(index: int, d: MapDef, ncpu: int = 1) -> Map:
    return _CLASSES.get(d.type, UnsupportedMap)(index, d, ncpu)


@dataclass
class MapSet:
    """The maps of one object, shared by all its programs (tail calls), by name and index."""
    maps: list[Map]

    def __post_init__(self) -> None:
        # handle -> map, for the helpers' per-call lookup (by_handle checks it is current)
        self._handles = {layout.MAP_HANDLE_BASE + i * HANDLE_STRIDE: m for i, m in enumerate(self.maps)}

    @classmethod
    def build(cls, defs: list[MapDef], ncpu: int = 1) -> "MapSet":
        return cls([make_map(i, d, ncpu) for i, d in enumerate(defs)])

    def by_name(self, name: str) -> Map:
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(name)

    def by_handle(self, addr: int) -> Map:
        m = self._handles.get(addr)
        if m is not None and len(self._handles) == len(self.maps):
            return m
        i, r = divmod(addr - layout.MAP_HANDLE_BASE, HANDLE_STRIDE)
        if r or not 0 <= i < len(self.maps):
            if not self.maps:
                raise Fault(f"map helper called with 0x{addr:x}, and the program has no map "
                            "definitions (objdump text carries none: use the ELF object)")
            raise Fault(f"0x{addr:x} is not a map pointer")
        return self.maps[i]

    def preload(self, spec: dict, where: str, programs: dict) -> None:
        check_preset(spec, where)
        names = {m.name for m in self.maps}
        for name, entries in spec.items():
            if name not in names:
                raise InputError(where, f"map {quote(name)} is not in the program "
                                        f"(it has: {', '.join(sorted(names)) or 'no maps'})")
            self.by_name(name).preload(entries, map_where(where, name), programs)

    def dump(self) -> dict[str, list[dict]]:
        return {m.name: m.dump() for m in sorted(self.maps, key=lambda m: m.name) if m.dumpable}
