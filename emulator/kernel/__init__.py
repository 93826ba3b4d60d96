"""The Linux kernel as the reference executor: libbpf (ctypes) + BPF_PROG_TEST_RUN.

``KernelProgram(path, section, maps)`` opens an ELF object with libbpf, picks the program
the contract's way (section or function name; default the first program in a section
starting with ``xdp``), preloads the contract's MAPS.json (global data before load, because
``.rodata`` is frozen by the load; everything else after it, by fd), loads it, and runs
packets one at a time with ``bpf_prog_test_run_opts``.  The calling thread is pinned to one
CPU (CPU 0 when allowed) for the object's lifetime, because XDP's test-run refuses
BPF_F_TEST_RUN_ON_CPU and runs on whatever CPU the caller is on; per-CPU maps are dumped
from that CPU.  Facts about what the test-run does are in docs/verify.md.
"""
from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import struct
from dataclasses import dataclass
from typing import Iterable, Optional

from elftools.elf.elffile import ELFFile
from elftools.common.exceptions import ELFError

from emulator.kernel import libbpf as lb
from isa.helpers import TABLE as HELPER_TABLE, number as helper_number
from isa.errors import InputError
from isa.insn import DecodeError, Insn, decode, spec_or_none
from isa.opcodes import Kind
from emulator.runtime.maps import parse_hex, preset_entries
from isa.uapi import MAP_TYPE_IDS

_T = MAP_TYPE_IDS
HASH, ARRAY, PROG_ARRAY, PERCPU_HASH, PERCPU_ARRAY = _T["hash"], _T["array"], _T["prog_array"], \
    _T["percpu_hash"], _T["percpu_array"]
LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE = _T["lru_hash"], _T["lru_percpu_hash"], _T["lpm_trie"]
DEVMAP, CPUMAP, DEVMAP_HASH = _T["devmap"], _T["cpumap"], _T["devmap_hash"]
PERCPU_TYPES = {PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}
ARRAY_TYPES = {ARRAY, PERCPU_ARRAY, PROG_ARRAY, DEVMAP, CPUMAP}
LRU_TYPES = {LRU_HASH, LRU_PERCPU_HASH}
DEVMAP_TYPES = {DEVMAP, DEVMAP_HASH}
# maps whose contents userspace can read back and the contract's dump lists
DUMPABLE = {HASH, ARRAY, PROG_ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH,
            LPM_TRIE, DEVMAP, CPUMAP, DEVMAP_HASH}
GLOBAL_DATA_PREFIXES = (".data", ".rodata", ".bss")

# helpers whose results the kernel and an emulator cannot share
HELPER_NAMES = {h.num: h.full_name for h in HELPER_TABLE}
NONDETERMINISTIC_HELPERS = {h.num for h in HELPER_TABLE if h.nondeterministic}
FIB_LOOKUP = helper_number("fib_lookup")

ETH_HLEN = 14


def kernel_unavailable_reason() -> str:
    """Why the kernel cannot be the reference here ('' when it can)."""
    if os.geteuid() != 0:
        return "bpf() needs root (run verify as root or with CAP_BPF+CAP_NET_ADMIN)"
    try:
        lb.lib()
    except OSError as e:
        return f"libbpf 1.x is not installed ({e})"
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(128)
    # BPF_PROG_LOAD with an empty attr: EINVAL when bpf() works, ENOSYS/EPERM otherwise
    if libc.syscall(321, 5, attr, 128) < 0:
        err = ctypes.get_errno()
        if err in (errno_mod.ENOSYS, errno_mod.EPERM):
            return f"the bpf() system call is unavailable ({os.strerror(err)})"
    return ""


class KernelUnavailable(Exception):
    """The kernel cannot serve as reference executor (no privilege, no bpf(), no libbpf)."""


