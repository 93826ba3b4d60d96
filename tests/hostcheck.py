"""What the test suite may change on the host, so a session can prove it left it as it found it.

The suite runs as root against the real kernel: bpftool pins programs, `ip netns add` creates
named namespaces (and bind-mounts /run/netns the first time), libbpf may pin maps by name.
`snapshot()` records what is visible of those; `leftovers(before, after)` names what is new.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
NETNS_DIR = Path("/run/netns")
NET_CLASS = Path("/sys/class/net")
PRELOADED = {"maps.debug", "progs.debug"}   # the kernel's bpf_preload iterators, in every bpffs
PIN_DEPTH = 3            # bpffs levels listed: enough for bpftool's `loadall DIR` and libxdp's dirs
# files the tools themselves keep at the project root (not build outputs)
ROOT_IGNORED = {".pytest_cache", ".hypothesis", ".benchmarks", "__pycache__", ".git"}


@dataclass(frozen=True)
class HostState:
    mounts: frozenset       # (mount point, fs type)
    netns: frozenset        # names under /run/netns
    pins: frozenset         # paths of objects in every bpf filesystem mounted
    links: frozenset        # interface names of this network namespace
    root_files: frozenset   # top-level names in the project root


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts(text: str) -> frozenset:
    """(mount point, fs type) of each line of /proc/self/mountinfo."""
    out = set()
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and rest:
            out.add((_unescape(fields[4]), rest[0]))
    return frozenset(out)


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _pins(top: Path, depth: int) -> set[str]:
    out = set()
    for name in _listdir(top):
        if name in PRELOADED:
            continue
        p = top / name
        out.add(str(p))
        if depth > 1 and p.is_dir() and not p.is_symlink():
            out |= _pins(p, depth - 1)
    return out


def snapshot(root: Path) -> HostState:
    mnt = mounts(MOUNTINFO.read_text())
    pins: set[str] = set()
    for point, kind in mnt:
        if kind == "bpf":
            pins |= _pins(Path(point), PIN_DEPTH)
    return HostState(mounts=mnt, netns=frozenset(_listdir(NETNS_DIR)), pins=frozenset(pins),
                     links=frozenset(_listdir(NET_CLASS)),
                     root_files=frozenset(set(_listdir(root)) - ROOT_IGNORED))


def leftovers(before: HostState, after: HostState) -> list[str]:
    """One line per thing the suite added (what it removed is not its to restore)."""
    out = [f"mount {p} ({k})" for p, k in sorted(after.mounts - before.mounts)]
    out += [f"netns {n}" for n in sorted(after.netns - before.netns)]
    out += [f"bpffs pin {p}" for p in sorted(after.pins - before.pins)]
    out += [f"link {n}" for n in sorted(after.links - before.links)]
    out += [f"file at the project root: {n}" for n in sorted(after.root_files - before.root_files)]
    return out


def umount_netns_dir_if_ours(before: HostState) -> None:
    """`ip netns add` bind-mounts /run/netns on itself the first time and `ip netns del` never
    undoes it: undo it when the suite made it and no namespace is left in it."""
    if any(p == str(NETNS_DIR) for p, _ in before.mounts):
        return
    if _listdir(NETNS_DIR):
        return
    now = mounts(MOUNTINFO.read_text())
    if any(p == str(NETNS_DIR) for p, _ in now):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(str(NETNS_DIR).encode(), 0)      # EBUSY if someone entered it meanwhile: keep


def mount_bpffs(where: Path) -> str:
    """Mount a new bpf filesystem instance on `where` ('' on success, else why not): pins made
    there are private to the caller and vanish with `umount`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", str(where).encode(), b"bpf", 0, b"mode=700") != 0:
        return f"cannot mount a bpf filesystem on {where}: {os.strerror(ctypes.get_errno())}"
    return ""


def umount(where: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(str(where).encode(), 0) != 0:
        raise OSError(ctypes.get_errno(), f"umount {where}: {os.strerror(ctypes.get_errno())}")
