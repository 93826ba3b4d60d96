"""Memory as a set of typed regions; any access outside them is a Fault.

Fault is the only exception executors use for a misbehaving program; they catch it and
end the run with its reason, so nothing escapes to the caller as a Python exception.
"""
from __future__ import annotations

import bisect
from bisect import bisect_right
from dataclasses import dataclass
from typing import Optional


class Fault(Exception):
    """A program did something the hardware/kernel would stop it for."""

    def __init__(self, reason: str, addr: Optional[int] = None):
        super().__init__(reason if addr is None else f"{reason} at 0x{addr:x}")
        self.reason = reason
        self.addr = addr


class RegionHook:
    """A region whose loads are computed (e.g. xdp_md.data reads give a packet address)."""

    def load(self, off: int, size: int) -> int:
        raise Fault("load from a region without contents", off)

    def store(self, off: int, size: int, value: int) -> None:
        raise Fault("store to a read-only region", off)


@dataclass(eq=False)
class Region:
    name: str
    base: int
    data: bytearray
    writable: bool = True
    kind: str = ""          # "ctx", "packet", "stack", "map_value", "mem", "scratch"
    hook: Optional["RegionHook"] = None   # computed contents (the xdp_md context)

    @property
    def end(self) -> int:
        return self.base + len(self.data)


class Memory:
    """Regions by base address.  `version` grows at every add, remove and move, so a cache
    of where regions are (the fast path's, across a helper call) knows when it is stale:
    a mapped region's base, data object and length change only through move."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._regions: list[Region] = []
        self.version = 0

    def add(self, region: Region) -> Region:
        i = bisect.bisect_left(self._bases, region.base)
        self.version += 1
        self._bases.insert(i, region.base)
        self._regions.insert(i, region)
        return region

    def remove(self, region: Region) -> None:
        i = self._regions.index(region)
        self.version += 1
        del self._bases[i]
        del self._regions[i]

    def move(self, region: Region, base: int, data) -> None:
        """Give a mapped region a new base and contents: remove + add, done in place when
        the region keeps its place among the others (the packet after adjust_head, or a
        frame of another length)."""
        i = self._regions.index(region)
        self.version += 1
        bases = self._bases
        if (i == 0 or bases[i - 1] < base) and (i + 1 == len(bases) or base < bases[i + 1]):
            region.base = base
            region.data = data
            bases[i] = base
            return
        self.remove(region)
        region.base = base
        region.data = data
        self.add(region)

    def regions(self) -> list[Region]:
        return list(self._regions)

    def region_at(self, addr: int) -> Optional[Region]:
        """The region holding byte `addr`, or None: find() without a Fault (for caches)."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._regions[i]
            if addr - r.base < len(r.data):
                return r
        return None

    def maps_whole(self, region: Region) -> bool:
        """Whether find() returns `region` for every address in it (it is mapped and no
        region mapped above its base overlaps it); False for an empty region."""
        bases = self._bases
        i = bisect_right(bases, region.base) - 1
        end = region.base + len(region.data)
        return (i >= 0 and self._regions[i] is region and end > region.base
                and (i + 1 == len(bases) or bases[i + 1] >= end))

    def find(self, addr: int, size: int) -> tuple[Region, int]:
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._regions[i]
            off = addr - r.base
            if off + size <= len(r.data):
                return r, off
        raise Fault(f"invalid {size}-byte access", addr)

    # load/store/read/write repeat find's three lines: they run once per memory access of
    # every executor, and a call less is a fifth of their cost in CPython
    def load(self, addr: int, size: int) -> int:
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._regions[i]
            off = addr - r.base
            if off + size <= len(r.data):
                if r.hook is not None:
                    return r.hook.load(off, size)
                return int.from_bytes(r.data[off:off + size], "little")
        raise Fault(f"invalid {size}-byte access", addr)

    def store(self, addr: int, size: int, value: int) -> None:
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._regions[i]
            off = addr - r.base
            if off + size <= len(r.data):
                if r.hook is not None:
                    return r.hook.store(off, size, value)
                if not r.writable:
                    raise Fault(f"write to read-only {r.kind or r.name}", addr)
                r.data[off:off + size] = (value & ((1 << (size * 8)) - 1)).to_bytes(size, "little")
                return None
        raise Fault(f"invalid {size}-byte access", addr)

    def read(self, addr: int, n: int) -> bytes:
        if n == 0:
            return b""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._regions[i]
            off = addr - r.base
            if off + n <= len(r.data):
                return bytes(r.data[off:off + n])
        raise Fault(f"invalid {n}-byte access", addr)

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        r, off = self.find(addr, len(data))
        if not r.writable:
            raise Fault(f"write to read-only {r.kind or r.name}", addr)
        r.data[off:off + len(data)] = data
