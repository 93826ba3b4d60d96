"""The fast path's region caches, over Memory's public API (region_at, maps_whole, find, version).

Generated code keeps, in local variables, the regions its accesses most likely hit:
- the load cache P (``P, PB, PE, PW``: bytes, base, end, writable), the region loaded
  from last; Q (``Q, QB, QE``) the one before it (a map value read between packet reads);
- the store cache W (``W, WB, WE``), the writable region stored to last;
- the hook cache H (``HK, HB, HE``: load function, base, end), the context.
An access tries them (and the stack) and falls back to env.mem, which refills them;
``CACHE_LOCALS`` is the order in which the slow paths (``_State.ld``) take and return
them.  They are emptied when a helper call changed the regions (``Memory.version``
moved).  A run starts with `EntryCaches`: the context's hook and the first region the
previous run loaded from (the packet), when still mapped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emulator.runtime.memory import Memory, Region

CACHE_LOCALS = "P, PB, PE, PW, HK, HB, HE, W, WB, WE"

NO_HOOK = (None, 1, 0)             # an empty hook cache (HK, HB, HE)
NO_PLAIN = (None, 1, 0, False)     # an empty load cache (P, PB, PE, PW)
NO_STORE = (None, 1, 0)            # an empty store cache (W, WB, WE)

_CACHEABLE: dict[type, bool] = {}


def cacheable(mem: Memory) -> bool:
    """Region caches are only safe when memory behaves exactly like emulator.runtime.memory.Memory
    (its class overrides none of the methods that find, move or access regions)."""
    cls = type(mem)
    ok = _CACHEABLE.get(cls)
    if ok is None:
        ok = _CACHEABLE[cls] = (all(getattr(cls, m) is getattr(Memory, m)
                                    for m in ("find", "load", "store", "add", "remove", "move", "region_at",
                                              "maps_whole"))
                                and hasattr(mem, "version"))
    return ok


def plain_at(mem: Memory, a: int) -> tuple:
    """The load and store caches (P, PB, PE, PW, W, WB, WE) set to the plain region holding
    address `a` (a pointer a helper returned), or empty: never a Fault, the accesses decide."""
    r = mem.region_at(a)
    if r is not None and r.hook is None:
        data = r.data
        end = r.base + len(data)
        if r.writable:
            return data, r.base, end, True, data, r.base, end
        return data, r.base, end, False, *NO_STORE
    return (*NO_PLAIN, *NO_STORE)


@dataclass
class EntryCaches:
    """The caches a run's code starts with, and what the previous start saw: a run whose
    memory changed only by the stack's remove and add since then starts with the same."""
    hook: tuple = NO_HOOK
    plain: tuple = NO_PLAIN
    first: Optional[Region] = None          # the first plain region a run loaded from
    seen: tuple = (-1, None, None, NO_HOOK, NO_PLAIN)   # (version, r1, first, hook, plain)

    def forget(self) -> None:
        """A new env or memory: nothing seen before holds."""
        self.seen = (-1, None, None, NO_HOOK, NO_PLAIN)

    def empty(self) -> None:
        """Start with empty caches (a callback inside a helper call, which may have moved
        regions: its code refills them from env.mem)."""
        self.hook = NO_HOOK
        self.plain = NO_PLAIN

    def reusable(self, version: int, r1: int) -> bool:
        """The previous start's caches hold: memory changed only by the stack's remove and
        add since then (`version` is the memory's now), and the run has the same r1."""
        seen = self.seen
        return version == seen[0] + 2 and r1 == seen[1] and self.first is seen[2]

    def start(self, mem: Memory, r1: int) -> None:
        """Caches for a run with r1 = `r1` (fastpath._State.start inlines the reusable case)."""
        seen = self.seen
        if self.reusable(mem.version, r1):
            self.hook = seen[3]
            self.plain = seen[4]
            self.seen = (mem.version, r1, self.first, self.hook, self.plain)
        else:
            self.refresh(mem, r1)

    def refresh(self, mem: Memory, r1: int) -> None:
        """Caches found anew: the hook region holding r1 (the context), so that its loads
        skip env.mem, and the region the previous run loaded from first (the packet) if
        `mem` still maps all of it."""
        r = mem.region_at(r1)
        self.hook = NO_HOOK if r is None or r.hook is None else (r.hook.load, r.base, r.base + len(r.data))
        f = self.first
        if f is not None and f.hook is None and mem.maps_whole(f):
            self.plain = (f.data, f.base, f.base + len(f.data), f.writable)
        else:
            self.plain = NO_PLAIN
            self.first = None
        self.seen = (mem.version, r1, self.first, self.hook, self.plain)
