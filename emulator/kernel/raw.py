"""Loading an object libbpf 1.x refuses: legacy `SEC("maps")` map definitions.

libbpf dropped `struct bpf_map_def` maps in 1.0, but the contract accepts such objects (the
kernel's own samples use them).  The project's loader already links them into ``Program``s
whose map references are the kernel's fd_array forms (``lddw`` src 5 = BPF_PSEUDO_MAP_IDX,
src 6 = BPF_PSEUDO_MAP_IDX_VALUE, imm = map index [| offset << 32]), so the kernel takes the
instructions as they are: create each map with ``bpf_map_create``, give global data its
initial bytes (``.rodata`` then frozen, as libbpf does), and ``bpf_prog_load`` every program
with ``fd_array`` = the map fds.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field

from emulator.kernel import libbpf as lb
from isa.errors import InputError
from isa.insn import encode

LOG_SIZE = 1 << 20
GLOBAL_DATA = (".data", ".rodata", ".bss")


@dataclass
class RawObject:
    map_fds: list[int] = field(default_factory=list)
    prog_fds: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)    # program -> verifier log tail

    def close(self) -> None:
        for fd in list(self.map_fds) + list(self.prog_fds.values()):
            if fd >= 0:
                os.close(fd)
        self.map_fds.clear()
        self.prog_fds.clear()


def _create(path: str, m) -> int:
    L = lb.lib()
    opts = lb.MapCreateOpts(sz=ctypes.sizeof(lb.MapCreateOpts), map_flags=m.flags)
    inner = -1
    if m.inner is not None:
        inner = _create(path, m.inner)
        opts.inner_map_fd = inner
    fd = L.bpf_map_create(m.type, m.name[:15].encode(), m.key_size, m.value_size,
                          m.max_entries, ctypes.byref(opts))
    err = ctypes.get_errno()
    if inner >= 0:
        os.close(inner)
    if fd < 0:
        raise InputError(path, f"the kernel refuses map {m.name!r} ({m.type_name}): {os.strerror(err)}")
    return fd


def _load(program, fd_array, log: bool):
    L = lb.lib()
    code = encode(program.insns)
    opts = lb.ProgLoadOpts(sz=ctypes.sizeof(lb.ProgLoadOpts), expected_attach_type=lb.BPF_XDP,
                           fd_array=ctypes.cast(fd_array, ctypes.c_void_p).value)
    buf = None
    if log:
        buf = ctypes.create_string_buffer(LOG_SIZE)
        opts.log_level, opts.log_size = 1, LOG_SIZE
        opts.log_buf = ctypes.cast(buf, ctypes.c_void_p).value
    fd = L.bpf_prog_load(lb.BPF_PROG_TYPE_XDP, program.name[:15].encode(),
                         (program.license or "GPL").encode(), code, len(code) // 8, ctypes.byref(opts))
    err = ctypes.get_errno()
    return fd, err, (buf.value.decode(errors="replace") if buf is not None else "")


def load_raw(path: str, programs: list, initial: dict[str, bytes]) -> RawObject:
    """Maps and programs of a linked object; `initial` overrides global data contents."""
    obj = RawObject()
    try:
        maps = programs[0].maps
        for m in maps:
            fd = _create(path, m)
            obj.map_fds.append(fd)
            data = initial.get(m.name, m.initial)
            if data is not None and m.section.startswith(GLOBAL_DATA):
                key = ctypes.create_string_buffer(4)
                val = ctypes.create_string_buffer(bytes(data).ljust(m.value_size, b"\0"), m.value_size)
                if lb.lib().bpf_map_update_elem(fd, key, val, 0) < 0:
                    raise InputError(path, f"cannot set {m.name}: {os.strerror(ctypes.get_errno())}")
            if m.section.startswith(".rodata"):
                lb.lib().bpf_map_freeze(fd)
        fd_array = (ctypes.c_int * max(len(obj.map_fds), 1))(*obj.map_fds)
        for p in programs:
            fd, err, _ = _load(p, fd_array, log=False)
            if fd < 0:
                _, _, text = _load(p, fd_array, log=True)
                lines = [l for l in text.splitlines() if l.strip()]
                obj.refused[p.name] = f"{os.strerror(err)}: " + " | ".join(lines[-8:])
            else:
                obj.prog_fds[p.name] = fd
    except BaseException:
        obj.close()
        raise
    return obj