@dataclass(frozen=True)
class KernelResult:
    action: Optional[int]     # the program's return value; None when the test-run refused
    data: bytes               # data .. data_end after the run
    meta: bytes = b""         # data_meta .. data (bpf_xdp_adjust_meta)
    duration_ns: int = 0      # the kernel's own measurement (average over `repeat`)
    error: Optional[str] = None   # why BPF_PROG_TEST_RUN refused the packet (errno text)
    errno: int = 0

    @property
    def refused_for_context(self) -> bool:
        """Refused because of the ingress ifindex/queue, not because of the frame itself."""
        return self.errno == errno_mod.ENODEV or "rx queue" in (self.error or "")


@dataclass
class KernelMap:
    name: str                 # the contract's name (ELF symbol, or .data/.rodata/.bss...)
    libbpf_name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    handle: int               # struct bpf_map *
    fd: int = -1

    @property
    def is_global_data(self) -> bool:
        return self.name.startswith(GLOBAL_DATA_PREFIXES)


def contract_map_name(libbpf_name: str) -> str:
    """libbpf names global data `<obj prefix>.data`; the contract names it `.data`."""
    dot = libbpf_name.find(".")
    return libbpf_name[dot:] if dot > 0 else libbpf_name


def helpers_called(path: str) -> set[int]:
    """Helper ids called anywhere in the object's code sections (all programs, subprograms)."""
    out: set[int] = set()
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                if not sec["sh_flags"] & 0x4 or sec["sh_type"] != "SHT_PROGBITS":   # SHF_EXECINSTR
                    continue
                for ins in _code_insns(sec.data()):
                    spec = spec_or_none(ins)
                    if spec is not None and spec.kind == Kind.CALL:
                        out.add(ins.imm)
    except (OSError, ELFError) as e:
        raise InputError(path, f"cannot read the ELF object ({e})") from None
    return out


def _code_insns(code: bytes) -> list[Insn]:
    """The instructions of a code section, as far as whole ones go (a trailing partial word
    or an lddw missing its second slot is not an instruction)."""
    whole = code[:len(code) - len(code) % 8]
    try:
        return decode(whole, strict=False)
    except DecodeError as e:      # only a truncated lddw at the end
        return decode(whole[:e.slot * 8], strict=False)


def _has_legacy_maps(path) -> bool:
    """Whether the object defines maps in a legacy `maps` section (which libbpf 1.x refuses to
    open; such objects go to the kernel through our own loader, emulator.kernel.raw)."""
    from isa.loader.elf import ElfObject
    try:
        return "maps" in ElfObject.open(str(path)).section_names
    except InputError:
        return False


def object_map_types(path: str) -> dict[str, int]:
    """The object's maps (contract names -> map type) as libbpf sees them, without loading."""
    L = lb.lib()
    log = lb.log_capture()
    log.clear()
    obj = L.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        err = ctypes.get_errno()
        if _has_legacy_maps(path):
            from isa.loader import load_all
            return {d.name: d.type for d in load_all(str(path))[0].maps}
        raise InputError(str(path), f"libbpf cannot open it ({os.strerror(err)})")
    try:
        out, m = {}, None
        while True:
            m = L.bpf_object__next_map(obj, m)
            if not m:
                return out
            out[contract_map_name(L.bpf_map__name(m).decode())] = L.bpf_map__type(m)
    finally:
        L.bpf_object__close(obj)


def _refusal(err: int, n: int, ifindex: int, queue: int) -> str:
    text = f"{errno_mod.errorcode.get(err, err)}: {os.strerror(err)}"
    if err == errno_mod.EINVAL and n < ETH_HLEN:
        return f"{text} (the test-run needs at least {ETH_HLEN} bytes, got {n})"
    if err == errno_mod.ENODEV:
        return f"{text} (no device with ingress ifindex {ifindex})"
    if err == errno_mod.EINVAL and n >= ETH_HLEN and (queue or ifindex != 1):
        return f"{text} (ingress ifindex {ifindex} has no rx queue {queue}, or the frame is invalid)"
    return text


