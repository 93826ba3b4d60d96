"""The program loader against libbpf: every program of xdp-tools' objects and of objects
compiled here, map definitions equal to libbpf's, linked code equal to libbpf's after
relocation, objdump text equal to the ELF, and clear errors for broken inputs."""
from __future__ import annotations

import ctypes
import glob
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import ARTIFACTS, SAMPLES, needs_kernel, needs_shared
from isa.errors import InputError
from isa.loader import code_sections, kind_of, load, load_all
from isa.loader.elf import ElfObject
from isa.loader.maps import libbpf_internal_name
from isa.loader.objdump import parse_objdump, parse_objdump_text
from isa.insn import decode, encode
from isa.opcodes import LDDW_FUNC, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE

DATA = Path(__file__).parent / "data" / "loader"
XDP_TOOLS = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/bpf/*.o"))
LIBBPF = "/usr/lib/x86_64-linux-gnu/libbpf.so.1"


# ---------------------------------------------------------------- libbpf's view (ctypes)
class Libbpf:
    """Just the open-only part of libbpf 1.1 (plus load, for the relocated instructions)."""

    def __init__(self):
        lib = ctypes.CDLL(LIBBPF if Path(LIBBPF).exists() else "libbpf.so.1")
        V, S = ctypes.c_void_p, ctypes.c_char_p
        sig = {"bpf_object__open_file": (V, [S, V]), "bpf_object__load": (ctypes.c_int, [V]),
               "bpf_object__close": (None, [V]), "bpf_object__next_map": (V, [V, V]),
               "bpf_object__next_program": (V, [V, V]), "libbpf_get_error": (ctypes.c_long, [V]),
               "bpf_map__name": (S, [V]), "bpf_map__type": (ctypes.c_int, [V]),
               "bpf_map__key_size": (ctypes.c_uint32, [V]), "bpf_map__value_size": (ctypes.c_uint32, [V]),
               "bpf_map__max_entries": (ctypes.c_uint32, [V]), "bpf_map__map_flags": (ctypes.c_uint32, [V]),
               "bpf_map__fd": (ctypes.c_int, [V]), "bpf_program__name": (S, [V]),
               "bpf_program__section_name": (S, [V]), "bpf_program__insn_cnt": (ctypes.c_size_t, [V]),
               "bpf_program__insns": (V, [V]), "libbpf_set_print": (V, [V]),
               "bpf_map__set_pin_path": (ctypes.c_int, [V, S])}
        for name, (res, args) in sig.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        lib.libbpf_set_print(None)
        self.lib = lib

    def open(self, path):
        o = self.lib.bpf_object__open_file(str(path).encode(), None)
        if not o or self.lib.libbpf_get_error(o):
            raise OSError(f"libbpf cannot open {path}")
        return o

    def _iter(self, fn, o):
        it = None
        while True:
            it = fn(o, it)
            if not it:
                return
            yield it

    def maps(self, o):
        L = self.lib
        return [(L.bpf_map__name(m).decode(), L.bpf_map__type(m), L.bpf_map__key_size(m),
                 L.bpf_map__value_size(m), L.bpf_map__max_entries(m), L.bpf_map__map_flags(m))
                for m in self._iter(L.bpf_object__next_map, o)]

    def programs(self, o):
        L = self.lib
        out = []
        for p in self._iter(L.bpf_object__next_program, o):
            n = L.bpf_program__insn_cnt(p)
            ptr = L.bpf_program__insns(p)
            out.append((L.bpf_program__name(p).decode(), L.bpf_program__section_name(p).decode(), n,
                        ctypes.string_at(ptr, n * 8) if ptr else b""))
        return out

    def map_fds(self, o):
        return [self.lib.bpf_map__fd(m) for m in self._iter(self.lib.bpf_object__next_map, o)]


@pytest.fixture(scope="module")
def libbpf():
    try:
        return Libbpf()
    except OSError as e:
        pytest.skip(f"libbpf.so.1 not available: {e}")


# ---------------------------------------------------------------- objects compiled here
@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    out = tmp_path_factory.mktemp("loader")
    built = {}
    for src, flags in (("multi.c", ["-g"]), ("legacy.c", []), ("badmap.c", ["-g"]), ("nobtf.c", []),
                       ("custom_sections.c", ["-g"])):
        stem = Path(src).stem
        dst = out / f"{stem}.o"
        subprocess.run([clang, "-O2", *flags, "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                        "-c", str(DATA / src), "-o", str(dst)], check=True, capture_output=True)
        built[stem] = dst
    return built


def _ours(prog):
    return [(m.libbpf_name, m.type, m.key_size, m.value_size, m.max_entries, m.flags) for m in prog.maps]


def _check_against_libbpf(path, libbpf):
    progs = load_all(path)
    o = libbpf.open(path)
    try:
        theirs_maps = libbpf.maps(o)
        theirs_progs = libbpf.programs(o)
    finally:
        libbpf.lib.bpf_object__close(o)
    assert progs, path
    for p in progs:
        assert _ours(p) == theirs_maps, (path, p.name)
        assert p.maps is progs[0].maps or [m.name for m in p.maps] == [m.name for m in progs[0].maps]
    assert [(p.name, p.section) for p in progs] == [(n, s) for n, s, _, _ in theirs_progs]
    # before loading, libbpf holds each entry function alone: the same slots as ours
    for p, (_, _, cnt, raw) in zip(progs, theirs_progs):
        entry_end = p.functions[1].start if len(p.functions) > 1 else len(p.insns)
        assert sum(i.slots for i in p.insns[:entry_end]) == cnt
        assert decode(encode(p.insns)) == p.insns
    return progs


@pytest.mark.parametrize("path", XDP_TOOLS, ids=lambda p: Path(p).name)
def test_xdp_tools_objects_match_libbpf(path, libbpf):
    progs = _check_against_libbpf(path, libbpf)
    if Path(path).name == "xdpdump_bpf.o":
        assert {p.section for p in progs} == {"fentry/func", "fexit/func"}
        with pytest.raises(InputError, match="no program in a section named xdp"):
            load(path)
        assert load(path, "fexit/func").name == "trace_on_exit"
    else:
        assert load(path).section == "xdp"


@pytest.mark.parametrize("path", sorted(glob.glob(str(SAMPLES / "*.o"))), ids=lambda p: Path(p).name)
def test_sample_programs_match_libbpf(path, libbpf):
    progs = _check_against_libbpf(path, libbpf)
    assert load(path).section.startswith("xdp")
    assert all(p.license for p in progs)


def test_bad_btf(objs, tmp_path):
    obj = ElfObject.open(objs["multi"])
    sh = obj.section_header(obj.section_index(".BTF"))
    with pytest.raises(InputError, match=r"section .BTF.*bad magic 0x1234"):
        load(_patched(objs["multi"], tmp_path / "b.o", sh["sh_offset"], struct.pack("<H", 0x1234)))
    with pytest.raises(InputError, match=r"section .BTF.*truncated"):   # type section length
        load(_patched(objs["multi"], tmp_path / "t.o", sh["sh_offset"] + 12, struct.pack("<I", 1 << 30)))


def test_xdp_tools_list_is_complete():
    if not shutil.which("dpkg"):
        pytest.skip("no dpkg")
    r = subprocess.run(["dpkg", "-L", "libxdp1"], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("libxdp1 is not installed")
    listed = sorted(line for line in r.stdout.splitlines() if line.endswith(".o"))
    assert listed == XDP_TOOLS and len(listed) >= 10


def test_dispatcher_subprograms():
    p = load("/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o")
    assert p.name == "xdp_dispatcher"
    names = [f.name for f in p.functions]
    assert names == ["xdp_dispatcher"] + [f"prog{i}" for i in range(10)] + ["compat_test"]
    assert all(f.section == ".text" for f in p.functions[1:])
    slots = p.slots()
    starts = {slots[f.start] for f in p.functions}
    calls = [(k, i) for k, i in enumerate(p.insns) if i.opcode == 0x85 and i.src == 1]
    assert len(calls) == 11
    for k, i in calls:   # every call lands on a function start
        assert slots[k] + 1 + i.imm in starts
    rodata = [i for i in p.insns if i.opcode == 0x18]
    assert rodata and all(i.src == LDDW_MAP_IDX_VALUE and i.imm & 0xFFFFFFFF == 0 for i in rodata)
    assert p.license == "GPL"
    assert load("/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o", "xdp_pass").slot_count == 2


def test_compiled_objects_match_libbpf(objs, libbpf):
    _check_against_libbpf(objs["multi"], libbpf)
    progs = _check_against_libbpf(objs["nobtf"], libbpf)
    assert [m.flags for m in progs[0].maps] == [0, 0x80, 0]   # no BTF: nothing is mmapable
    assert [f.name for f in progs[1].functions] == ["second", "bump"]
    progs = _check_against_libbpf(objs["custom_sections"], libbpf)
    assert [m.name for m in progs[0].maps] == [".data.custom", ".rodata.custom", ".bss.custom", ".data.empty"]


def test_multi_maps_and_selection(objs):
    path = objs["multi"]
    progs = load_all(path)
    assert [(p.section, p.name) for p in progs] == [("xdp", "prog_a"), ("xdp", "prog_b"), ("xdp", "tail_target"),
                                                    ("xdp.frags", "prog_c"), ("tc", "not_xdp")]
    assert load(path).name == "prog_a"
    assert load(path, "prog_b").name == "prog_b"
    assert load(path, "xdp").name == "prog_a"
    assert load(path, "xdp.frags").name == "prog_c"
    assert load(path, "not_xdp").section == "tc"
    with pytest.raises(InputError, match="no section or function 'leaf'"):
        load(path, "leaf")        # a subprogram is not a program
    p = progs[0]
    by = {m.name: m for m in p.maps}
    assert [m.name for m in p.maps][-4:] == [".data", ".rodata", ".bss", ".rodata.str1.1"]
    assert by[".data"].initial == struct.pack("<Q", 7)
    assert by[".rodata"].initial[:12] == struct.pack("<3I", 1, 2, 3)
    assert by[".bss"].initial == bytes(28) and by[".bss"].value_size == 28
    assert by[".data"].libbpf_name == "multi.data"
    outer = by["outer"]
    assert outer.inner is not None and (outer.inner.type, outer.inner.key_size, outer.inner.value_size,
                                        outer.inner.max_entries) == (2, 4, 2, 2)
    assert by["lpm"].key_size == 8 and by["lpm"].flags == 1
    assert by["devs_hash"].value_size == 8      # struct bpf_devmap_val
    # static initialisers (.rel.maps), as libbpf records them in init_slots
    assert by["jump_init"].init_slots == {2: "tail_target"}
    assert by["outer_init"].init_slots == {0: "inner1", 3: "inner2"}
    assert all(not m.init_slots for m in p.maps if m.name not in ("jump_init", "outer_init"))


def test_multi_linking(objs):
    path = objs["multi"]
    a, b, _, c, tc = load_all(path)
    assert [f.name for f in a.functions] == ["prog_a", "middle", "leaf", "global_helper"]
    assert [f.name for f in b.functions] == ["prog_b", "loop_cb", "leaf"]
    for p in (a, b, c, tc):
        slots = p.slots()
        starts = {slots[f.start]: f.name for f in p.functions}
        for k, i in enumerate(p.insns):
            if i.opcode == 0x85 and i.src == 1:
                assert slots[k] + 1 + i.imm in starts, (p.name, k)
            if i.opcode == 0x18:
                assert i.src in (0, LDDW_FUNC, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE), (p.name, k, i)
                if i.src == LDDW_MAP_IDX:
                    assert i.imm < len(p.maps)
                if i.src == LDDW_MAP_IDX_VALUE:
                    m = p.maps[i.imm & 0xFFFFFFFF]
                    assert m.initial is not None and (i.imm >> 32) < m.value_size
                if i.src == LDDW_FUNC:
                    assert starts[slots[k] + 1 + (i.imm & 0xFFFFFFFF)] == "loop_cb"
    # the static variable 'hidden' is addressed through the .bss section symbol + its offset
    bss = a.map_index(".bss")
    offsets = sorted({i.imm >> 32 for i in a.insns if i.opcode == 0x18 and i.src == LDDW_MAP_IDX_VALUE
                      and i.imm & 0xFFFFFFFF == bss})
    assert len(offsets) == 2 and 8 in offsets   # scratch[2] at 8, hidden after scratch (20 -> 24)


def test_untyped_symbols(tmp_path):
    """Objects from an assembler: programs named by global NOTYPE symbols, subprograms by labels."""
    mc = shutil.which("llvm-mc") or shutil.which("llvm-mc-14")
    if mc is None:
        pytest.skip("llvm-mc is not installed")
    obj = tmp_path / "notype.o"
    subprocess.run([mc, "-triple", "bpfel", "-filetype=obj", str(DATA / "notype.s"), "-o", str(obj)],
                   check=True, capture_output=True)
    (p,) = load_all(obj)
    assert (p.name, p.section) == ("entry_h", "xdp_h")
    assert [(f.name, f.start, f.section) for f in p.functions] == [("entry_h", 0, "xdp_h"), ("sub1", 3, ".text")]
    assert p.insns[1].opcode == 0x85 and p.insns[1].src == 1 and p.insns[1].imm == 1
    assert [i.imm for i in p.insns[3:]] == [1, 0]


def test_legacy_maps(objs):
    p = load(objs["legacy"])
    assert p.name == "xdp_prog1" and p.section == "xdp1" and p.license == "GPL"
    assert [(m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags, m.section) for m in p.maps] == [
        ("rxcnt", 6, 4, 8, 256, 0, "maps"), ("tx_port", 14, 4, 4, 100, 0, "maps"),
        ("flows", 1, 16, 24, 1024, 1, "maps")]
    refs = [i.imm for i in p.insns if i.opcode == 0x18]
    assert all(i.src == LDDW_MAP_IDX for i in p.insns if i.opcode == 0x18)
    assert sorted(set(refs)) == [0, 1, 2]


def _libbpf_insns_normalised(raw: bytes, fds: list[int]):
    """libbpf's relocated instructions in our convention (map fd -> index)."""
    out = []
    for i in decode(raw, strict=False):
        if i.opcode == 0x18 and i.src in (1, 2):
            idx = fds.index(i.imm & 0xFFFFFFFF)
            i = i.with_(src=LDDW_MAP_IDX if i.src == 1 else LDDW_MAP_IDX_VALUE,
                        imm=idx | ((i.imm >> 32) << 32 if i.src == 2 else 0))
        out.append(i)
    return out


@needs_kernel
@pytest.mark.parametrize("which", ["dispatcher", "multi", "legacy_free"])
def test_linked_code_equals_libbpf(which, objs, libbpf):
    """After bpf_object__load, libbpf holds each program with its subprograms appended and
    map references replaced by fds: our linked stream must be the same instruction by
    instruction."""
    path = {"dispatcher": "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o", "multi": objs["multi"],
            "legacy_free": "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_all.o"}[which]
    o = libbpf.open(path)
    try:
        for m in libbpf._iter(libbpf.lib.bpf_object__next_map, o):   # leave nothing in /sys/fs/bpf
            libbpf.lib.bpf_map__set_pin_path(m, None)
        rc = libbpf.lib.bpf_object__load(o)
        assert rc == 0, f"libbpf could not load {path}: {rc}"
        fds = libbpf.map_fds(o)
        theirs = {n: raw for n, _, _, raw in libbpf.programs(o)}
    finally:
        libbpf.lib.bpf_object__close(o)
    for p in load_all(path):
        assert p.insns == _libbpf_insns_normalised(theirs[p.name], fds), p.name


# ---------------------------------------------------------------- objdump text
@needs_shared
@pytest.mark.parametrize("path", sorted(glob.glob(str(ARTIFACTS / "bytecode" / "*.objdump"))),
                         ids=lambda p: Path(p).name)
def test_artifact_objdump(path):
    assert kind_of(Path(path).read_bytes()) == "objdump"
    p = load(path)
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()[:1].isdigit() and ":" in ln]
    assert p.slot_count == int(lines[-1].split(":")[0]) + p.insns[-1].slots
    assert p.maps == [] and p.insns[-1].opcode == 0x95
    assert p.functions[0].name == p.name and p.name


def test_artifact_objdump_bytes():
    """The raw bytes of the artifact's files decode to exactly the program loaded."""
    f = ARTIFACTS / "bytecode" / "xdp1.objdump"
    if not f.exists():
        pytest.skip("shared artifacts not present")
    raw = bytearray()
    for line in f.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().rstrip(":").isdigit():
            raw += bytes.fromhex(parts[1].replace(" ", ""))
    p = load(f)
    assert encode(p.insns) == bytes(raw) and len(raw) == 61 * 8
    assert p.section == "xdp1" and p.name == "xdp_prog1"


def _objdump(path, *flags):
    exe = shutil.which("llvm-objdump") or shutil.which("llvm-objdump-14")
    if exe is None:
        pytest.skip("llvm-objdump is not installed")
    return subprocess.run([exe, "-d", *flags, str(path)], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("flags", [(), ("-r",), ("-r", "--no-show-raw-insn")], ids=["raw", "reloc", "noraw"])
def test_objdump_matches_elf(objs, flags):
    path = objs["multi"]
    text = _objdump(path, *flags)
    if "--no-show-raw-insn" in flags:
        pytest.importorskip("isa.asm")
    secs = parse_objdump_text(text, "multi.objdump")
    elf = ElfObject.open(path).code_sections()
    assert [(s.name, s.symbols, len(s.insns)) for s in secs] == [(s.name, s.symbols, len(s.insns)) for s in elf]
    for ours, ref in zip(secs, elf):
        for k, (a, b) in enumerate(zip(ours.insns, ref.insns)):
            if a != b:
                # only text can lose this: a call inside one section (no relocation line) reads
                # as a helper call, since llvm-objdump prints both as `call N`
                assert "--no-show-raw-insn" in flags and a == b.with_(src=0) and b.opcode == 0x85
                assert ref.relocation_at(k) is None
    if flags == ("-r",):
        # relocation lines naming functions are kept: calls link exactly as from the ELF
        tmp = Path(path).with_suffix(".objdump")
        tmp.write_text(text)
        for ours, ref in zip(load_all(tmp), load_all(path)):
            assert [f.name for f in ours.functions] == [f.name for f in ref.functions]
            assert [i for i in ours.insns if i.opcode == 0x85] == [i for i in ref.insns if i.opcode == 0x85]


def test_code_sections_api(objs):
    secs = code_sections(objs["multi"])
    assert [s.name for s in secs] == [".text", "xdp", "xdp.frags", "tc"]
    text = secs[0]
    assert sorted(n for n, _ in text.symbols) == ["global_helper", "leaf", "loop_cb", "middle"]
    assert [k for _, k in text.symbols] == sorted(k for _, k in text.symbols) and text.symbols[0][1] == 0
    xdp = secs[1]
    assert [n for n, _ in xdp.symbols] == ["prog_a", "prog_b", "tail_target"]
    assert any(n.startswith("LBB") for n, _ in xdp.labels)      # local labels, for disasm
    assert set(xdp.symbols) <= set(xdp.labels)
    assert any(r.type_name == "R_BPF_64_32" for r in xdp.relocations)
    assert any(r.type_name == "R_BPF_64_64" and r.symbol.name == "pc_hash" for r in xdp.relocations)
    assert all(xdp.insns[r.index].opcode in (0x18, 0x85) for r in xdp.relocations)


def test_assembly_input(tmp_path):
    pytest.importorskip("isa.asm")
    s = tmp_path / "t.s"
    s.write_text("r0 = 2\nexit\n")
    assert kind_of(s.read_bytes()) == "asm"
    p = load(s)
    assert [i.opcode for i in p.insns] == [0xB7, 0x95] and p.insns[0].imm == 2
    bad = tmp_path / "bad.s"
    bad.write_text("this is not assembly\n")
    with pytest.raises(InputError):
        load(bad)


# ---------------------------------------------------------------- errors
def _patched(src: Path, dst: Path, offset: int, data: bytes) -> Path:
    b = bytearray(src.read_bytes())
    b[offset:offset + len(data)] = data
    dst.write_bytes(bytes(b))
    return dst


def test_error_not_elf(tmp_path):
    f = tmp_path / "x.o"
    f.write_bytes(b"\x7fELF" + bytes(3))
    with pytest.raises(InputError, match="truncated ELF header"):
        load(f)
    with pytest.raises(InputError, match="not an ELF"):
        ElfObject.open(_write(tmp_path / "y.o", b"MZ\x90\x00" * 20))
    with pytest.raises(InputError, match="cannot read"):
        load(tmp_path / "missing.o")


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_error_wrong_machine_class_endianness(objs, tmp_path):
    src = objs["multi"]
    with pytest.raises(InputError, match="e_machine is 62"):
        load(_patched(src, tmp_path / "m.o", 18, struct.pack("<H", 62)))
    with pytest.raises(InputError, match="not a 64-bit ELF"):
        load(_patched(src, tmp_path / "c.o", 4, b"\x01"))
    with pytest.raises(InputError, match="not a little-endian"):
        load(_patched(src, tmp_path / "e.o", 5, b"\x02"))


def test_error_truncated(objs, tmp_path):
    data = objs["multi"].read_bytes()
    for n in (100, len(data) // 2, len(data) - 1):
        f = _write(tmp_path / f"t{n}.o", data[:n])
        with pytest.raises(InputError, match="truncated"):
            load(f)
    # a section whose extent passes the end of the file, named
    obj = ElfObject.open(objs["multi"])
    i = obj.section_index("xdp")
    shoff = obj.elf.header["e_shoff"]
    f = _patched(objs["multi"], tmp_path / "big.o", shoff + i * 64 + 32, struct.pack("<Q", 1 << 20))
    with pytest.raises(InputError, match=r"section xdp.*truncated"):
        load(f)


def test_error_missing_section(objs):
    with pytest.raises(InputError, match="no section or function 'nosuch'"):
        load(objs["multi"], "nosuch")
    with pytest.raises(InputError, match="no code section"):
        ElfObject.open(objs["multi"]).code_section("nosuch")


def test_error_unknown_relocation(objs, tmp_path):
    obj = ElfObject.open(objs["multi"])
    i = obj.section_index(".relxdp")
    sh = obj.section_header(i)
    # r_info of the first relocation: low 32 bits are the type
    f = _patched(objs["multi"], tmp_path / "r.o", sh["sh_offset"] + 8, struct.pack("<I", 7))
    with pytest.raises(InputError, match=r"section xdp, insn \d+.*unsupported relocation type 7"):
        load(f, "prog_a")


def test_error_unsupported_map_type(objs):
    with pytest.raises(InputError, match="map 'cg_store': unsupported map type 19 \\(cgroup_storage\\)"):
        load(objs["badmap"])


def test_error_bad_instruction(objs, tmp_path):
    obj = ElfObject.open(objs["multi"])
    sh = obj.section_header(obj.section_index("tc"))
    f = _patched(objs["multi"], tmp_path / "op.o", sh["sh_offset"], b"\xff")
    with pytest.raises(InputError, match=r"section tc.*unknown opcode 0xff"):
        load(f, "not_xdp")


def test_error_objdump_gap(tmp_path):
    text = ("Disassembly of section xdp:\n\n0000000000000000 <p>:\n"
            "       0:\tb7 00 00 00 02 00 00 00\tr0 = 2\n"
            "       2:\t95 00 00 00 00 00 00 00\texit\n")
    with pytest.raises(InputError, match="line 5: instruction number 2, expected 1"):
        parse_objdump_text(text, "gap.objdump")
    f = _write(tmp_path / "ok.objdump", text.replace("       2:", "       1:").encode())
    assert [i.opcode for i in parse_objdump(f)[0].insns] == [0xB7, 0x95]


def test_libbpf_internal_names():
    assert libbpf_internal_name("xdp-dispatcher", ".rodata") == "xdp_disp.rodata"
    assert libbpf_internal_name("xdp_prog", ".bss") == "xdp_prog.bss"
    assert libbpf_internal_name("a", ".rodata.str1.1") == ".rodata.str1.1"
    assert libbpf_internal_name("averyveryverylongname", ".data") == "averyver.data"
