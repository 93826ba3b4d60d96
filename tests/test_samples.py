"""The sample programs: sources, committed objects, presets and pcaps stay in step, every
object passes the kernel's verifier, and the programs do what docs/samples.md says (checked
in the Linux kernel, the reference)."""
from __future__ import annotations

import collections
import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from conftest import SAMPLES, needs_kernel

NAMES = ["xdp1", "xdp2", "xdp_tailcall", "xdp_adjust_tail", "router_ipv4", "router_fib", "rxq_info",
         "tx_ip_tunnel", "redirect_map", "simple_firewall", "katran_lb",
         "ubench_drop", "ubench_tx", "ubench_redirect"]
PCAPS = SAMPLES / "pcaps"
XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 1, 2, 3, 4


def _module(name: str):
    """Import sample_programs/NAME.py without leaving __pycache__ in the tree."""
    sys.dont_write_bytecode, old = True, sys.dont_write_bytecode
    try:
        if str(SAMPLES) not in sys.path:
            sys.path.insert(0, str(SAMPLES))
        spec = importlib.util.spec_from_file_location(f"_samples_{name}", SAMPLES / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.dont_write_bytecode = old


def frames(path: Path) -> list[bytes]:
    reader = dpkt.pcapng.Reader if path.suffix == ".pcapng" else dpkt.pcap.Reader
    with open(path, "rb") as f:
        return [bytes(buf) for _, buf in reader(f)]


def preset(name: str) -> dict:
    p = SAMPLES / f"{name}.maps.json"
    return json.loads(p.read_text()) if p.exists() else {}


# ----------------------------------------------------------------------------- the tree


def test_generators_cover_every_sample():
    assert sorted(_module("gen_pcaps").PROGRAMS) == sorted(NAMES)
    assert set(_module("gen_maps").PRESETS) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_sample_files_present(name):
    assert (SAMPLES / f"{name}.c").is_file()
    assert (SAMPLES / f"{name}.o").is_file()
    for kind in ("normal", "flows", "hostile"):
        assert (PCAPS / f"{name}-{kind}.pcap").is_file(), kind
    if name in _module("gen_maps").PRESETS:
        assert (SAMPLES / f"{name}.maps.json").is_file()


def test_pcap_sizes_and_frame_lengths():
    total = 0
    for path in sorted(PCAPS.glob("*.pcap*")):
        total += path.stat().st_size
        lengths = [len(f) for f in frames(path)]
        assert lengths, path.name
        assert min(lengths) >= 14, path.name          # the test-run's minimum
        limit = 9000 if path.name.endswith("-jumbo.pcap") else 1514
        assert max(lengths) <= limit, path.name
    assert total < 3 * 1024 * 1024


def test_pcaps_regenerate_identically(tmp_path):
    gen = _module("gen_pcaps")
    gen.main([str(tmp_path)])
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in PCAPS.iterdir())
    for name in made:
        assert (tmp_path / name).read_bytes() == (PCAPS / name).read_bytes(), name


def test_presets_regenerate_identically(tmp_path):
    gen = _module("gen_maps")
    for path in gen.write_all(tmp_path):
        assert path.read_text() == (SAMPLES / path.name).read_text(), path.name


def test_presets_follow_the_contract():
    for path in sorted(SAMPLES.glob("*.maps.json")):
        for mapname, rows in json.loads(path.read_text()).items():
            keys = [r["key"] for r in rows]
            assert keys == sorted(keys), (path.name, mapname)
            for r in rows:
                assert set(r) == {"key", "value"}
                assert r["key"] == r["key"].lower() and bytes.fromhex(r["key"])
                if mapname == "jmp_table":                   # prog_array: program names
                    assert r["value"].startswith("xdp_")
                else:
                    assert r["value"] == r["value"].lower() and bytes.fromhex(r["value"])


