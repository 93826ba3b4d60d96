"""The kernel's own x86 JIT image of a loaded program: the reference for our translator.

``BPF_OBJ_GET_INFO_BY_FD`` (libbpf's ``bpf_obj_get_info_by_fd``) fills ``struct
bpf_prog_info``; asked once for the lengths and once more with buffers, it gives the JIT's
machine code (``jited_prog_insns``, every subprogram's image in turn) and the verifier's
rewritten bytecode (``xlated_prog_insns``).  Capstone counts the x86-64 instructions of the
image.  The sysctls ``net.core.bpf_jit_enable`` (0: the interpreter runs, there is no image)
and ``bpf_jit_harden`` (constant blinding adds instructions) shape what we see: they are read
and reported, never changed.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import Structure, c_char, c_uint8, c_uint32, c_uint64
from dataclasses import dataclass
from typing import Optional

from emulator.kernel import libbpf as lb
from isa.errors import InputError

SYSCTL = "/proc/sys/net/core"
XLATED_INSN_SIZE = 8


class BpfProgInfo(Structure):
    """struct bpf_prog_info (include/uapi/linux/bpf.h, Linux 6.x); the kernel fills at most
    the size we pass, so fields it does not know stay zero."""
    _fields_ = [("type", c_uint32), ("id", c_uint32), ("tag", c_uint8 * 8),
                ("jited_prog_len", c_uint32), ("xlated_prog_len", c_uint32),
                ("jited_prog_insns", c_uint64), ("xlated_prog_insns", c_uint64),
                ("load_time", c_uint64), ("created_by_uid", c_uint32), ("nr_map_ids", c_uint32),
                ("map_ids", c_uint64), ("name", c_char * 16), ("ifindex", c_uint32),
                ("gpl_compatible", c_uint32), ("netns_dev", c_uint64), ("netns_ino", c_uint64),
                ("nr_jited_ksyms", c_uint32), ("nr_jited_func_lens", c_uint32),
                ("jited_ksyms", c_uint64), ("jited_func_lens", c_uint64),
                ("btf_id", c_uint32), ("func_info_rec_size", c_uint32), ("func_info", c_uint64),
                ("nr_func_info", c_uint32), ("nr_line_info", c_uint32), ("line_info", c_uint64),
                ("jited_line_info", c_uint64), ("nr_jited_line_info", c_uint32),
                ("line_info_rec_size", c_uint32), ("jited_line_info_rec_size", c_uint32),
                ("nr_prog_tags", c_uint32), ("prog_tags", c_uint64),
                ("run_time_ns", c_uint64), ("run_cnt", c_uint64), ("recursion_misses", c_uint64),
                ("verified_insns", c_uint32), ("attach_btf_obj_id", c_uint32),
                ("attach_btf_id", c_uint32)]


@dataclass(frozen=True)
class JitSettings:
    """The JIT sysctls as read now (None where the file is absent)."""
    enable: Optional[int]
    harden: Optional[int]

    def refusal(self) -> str:
        """Why there is no JIT image to read ('' when there should be one)."""
        if self.enable == 0:
            return "the kernel's BPF JIT is disabled (net.core.bpf_jit_enable = 0)"
        return ""


@dataclass(frozen=True)
class KernelJit:
    """The kernel's JIT output for one program: its bytes, their x86-64 instruction count,
    the verifier's rewritten bytecode length, and the settings it was made under."""
    code: bytes
    insns: int
    xlated_insns: int
    verified_insns: int
    functions: int
    settings: JitSettings
    run_time_ns: int = 0
    run_cnt: int = 0


def _read_int(name: str) -> Optional[int]:
    try:
        with open(os.path.join(SYSCTL, name)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def jit_settings() -> JitSettings:
    return JitSettings(_read_int("bpf_jit_enable"), _read_int("bpf_jit_harden"))


def _get_info(fd: int, info: BpfProgInfo, where: str) -> None:
    n = c_uint32(ctypes.sizeof(BpfProgInfo))
    if lb.lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)) < 0:
        raise InputError(where, f"BPF_OBJ_GET_INFO_BY_FD refused: {os.strerror(ctypes.get_errno())}")


def count_x86(code: bytes) -> int:
    """x86-64 instructions in a machine-code image (capstone); the JIT pads nothing, so a
    byte capstone cannot decode is an error, not a gap."""
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    n = used = 0
    for _addr, size, _mn, _ops in md.disasm_lite(code, 0):
        n += 1
        used += size
    if used != len(code):
        raise ValueError(f"capstone stops at byte {used} of the {len(code)}-byte image")
    return n


def prog_jit(fd: int, where: str = "program") -> KernelJit:
    """The JIT image of a loaded program fd (InputError when the kernel has none to give)."""
    settings = jit_settings()
    sizes = BpfProgInfo()
    _get_info(fd, sizes, where)
    if sizes.jited_prog_len == 0:
        why = settings.refusal() or ("the kernel gives no JIT image (not JIT-compiled, or raw "
                                     "dumps are restricted: kernel.kptr_restrict / CAP_SYSLOG)")
        raise InputError(where, why)
    code = ctypes.create_string_buffer(sizes.jited_prog_len)
    full = BpfProgInfo(jited_prog_len=sizes.jited_prog_len,
                       jited_prog_insns=ctypes.addressof(code))
    _get_info(fd, full, where)
    image = code.raw[:full.jited_prog_len]
    return KernelJit(code=image, insns=count_x86(image),
                     xlated_insns=sizes.xlated_prog_len // XLATED_INSN_SIZE,
                     verified_insns=sizes.verified_insns, functions=max(sizes.nr_jited_ksyms, 1),
                     settings=settings, run_time_ns=full.run_time_ns, run_cnt=full.run_cnt)


def kernel_jit(prog_path: str, section: Optional[str] = None) -> KernelJit:
    """Load PROG (ELF object, or llvm-objdump text / .s through the project's loader) into the
    running kernel, read its JIT image and unload it.  Raises KernelUnavailable without bpf()."""
    from emulator.kernel import KernelProgram, KernelUnavailable, kernel_unavailable_reason
    with open(prog_path, "rb") as f:
        is_elf = f.read(4) == b"\x7fELF"
    if is_elf:
        with KernelProgram(prog_path, section) as k:
            return prog_jit(k.prog_fd, prog_path)
    reason = kernel_unavailable_reason()
    if reason:
        raise KernelUnavailable(reason)
    from emulator.kernel.raw import load_raw
    from isa.loader import open_input
    loaded = open_input(prog_path)
    chosen = loaded.program(section)
    raw = load_raw(prog_path, [chosen], {})
    try:
        if chosen.name in raw.refused:
            raise InputError(prog_path, f"the kernel refused to load {chosen.name} ({raw.refused[chosen.name]})")
        return prog_jit(raw.prog_fds[chosen.name], prog_path)
    finally:
        raw.close()
