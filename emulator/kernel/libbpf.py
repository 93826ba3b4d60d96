"""ctypes bindings for the part of libbpf 1.1 that the kernel executor uses.

Only declarations live here (argument and return types, the structs the calls take), so
emulator/kernel/__init__.py reads as the procedure: open, choose, preload, load, test-run, dump.
libbpf 1.x reports failures as NULL or a negative return value with errno set; every
function is loaded with use_errno so ``ctypes.get_errno()`` reads it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from ctypes import (POINTER, Structure, c_bool, c_char_p, c_int, c_int32, c_size_t, c_uint32,
                    c_uint64, c_void_p)

LIBBPF_PATHS = ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "libbpf.so.1")

BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37                      # enum bpf_attach_type
BPF_F_XDP_HAS_FRAGS = 1 << 5
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2


class XdpMd(Structure):
    """struct xdp_md as BPF_PROG_TEST_RUN takes it in ctx_in / gives it back in ctx_out."""
    _fields_ = [("data", c_uint32), ("data_end", c_uint32), ("data_meta", c_uint32),
                ("ingress_ifindex", c_uint32), ("rx_queue_index", c_uint32),
                ("egress_ifindex", c_uint32)]


class TestRunOpts(Structure):
    """struct bpf_test_run_opts (libbpf 1.1, bpf.h); `sz` must be set to its size."""
    _fields_ = [("sz", c_size_t), ("data_in", c_void_p), ("data_out", c_void_p),
                ("data_size_in", c_uint32), ("data_size_out", c_uint32),
                ("ctx_in", c_void_p), ("ctx_out", c_void_p),
                ("ctx_size_in", c_uint32), ("ctx_size_out", c_uint32),
                ("retval", c_uint32), ("repeat", c_int), ("duration", c_uint32),
                ("flags", c_uint32), ("cpu", c_uint32), ("batch_size", c_uint32)]


class MapCreateOpts(Structure):
    """struct bpf_map_create_opts (libbpf 1.1)."""
    _fields_ = [("sz", c_size_t), ("btf_fd", c_uint32), ("btf_key_type_id", c_uint32),
                ("btf_value_type_id", c_uint32), ("btf_vmlinux_value_type_id", c_uint32),
                ("inner_map_fd", c_uint32), ("map_flags", c_uint32), ("map_extra", c_uint64),
                ("numa_node", c_uint32), ("map_ifindex", c_uint32)]


class ProgLoadOpts(Structure):
    """struct bpf_prog_load_opts (libbpf 1.1)."""
    _fields_ = [("sz", c_size_t), ("attempts", c_int), ("expected_attach_type", c_int),
                ("prog_btf_fd", c_uint32), ("prog_flags", c_uint32), ("prog_ifindex", c_uint32),
                ("kern_version", c_uint32), ("attach_btf_id", c_uint32),
                ("attach_prog_fd", c_uint32), ("attach_btf_obj_fd", c_uint32),
                ("fd_array", c_void_p), ("func_info", c_void_p), ("func_info_cnt", c_uint32),
                ("func_info_rec_size", c_uint32), ("line_info", c_void_p),
                ("line_info_cnt", c_uint32), ("line_info_rec_size", c_uint32),
                ("log_level", c_uint32), ("log_size", c_uint32), ("log_buf", c_void_p)]


# libbpf_print_fn_t: int (*)(enum libbpf_print_level, const char *fmt, va_list ap)
PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)

_SIGNATURES = {
    "bpf_object__open_file": (c_void_p, [c_char_p, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__name": (c_char_p, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__section_name": (c_char_p, [c_void_p]),
    "bpf_program__type": (c_int, [c_void_p]),
    "bpf_program__set_type": (c_int, [c_void_p, c_int]),
    "bpf_program__set_expected_attach_type": (c_int, [c_void_p, c_int]),
    "bpf_program__set_autoload": (c_int, [c_void_p, c_bool]),
    "bpf_program__flags": (c_uint32, [c_void_p]),
    "bpf_program__set_flags": (c_int, [c_void_p, c_uint32]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__type": (c_int, [c_void_p]),
    "bpf_map__key_size": (c_uint32, [c_void_p]),
    "bpf_map__value_size": (c_uint32, [c_void_p]),
    "bpf_map__max_entries": (c_uint32, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_pin_path": (c_int, [c_void_p, c_char_p]),
    "bpf_map__set_initial_value": (c_int, [c_void_p, c_void_p, c_size_t]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    "bpf_map_create": (c_int, [c_int, c_char_p, c_uint32, c_uint32, c_uint32, POINTER(MapCreateOpts)]),
    "bpf_map_freeze": (c_int, [c_int]),
    "bpf_prog_load": (c_int, [c_int, c_char_p, c_char_p, c_char_p, c_size_t, POINTER(ProgLoadOpts)]),
    "bpf_prog_test_run_opts": (c_int, [c_int, POINTER(TestRunOpts)]),
    "libbpf_num_possible_cpus": (c_int, []),
    "libbpf_set_print": (c_void_p, [PRINT_FN]),
}

_lib = None


def lib() -> ctypes.CDLL:
    """The loaded libbpf with signatures declared (OSError when it is not installed)."""
    global _lib
    if _lib is None:
        last: Exception = OSError("libbpf.so.1 not found")
        for path in LIBBPF_PATHS:
            try:
                handle = ctypes.CDLL(path, use_errno=True)
                break
            except OSError as e:
                last = e
        else:
            raise last
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = handle
    return _lib


_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
_libc.vsnprintf.restype = c_int32


class LogCapture:
    """Collects libbpf's messages (the verifier log among them) instead of printing them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cb = PRINT_FN(self._print)

    def _print(self, level: int, fmt: bytes, ap: int) -> int:
        # On x86-64 a va_list argument is passed as a pointer, which vsnprintf accepts as is.
        buf = ctypes.create_string_buffer(4096)
        n = _libc.vsnprintf(buf, len(buf), fmt, ap)
        if level <= LIBBPF_INFO:
            self.lines.extend(buf.value.decode(errors="replace").splitlines())
        return max(n, 0)

    def install(self) -> None:
        lib().libbpf_set_print(self._cb)

    def clear(self) -> None:
        self.lines.clear()

    def tail(self, n: int = 12) -> str:
        useful = [l.strip() for l in self.lines if l.strip()]
        return " | ".join(useful[-n:])


_capture: "LogCapture | None" = None


def log_capture() -> LogCapture:
    """The one process-wide capture: libbpf keeps the callback pointer, so it must never be freed."""
    global _capture
    if _capture is None:
        _capture = LogCapture()
        _capture.install()
    return _capture