def test_maglev_rings_are_balanced():
    gen = _module("gen_maps")
    addrs = _module("addrs")
    for _, _, _, _, reals in addrs.KATRAN_VIPS:
        ring = gen.maglev(reals)
        assert len(ring) == gen.KATRAN_RING_SIZE
        if not reals:
            assert set(ring) == {0}
            continue
        counts = collections.Counter(ring)
        assert set(counts) == set(reals)
        assert max(counts.values()) - min(counts.values()) <= 1


def test_multiqueue_pcapng_carries_interfaces_and_queues():
    raw = (PCAPS / "rxq_info-multiq.pcapng").read_bytes()
    pos, idbs, queues = 0, 0, set()
    while pos < len(raw):
        btype, blen = struct.unpack_from("<II", raw, pos)
        if btype == 1:
            idbs += 1
        elif btype == 6:
            caplen = struct.unpack_from("<I", raw, pos + 20)[0]
            opt = pos + 28 + caplen + (-caplen % 4)
            code, olen = struct.unpack_from("<HH", raw, opt)
            assert (code, olen) == (6, 4)               # epb_queue
            queues.add(struct.unpack_from("<I", raw, opt + 4)[0])
        pos += blen
    assert pos == len(raw)
    assert idbs == 3 and queues == {0, 1, 2, 3}


def test_hostile_pcaps_cut_every_header():
    """Truncations of a VLAN-tagged IPv4/UDP seed reach every boundary up to the ports."""
    lengths = {len(f) for f in frames(PCAPS / "xdp1-hostile.pcap")}
    for cut in (14, 15, 17, 18, 19, 21, 22, 23, 41, 42, 43, 45, 46, 49, 50):
        assert cut in lengths, cut


# ----------------------------------------------------------------------------- objects

def _objdump(path: Path) -> str:
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return "\n".join(out.splitlines()[2:])              # drop the file-name line


def _compiler_mismatch() -> str:
    """Why a fresh build cannot be expected to equal the committed objects ('' if it can):
    another clang generates other code."""
    if not all(shutil.which(t) for t in ("clang", "llvm-objdump", "llvm-dwarfdump", "make")):
        return "clang, llvm-objdump, llvm-dwarfdump or make missing"
    dwarf = subprocess.run(["llvm-dwarfdump", "--debug-info", str(SAMPLES / "xdp1.o")],
                           capture_output=True, text=True).stdout
    built = next((line.split("(", 1)[1].strip(' ")') for line in dwarf.splitlines()
                  if "DW_AT_producer" in line), "?")
    here = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout
    here = here.splitlines()[0].strip() if here else "?"
    return "" if built == here else f"objects built by {built!r}, this clang is {here!r}"


@pytest.mark.skipif(bool(_compiler_mismatch()), reason=_compiler_mismatch() or "ok")
def test_committed_objects_match_sources(tmp_path):
    subprocess.run(["make", "-s", "-C", str(SAMPLES), f"O={tmp_path}"], check=True)
    for name in NAMES:
        assert _objdump(tmp_path / f"{name}.o") == _objdump(SAMPLES / f"{name}.o"), name