def test_run(prog_fd: int, data: bytes, ingress_ifindex: int = 1, rx_queue_index: int = 0,
             repeat: int = 1) -> KernelResult:
    """One BPF_PROG_TEST_RUN of an XDP program fd with this frame and packet context."""
    L = lb.lib()
    n = len(data)
    din = ctypes.create_string_buffer(bytes(data), max(n, 1))
    ctx_in = lb.XdpMd(0, n, 0, ingress_ifindex, rx_queue_index, 0)
    out_size = n + 4096 + 512
    for _ in range(2):
        dout = ctypes.create_string_buffer(out_size)
        ctx_out = lb.XdpMd()
        opts = lb.TestRunOpts(sz=ctypes.sizeof(lb.TestRunOpts),
                              data_in=ctypes.cast(din, ctypes.c_void_p).value,
                              data_out=ctypes.cast(dout, ctypes.c_void_p).value,
                              data_size_in=n, data_size_out=out_size,
                              ctx_in=ctypes.addressof(ctx_in), ctx_out=ctypes.addressof(ctx_out),
                              ctx_size_in=ctypes.sizeof(lb.XdpMd),
                              ctx_size_out=ctypes.sizeof(lb.XdpMd), repeat=repeat)
        rc = L.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
        err = ctypes.get_errno() if rc < 0 else 0
        if err == errno_mod.ENOSPC and opts.data_size_out > out_size:
            out_size = opts.data_size_out
            continue
        break
    if rc < 0:
        return KernelResult(None, b"", error=_refusal(err, n, ingress_ifindex, rx_queue_index), errno=err)
    total = opts.data_size_out
    meta_len = ctx_out.data
    raw = dout.raw[:total]
    return KernelResult(opts.retval, raw[meta_len:], raw[:meta_len], opts.duration)