@needs_kernel
@pytest.mark.skipif(not shutil.which("bpftool"), reason="bpftool missing")
@pytest.mark.parametrize("name", NAMES)
def test_object_passes_the_verifier(name, bpffs):
    """bpftool loads every program of the object; its pins go to the session's own bpffs."""
    pin = bpffs / f"hxdpc_test_{name}"
    try:
        res = subprocess.run(["bpftool", "prog", "loadall", str(SAMPLES / f"{name}.o"),
                              str(pin), "type", "xdp"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        assert any(pin.iterdir())
    finally:
        shutil.rmtree(pin, ignore_errors=True)


DEVMAPS = {"router_ipv4": "tx_ports", "redirect_map": "tx_port"}


@needs_kernel
@pytest.mark.parametrize("name", NAMES)
def test_object_loads_with_its_preset(name):
    """libbpf loads the object (no bpffs needed) and the kernel accepts every preset entry:
    key and value sizes match the C structs."""
    from emulator.kernel import KernelProgram
    maps = on_loopback(name, DEVMAPS[name]) if name in DEVMAPS else preset(name)
    with KernelProgram(str(SAMPLES / f"{name}.o"), maps=maps) as kp:
        for mapname, rows in maps.items():
            for r in rows:
                assert kp.lookup(mapname, bytes.fromhex(r["key"])) is not None, (mapname, r)


# ----------------------------------------------------------------------------- behaviour


def kernel_run(name: str, pcap: str, maps=None):
    """Every frame of the pcap through the program in the kernel: (results, final maps)."""
    from emulator.kernel import KernelProgram
    with KernelProgram(str(SAMPLES / f"{name}.o"), maps=preset(name) if maps is None else maps) \
            as kp:
        results = [(f, kp.run(f)) for f in frames(PCAPS / pcap)]
        return results, kp.dump_maps()


def u64s(rows) -> dict[int, int]:
    return {int.from_bytes(bytes.fromhex(r["key"]), "little"):
            int.from_bytes(bytes.fromhex(r["value"])[:8], "little") for r in rows}


def csum_ok(b: bytes) -> bool:
    return dpkt.in_cksum(b) == 0


@needs_kernel
def test_firewall_established_flow():
    results, maps = kernel_run("simple_firewall", "simple_firewall-established.pcap")
    assert all(r.action == XDP_REDIRECT and r.data == f for f, r in results)
    (flow,) = maps["flows"]                             # one entry for both directions
    assert int.from_bytes(bytes.fromhex(flow["value"]), "little") == len(results)
    assert maps.get("fw_stats", []) == []               # nothing blocked, passed or malformed


@needs_kernel
def test_firewall_blocks_unknown_flows():
    results, maps = kernel_run("simple_firewall", "simple_firewall-normal.pcap")
    stats = u64s(maps["fw_stats"])
    assert stats[0] == 21                               # 20 unsolicited + 1 outside ping
    assert sum(r.action == XDP_DROP for _, r in results) == 21
    assert stats[2] == sum(r.action == XDP_PASS for _, r in results) == 3
    forwarded = sum(r.action == XDP_REDIRECT for _, r in results)
    flows = sum(int.from_bytes(bytes.fromhex(r["value"]), "little") for r in maps["flows"])
    assert flows == forwarded and len(maps["flows"]) == 12


@needs_kernel
def test_adjust_tail_answers_big_frames():
    results, maps = kernel_run("xdp_adjust_tail", "xdp_adjust_tail-normal.pcap")
    replies = 0
    for f, r in results:
        big = len(f) > 600 and f[12:14] == b"\x08\x00" and f[14] == 0x45
        assert (r.action == XDP_TX) == big
        if not big:
            assert r.action == XDP_PASS and r.data == f
            continue
        replies += 1
        d = r.data
        assert len(d) == 70 and d[:6] == f[6:12] and d[6:12] == f[:6]
        assert csum_ok(d[14:34]) and csum_ok(d[34:70])
        assert (d[34], d[35], struct.unpack(">H", d[40:42])[0]) == (3, 4, 586)
        assert d[26:30] == f[30:34] and d[30:34] == f[26:30] and d[42:] == f[14:42]
    assert replies > 20 and u64s(maps["icmp_cnt"]) == {0: replies}


@needs_kernel
@pytest.mark.parametrize("name", ["katran_lb", "tx_ip_tunnel"])
def test_encapsulation_keeps_the_inner_packet(name):
    results, _ = kernel_run(name, f"{name}-normal.pcap")
    sent = [(f, r) for f, r in results if r.action == XDP_TX]
    assert len(sent) > 30
    for f, r in sent:
        d = r.data
        assert d[6:12] == f[:6]
        if d[12:14] == b"\x08\x00":
            assert d[23] == 4 and csum_ok(d[14:34]) and d[34:] == f[14:]
            assert struct.unpack(">H", d[16:18])[0] == struct.unpack(">H", f[16:18])[0] + 20
        else:
            assert d[12:14] == b"\x86\xdd" and d[20] == 41 and d[54:] == f[14:]
            assert struct.unpack(">H", d[18:20])[0] == struct.unpack(">H", f[18:20])[0] + 40


@needs_kernel
def test_katran_spreads_flows_over_reals():
    results, maps = kernel_run("katran_lb", "katran_lb-flows.pcap")
    reals = collections.Counter(r.data[30:34] for _, r in results if r.action == XDP_TX
                                and r.data[12:14] == b"\x08\x00")
    assert len(reals) >= 6                              # VIPs 0-2 use reals 1..8
    per_vip = {int.from_bytes(bytes.fromhex(r["key"]), "little") for r in maps["vip_stats"]}
    assert per_vip == {0, 1, 2, 3, 4}


def on_loopback(name: str, devmap: str) -> dict:
    """The preset with every devmap entry aimed at the loopback device (ifindex 1), the one
    device every network namespace has: the redirect works, whatever the host's interfaces."""
    maps = preset(name)
    maps[devmap] = [{"key": r["key"], "value": "01000000"} for r in maps[devmap]]
    return maps


@needs_kernel
def test_router_rewrites_and_redirects():
    results, maps = kernel_run("router_ipv4", "router_ipv4-normal.pcap",
                               on_loopback("router_ipv4", "tx_ports"))
    fwd = [(f, r) for f, r in results if r.action == XDP_REDIRECT]
    assert len(fwd) > 50
    for f, r in fwd:
        d = r.data
        assert d[22] == f[22] - 1 and csum_ok(d[14:34]) and d[34:] == f[34:]
    counts = u64s(maps["stats"])
    assert counts[XDP_REDIRECT] == len(fwd)
    assert counts[XDP_DROP] == sum(r.action == XDP_DROP for _, r in results) > 0


@needs_kernel
def test_redirect_map_swaps_and_redirects():
    results, maps = kernel_run("redirect_map", "redirect_map-normal.pcap",
                               on_loopback("redirect_map", "tx_port"))
    for f, r in results:
        assert r.action == XDP_REDIRECT and r.data == f[6:12] + f[:6] + f[12:]
    assert u64s(maps["rxcnt"]) == {0: len(results)}


@needs_kernel
@pytest.mark.parametrize("name", ["xdp1", "xdp2"])
def test_protocol_counters(name):
    results, maps = kernel_run(name, f"{name}-normal.pcap")
    counts = u64s(maps["rxcnt"])
    assert sum(counts.values()) == len(results)
    assert {1, 6, 17, 58} <= set(counts)                # ICMP, TCP, UDP, ICMPv6
    want = XDP_DROP if name == "xdp1" else XDP_TX
    assert all(r.action == want for _, r in results)


@needs_kernel
def test_tail_calls_and_metadata():
    results, maps = kernel_run("xdp_tailcall", "xdp_tailcall-normal.pcap")
    verdicts = u64s(maps["verdicts"])
    tx = [(f, r) for f, r in results if r.action == XDP_TX]
    assert verdicts[5] == len(tx) > 50                   # handled by xdp_ipv4 / xdp_ipv6
    assert verdicts[6] == sum(r.action == XDP_DROP for _, r in results) > 10
    for f, r in tx:
        assert r.data == f[6:12] + f[:6] + f[12:]
        l3 = int.from_bytes(r.meta, "little")
        assert len(r.meta) == 4 and l3 in (14, 18, 22)
        assert f[l3 - 2:l3] in (b"\x08\x00", b"\x86\xdd")
    # without the prog_array entries the tail call falls through: every IP packet passes
    results, maps = kernel_run("xdp_tailcall", "xdp_tailcall-normal.pcap", maps={})
    verdicts = u64s(maps["verdicts"])
    assert all(r.action == XDP_PASS for _, r in results)
    assert verdicts[3] == verdicts[0] + verdicts[1] == len(results) - verdicts[2]