class KernelProgram:
    """One ELF object loaded into the running kernel, its XDP program ready to test-run."""

    def __init__(self, path: str, section: Optional[str] = None, maps: Optional[dict] = None,
                 *, maps_source: str = "MAPS.json", frags: bool = False, cpu: int = 0):
        reason = kernel_unavailable_reason()
        if reason:
            raise KernelUnavailable(reason)
        self.path = str(path)
        self._lib = lb.lib()
        self._log = lb.log_capture()
        self._log.clear()
        self._obj = None
        self._old_affinity = None
        self.ncpus = self._lib.libbpf_num_possible_cpus()
        self.prog_fds: dict[str, int] = {}
        self.prog_ids: dict[int, str] = {}
        self.maps: dict[str, KernelMap] = {}
        self._raw = None
        self._probe = None
        obj = self._lib.bpf_object__open_file(self.path.encode(), None)
        try:
            if obj:
                self._obj = obj
                self._setup(section, maps or {}, maps_source, frags)
            elif _has_legacy_maps(self.path):
                self._setup_raw(section, maps or {}, maps_source)
            else:
                err = ctypes.get_errno()
                raise InputError(self.path, f"libbpf cannot open it ({os.strerror(err)}): {self._log.tail(4)}")
            self._pin(cpu)
        except BaseException:
            self.close()
            raise

    # -- loading -------------------------------------------------------------------------
    def _programs(self) -> list[int]:
        out, p = [], None
        while True:
            p = self._lib.bpf_object__next_program(self._obj, p)
            if not p:
                return out
            out.append(p)

    def _choose(self, progs: list[int], section: Optional[str]) -> int:
        names = [(self._lib.bpf_program__section_name(p).decode(),
                  self._lib.bpf_program__name(p).decode(), p) for p in progs]
        if section is None:
            for sec, _, p in names:
                if sec.startswith("xdp"):
                    return p
            raise InputError(self.path, "no program in a section whose name starts with 'xdp' (use -s)")
        in_section = [p for sec, _, p in names if sec == section]
        by_func = [p for _, fn, p in names if fn == section]
        if by_func:
            return by_func[0]
        if in_section:
            return in_section[0]
        avail = ", ".join(f"{fn} ({sec})" for sec, fn, _ in names)
        raise InputError(self.path, f"no program or section named {section!r}; it has: {avail}")

    def _setup(self, section, maps: dict, maps_source: str, frags: bool) -> None:
        L = self._lib
        progs = self._programs()
        if not progs:
            raise InputError(self.path, "the object holds no BPF program")
        chosen = self._choose(progs, section)
        for p in progs:
            sec = L.bpf_program__section_name(p).decode()
            ptype = L.bpf_program__type(p)
            is_xdp = p == chosen or sec.startswith("xdp") or ptype in (0, lb.BPF_PROG_TYPE_XDP)
            # a section libbpf does not know (e.g. "xdp_redirect_map") leaves the type unset:
            # the object is an XDP object, so every such program (tail-call targets) is XDP
            if is_xdp:
                L.bpf_program__set_type(p, lb.BPF_PROG_TYPE_XDP)
                L.bpf_program__set_expected_attach_type(p, lb.BPF_XDP)
                if frags:
                    L.bpf_program__set_flags(p, L.bpf_program__flags(p) | lb.BPF_F_XDP_HAS_FRAGS)
            L.bpf_program__set_autoload(p, is_xdp)
        self.program_name = L.bpf_program__name(chosen).decode()
        self.section = L.bpf_program__section_name(chosen).decode()
        self._collect_maps()
        self._check_names(maps, maps_source)
        for name, entries in maps.items():
            if self.maps[name].is_global_data:
                self._preload_global(self.maps[name], entries, f"{maps_source}: {name}")
        if L.bpf_object__load(self._obj) < 0:
            err = ctypes.get_errno()
            raise InputError(self.path, f"the kernel refused to load it ({os.strerror(err)}): {self._log.tail()}")
        for p in progs:
            fd = L.bpf_program__fd(p)
            if fd >= 0:
                name = L.bpf_program__name(p).decode()
                self.prog_fds[name] = fd
                self.prog_ids[self._prog_id(fd)] = name
        self.prog_fd = L.bpf_program__fd(chosen)
        for m in self.maps.values():
            m.fd = L.bpf_map__fd(m.handle)
        for name, entries in maps.items():
            if not self.maps[name].is_global_data:
                self._preload(self.maps[name], entries, f"{maps_source}: {name}")

    def _collect_maps(self) -> None:
        L, m = self._lib, None
        while True:
            m = L.bpf_object__next_map(self._obj, m)
            if not m:
                return
            lname = L.bpf_map__name(m).decode()
            # maps declared with LIBBPF_PIN_BY_NAME (xdp-tools' do) would be shared with any
            # map pinned under that name in /sys/fs/bpf, and left pinned: verify's maps are private
            L.bpf_map__set_pin_path(m, None)
            if lname.endswith(".kconfig"):
                continue
            km = KernelMap(contract_map_name(lname), lname, L.bpf_map__type(m),
                           L.bpf_map__key_size(m), L.bpf_map__value_size(m),
                           L.bpf_map__max_entries(m), m)
            self.maps[km.name] = km

    def _prog_id(self, fd: int) -> int:
        info = ctypes.create_string_buffer(8)      # struct bpf_prog_info: type, id
        n = ctypes.c_uint32(8)
        if self._lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(n)) < 0:
            return -1
        return struct.unpack_from("<I", info.raw, 4)[0]

    def _setup_raw(self, section, maps: dict, maps_source: str) -> None:
        """Legacy-maps objects: the project's loader links them, the kernel takes them as is."""
        from emulator.kernel.raw import load_raw
        from isa.loader import open_input
        loaded = open_input(self.path)
        chosen = loaded.program(section)
        programs = loaded.programs()
        for d in chosen.maps:
            self.maps[d.name] = KernelMap(d.name, d.name, d.type, d.key_size, d.value_size,
                                          d.max_entries, 0)
        self._check_names(maps, maps_source)
        initial = {name: self._global_value(self.maps[name], entries, f"{maps_source}: {name}")
                   for name, entries in maps.items() if self.maps[name].is_global_data}
        self._raw = load_raw(self.path, programs, {k: v for k, v in initial.items() if v is not None})
        if chosen.name in self._raw.refused:
            raise InputError(self.path, f"the kernel refused to load {chosen.name} "
                                        f"({self._raw.refused[chosen.name]})")
        self.program_name, self.section = chosen.name, chosen.section
        self.prog_fds = dict(self._raw.prog_fds)
        self.prog_ids = {self._prog_id(fd): n for n, fd in self.prog_fds.items()}
        self.prog_fd = self.prog_fds[chosen.name]
        for m, fd in zip(self.maps.values(), self._raw.map_fds):
            m.fd = fd
        for name, entries in maps.items():
            if not self.maps[name].is_global_data:
                self._preload(self.maps[name], entries, f"{maps_source}: {name}")

    def _check_names(self, maps: dict, maps_source: str) -> None:
        unknown = [n for n in maps if n not in self.maps]
        if unknown:
            raise InputError(maps_source, f"map {unknown[0]!r} is not in {self.path} "
                                          f"(it has: {', '.join(sorted(self.maps)) or 'no maps'})")

    @staticmethod
    def _global_value(m: KernelMap, entries, where: str) -> Optional[bytes]:
        if not isinstance(entries, list) or len(entries) > 1:
            raise InputError(where, "global data is one entry with key 00000000")
        for e in entries:
            key = parse_hex(f"{where}[0].key", e.get("key"), 4) if isinstance(e, dict) else None
            if key != b"\0\0\0\0":
                raise InputError(f"{where}[0]", "global data has only key 00000000")
            return parse_hex(f"{where}[0].value", e.get("value"), m.value_size)
        return None

    def _preload_global(self, m: KernelMap, entries, where: str) -> None:
        value = self._global_value(m, entries, where)
        if value is not None:
            buf = ctypes.create_string_buffer(value, len(value))
            if self._lib.bpf_map__set_initial_value(m.handle, buf, len(value)) < 0:
                raise InputError(where, f"libbpf refuses the initial value ({os.strerror(ctypes.get_errno())})")

    def _value_bytes(self, m: KernelMap, e: dict, where: str) -> bytes:
        if m.type == PROG_ARRAY:
            name = e.get("value")
            if name not in self.prog_fds:
                raise InputError(f"{where}.value", f"prog_array value must name a program of the "
                                 f"object ({', '.join(sorted(self.prog_fds))}), got {name!r}")
            return struct.pack("<i", self.prog_fds[name])
        if m.type not in PERCPU_TYPES:
            return parse_hex(f"{where}.value", e.get("value"), m.value_size)
        stride = (m.value_size + 7) // 8 * 8
        if "values" in e:
            vals = e["values"]
            if not isinstance(vals, list) or not vals:
                raise InputError(f"{where}.values", "expected a non-empty list of hex values")
            raws = [parse_hex(f"{where}.values[{i}]", v, m.value_size) for i, v in enumerate(vals)]
        else:
            raws = [parse_hex(f"{where}.value", e.get("value"), m.value_size)]
        # CPUs beyond the list get the shared "value" when there is one, else the last listed
        fill = parse_hex(f"{where}.value", e["value"], m.value_size) if "value" in e else raws[-1]
        raws = (raws + [fill] * self.ncpus)[:self.ncpus]
        return b"".join(r.ljust(stride, b"\0") for r in raws)

    def _preload(self, m: KernelMap, entries, where: str) -> None:
        for w, key, e in preset_entries(entries, where, m.key_size):
            value = self._value_bytes(m, e, w)
            kb = ctypes.create_string_buffer(key, max(len(key), 1))
            vb = ctypes.create_string_buffer(value, max(len(value), 1))
            if self._lib.bpf_map_update_elem(m.fd, kb, vb, 0) < 0:
                err = ctypes.get_errno()
                hint = " (a devmap entry needs that ifindex to exist)" if m.type in DEVMAP_TYPES else ""
                raise InputError(w, f"the kernel refuses the entry: {os.strerror(err)}{hint}")

    def _pin(self, cpu: int) -> None:
        allowed = os.sched_getaffinity(0)
        self.cpu = cpu if cpu in allowed else min(allowed)
        self._old_affinity = allowed
        os.sched_setaffinity(0, {self.cpu})

    # -- running -------------------------------------------------------------------------
    def run(self, data: bytes, ingress_ifindex: int = 1, rx_queue_index: int = 0,
            repeat: int = 1) -> KernelResult:
        """One BPF_PROG_TEST_RUN of the packet; maps keep what the program did to them."""
        return test_run(self.prog_fd, data, ingress_ifindex, rx_queue_index, repeat)

    def context_refusal(self, ingress_ifindex: int, rx_queue_index: int) -> str:
        """Why the test-run cannot give a packet this context here ('' when it can): asked
        of the kernel itself with a program of its own, so that this object's maps see nothing."""
        if self._probe is None:
            from emulator.kernel.probe import ContextProbe
            self._probe = ContextProbe()
        return self._probe.refusal(ingress_ifindex, rx_queue_index)

    def run_many(self, packets: Iterable, repeat: int = 100) -> list[float]:
        """Per-packet kernel ns (the test-run's own average over `repeat` runs): benchmarks.

        `packets` holds bytes or (bytes, ifindex, queue).  Maps see `repeat` runs per packet.
        """
        out = []
        for p in packets:
            data, ifx, q = (p, 1, 0) if isinstance(p, (bytes, bytearray)) else p
            r = self.run(data, ifx, q, repeat=repeat)
            if r.error:
                raise InputError(f"packet of {len(data)} bytes", f"the kernel's test-run refuses it: {r.error}")
            out.append(float(r.duration_ns))
        return out

    # -- maps ----------------------------------------------------------------------------
    def _keys(self, m: KernelMap) -> list[bytes]:
        keys = []
        cur = None
        nxt = ctypes.create_string_buffer(max(m.key_size, 1))
        while True:
            rc = self._lib.bpf_map_get_next_key(m.fd, cur, nxt)
            if rc < 0:
                return keys
            k = nxt.raw[:m.key_size]
            keys.append(k)
            cur = ctypes.create_string_buffer(k, max(m.key_size, 1))
            if len(keys) > m.max_entries + 1:      # a concurrently changing map; never loop forever
                return keys

    def map_keys(self, name: str) -> set[bytes]:
        return set(self._keys(self.maps[name]))

    def lookup(self, name: str, key: bytes) -> Optional[bytes]:
        """Raw value (CPU `self.cpu`'s for per-CPU maps); None when absent."""
        m = self.maps[name]
        per_cpu = m.type in PERCPU_TYPES
        stride = (m.value_size + 7) // 8 * 8
        size = stride * self.ncpus if per_cpu else m.value_size
        vb = ctypes.create_string_buffer(max(size, 1))
        kb = ctypes.create_string_buffer(key, max(len(key), 1))
        if self._lib.bpf_map_lookup_elem(m.fd, kb, vb) < 0:
            return None
        if per_cpu:
            return vb.raw[self.cpu * stride:self.cpu * stride + m.value_size]
        return vb.raw[:4] if m.type == PROG_ARRAY else vb.raw[:m.value_size]

    def dump_map(self, name: str) -> list[dict]:
        m = self.maps[name]
        out = []
        for k in self._keys(m):
            v = self.lookup(name, k)
            if v is None:
                continue
            if m.type == PROG_ARRAY:
                pid = struct.unpack("<I", v)[0]
                out.append({"key": k.hex(), "value": self.prog_ids.get(pid, f"prog_id:{pid}")})
                continue
            if m.type in ARRAY_TYPES and not any(v):
                continue
            out.append({"key": k.hex(), "value": v.hex()})
        out.sort(key=lambda e: e["key"])
        return out

    def dump_maps(self) -> dict[str, list[dict]]:
        """Every readable map in the contract's MAPS.json form, names sorted."""
        return {name: self.dump_map(name) for name in sorted(self.maps)
                if self.maps[name].type in DUMPABLE}

    # -- cleanup -------------------------------------------------------------------------
    def close(self) -> None:
        if self._obj:
            self._lib.bpf_object__close(self._obj)     # closes program and map fds
            self._obj = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if getattr(self, "_probe", None) is not None:
            self._probe.close()
            self._probe = None
        if self._old_affinity is not None:
            os.sched_setaffinity(0, self._old_affinity)
            self._old_affinity = None

    def __enter__(self) -> "KernelProgram":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
