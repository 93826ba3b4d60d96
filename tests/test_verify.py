"""`hxdpc verify`: the comparison rules (no kernel needed), then end to end against the
kernel with the interpreter as target, and a deliberately wrong target that must fail."""
import json
import struct

import dpkt
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, needs_kernel
from emulator.kernel.compare import (FAILED, PASSED, SKIPPED, LruWatch, Outcome, Report, Side,
                                     bytes_diff, excuse, map_diffs, packet_diffs)
from test_kernel import build_progs, eth, ipv4

try:
    from emulator.runtime import pcapio, session  # noqa: F401  (the target side, by H4)
    from emulator.interp import interpreter  # noqa: F401
    RUNTIME = ""
except ImportError as e:            # only while the runtime is being written
    RUNTIME = f"the runtime is not importable yet ({e})"
needs_runtime = pytest.mark.skipif(bool(RUNTIME), reason=RUNTIME)


# -- comparison rules -------------------------------------------------------------------
def test_packet_diffs():
    k = Side(3, b"\x01\x02\x03", b"")
    assert packet_diffs(k, Side(3, b"\x01\x02\x03")) == []
    d = packet_diffs(k, Side(1, b"\x01\x09\x03"))
    assert d[0] == "action: kernel XDP_TX (3), target XDP_DROP (1)"
    assert d[1] == "data: kernel 3 bytes, target 3 bytes, first difference at byte 1 (kernel 02, target 09)"
    assert packet_diffs(k, Side(3, b"\x01\x02\x03", b"\xaa"))[0].startswith("meta: kernel 0 bytes, target 1")
    assert "target ended with an error (budget)" in packet_diffs(k, Side(None, error="budget"))[0]
    refused = Side(None, error="EINVAL")
    assert packet_diffs(refused, Side(None, b"", error="too short")) == []
    assert "refuses the frame" in packet_diffs(refused, Side(2, b"x"))[0]


def test_bytes_diff_lengths():
    assert bytes_diff("data", b"ab", b"ab") is None
    assert bytes_diff("data", b"ab", b"abc").endswith("first difference at byte 2 (kernel end, target 63)")


def test_map_diffs():
    k = [{"key": "01", "value": "0a00"}, {"key": "02", "value": "0b00"}]
    assert map_diffs("m", k, list(reversed(k))) == []
    d = map_diffs("m", k, [{"key": "01", "value": "0a01"}, {"key": "03", "value": "00"}])
    assert d == ["key 01: value: kernel 2 bytes, target 2 bytes, first difference at byte 1 (kernel 00, target 01): kernel 0a00, target 0a01",
                 "key 02: only the kernel has it (value 0b00)",
                 "key 03: only the target has it (value 00)"]
    assert map_diffs("m", [], None) == []
    assert "no map 'm'" in map_diffs("m", k, None)[0]
    assert map_diffs("p", [{"key": "00", "value": "a"}], [{"key": "00", "value": "b"}]) == ["key 00: kernel 'a', target 'b'"]


def test_lru_watch_only_excuses_evictions():
    w = LruWatch(["lru"])
    w.update(0, {"lru": {"a", "b"}}, {"lru": {"a", "b"}})
    w.update(1, {"lru": {"b", "c"}}, {"lru": {"b", "c"}})     # both removed "a": same eviction
    assert w.reason() == ""
    w.update(2, {"lru": {"b", "c", "d"}}, {"lru": {"b", "c"}})  # only an addition differs
    assert w.reason() == ""
    w.update(3, {"lru": {"c", "d", "e"}}, {"lru": {"b", "c", "e"}})   # kernel evicted "b"
    assert w.reason() == "LRU map 'lru' past its first eviction (packet 3)"
    assert w.reason("other") == ""


def test_excuse_and_report():
    assert excuse([], ["why"]) == (PASSED, "")
    assert excuse(["x"], ["", ""]) == (FAILED, "")
    assert excuse(["x"], ["", "clock"]) == (SKIPPED, "clock")
    r = Report([Outcome("a"), Outcome("b", FAILED, ["d"]), Outcome("c", SKIPPED, reason="r")])
    assert r.summary() == "1 passed, 1 failed, 1 skipped" and r.exit_code == 1
    assert Outcome("c", SKIPPED, ["d"], "r").lines() == ["c: skipped: r", "c:   (difference) d"]


# -- end to end -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    return build_progs(tmp_path_factory.mktemp("vprogs"))


def write_pcap(path, frames, t0=1_700_000_000.0):
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=1)
        for i, fr in enumerate(frames):
            w.writepkt(fr, ts=t0 + i * 0.001)
    return str(path)


def verify(*args):
    from hxdpc.cli import main
    res = CliRunner().invoke(main, ["verify", *map(str, args)])
    lines = res.output.strip().splitlines()
    return res.exit_code, lines


def mixed_frames():
    return [eth(payload=bytes(i & 255 for i in range(n))) for n in (46, 50, 47, 100, 300, 1000)] + [ipv4(bytes([10, 0, 0, 1]))]


@needs_kernel
@needs_runtime
@pytest.mark.parametrize("section,maps", [
    ("xdp_count", {"counters": [{"key": "02000000", "value": "0700000000000000"}],
                   "percpu": [{"key": "01000000", "values": ["05" + "00" * 7, "06" + "00" * 7]}]}),
    ("xdp_tx_swap", None),
    ("xdp_meta", None),
    ("xdp_jump", {"jumps": [{"key": "00000000", "value": "xdp_tail_target"}]}),
    ("xdp_verdict", {".rodata": [{"key": "00000000", "value": "0300000000000000"}]}),
])
def test_verify_agrees_with_interp(tmp_path, progs, section, maps):
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames() + [bytes(10)])
    args = [progs, "-s", section, "--pcap", pcap]
    if maps:
        (tmp_path / "m.json").write_text(json.dumps(maps))
        args += ["--maps", tmp_path / "m.json"]
    code, lines = verify(*args)
    assert code == 0, "\n".join(lines)
    n_maps = 9      # counters percpu by_len jumps ports fib_rc recent .rodata .bss
    assert lines[-1] == f"{8 + n_maps} passed, 0 failed, 0 skipped"


@needs_kernel
@needs_runtime
def test_verify_adjust_head_and_tail(tmp_path, progs):
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames())
    for delta in (-4, -216, -217, 8, 3000):
        (tmp_path / "m.json").write_text(json.dumps({".rodata": [{"key": "00000000", "value": struct.pack("<Ii", 2, delta).hex()}]}))
        code, lines = verify(progs, "-s", "xdp_adjust", "--pcap", pcap, "--maps", tmp_path / "m.json")
        assert code == 0 and lines[-1].endswith(" 0 failed, 0 skipped"), (delta, lines)


@needs_kernel
@needs_runtime
def test_verify_context_in_private_netns(tmp_path, progs):
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:4])
    ctx = {"ingress_ifindex": 2, "rx_queue_index": 1, "packets": {"2": {"ingress_ifindex": 7, "rx_queue_index": 0}}}
    (tmp_path / "ctx.json").write_text(json.dumps(ctx))
    code, lines = verify(progs, "-s", "xdp_context", "--pcap", pcap, "--ctx", tmp_path / "ctx.json")
    assert code == 0, lines
    assert any("network namespace" in l for l in lines)
    assert lines[-1].endswith(" 0 failed, 0 skipped")


@needs_kernel
@needs_runtime
def test_verify_fib_in_private_netns(tmp_path, progs):
    fib = {"routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "gateway": "10.0.0.254"},
                      {"prefix": "192.168.0.0/16", "ifindex": 3}],
           "neighbours": [{"ip": "10.0.0.254", "mac": "02:00:00:00:00:fe", "ifindex": 2}],
           "interfaces": [{"ifindex": 2, "mac": "02:00:00:00:00:02", "mtu": 1500},
                          {"ifindex": 3, "mac": "02:00:00:00:00:03", "mtu": 1400}]}
    (tmp_path / "fib.json").write_text(json.dumps(fib))
    frames = [ipv4(bytes([10, 1, 2, 3])), ipv4(bytes([10, 1, 2, 3]), 1600), ipv4(bytes([192, 168, 0, 9])),
              ipv4(bytes([11, 0, 0, 1])), eth(proto=0x86dd, payload=bytes(60))]
    pcap = write_pcap(tmp_path / "p.pcap", frames)
    code, lines = verify(progs, "-s", "xdp_fib", "--pcap", pcap, "--fib", tmp_path / "fib.json")
    assert code == 0, lines
    assert lines[-1].endswith(" 0 failed, 0 skipped")


@needs_kernel
@needs_runtime
def test_verify_skips_clock_dependent_map(tmp_path, progs):
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:3])
    code, lines = verify(progs, "-s", "xdp_clock", "--pcap", pcap)
    assert code == 0
    assert any(l.startswith("map counters: skipped: the program calls bpf_ktime_get_ns") for l in lines), lines
    assert lines[-1] == "11 passed, 0 failed, 1 skipped"


@needs_kernel
@needs_runtime
def test_verify_lru_evictions_are_skipped_not_failed(tmp_path, progs):
    frames = [eth(payload=bytes(n - 14)) for n in list(range(60, 100)) * 2]
    pcap = write_pcap(tmp_path / "p.pcap", frames)
    code, lines = verify(progs, "-s", "xdp_lru", "--pcap", pcap)
    assert code == 0, lines
    assert " 0 failed" in lines[-1]
    skipped = [l for l in lines if ": skipped: " in l]
    assert all("LRU map 'recent' past its first eviction" in l for l in skipped)


class WrongAction:
    """A target that runs the real interpreter, then lies about XDP_PASS."""

    def __init__(self, program):
        from emulator.interp.interpreter import Interpreter
        self.inner = Interpreter(program)

    def run(self, env, r1, *budget):
        rr = self.inner.run(env, r1, *budget)
        if rr.r0 == 2:
            rr.r0 = 1
        return rr


@needs_kernel
@needs_runtime
def test_a_wrong_target_fails(tmp_path, progs, monkeypatch):
    from hxdpc import targets
    monkeypatch.setitem(targets.TARGETS, "wrong", targets.Target("wrong", lambda p, options: WrongAction(p)))
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:3])
    code, lines = verify(progs, "-s", "xdp_count", "--pcap", pcap, "--target", "wrong")
    assert code == 1
    assert "packet 0: action: kernel XDP_PASS (2), target XDP_DROP (1)" in lines
    assert lines[-1].startswith("9 passed, 3 failed")   # maps agree: the program itself ran


@needs_kernel
@needs_runtime
def test_a_wrong_map_preload_on_the_target_fails(tmp_path, progs, monkeypatch):
    from emulator.runtime import session as S
    real = S.Session.__init__

    def skewed(self, program, **kw):
        kw["maps"] = {"counters": [{"key": "03000000", "value": "0100000000000000"}]}
        real(self, program, **kw)
    monkeypatch.setattr(S.Session, "__init__", skewed)
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:2])
    code, lines = verify(progs, "-s", "xdp_count", "--pcap", pcap)
    assert code == 1
    assert "map counters: key 03000000: only the target has it (value 0100000000000000)" in lines


def test_kernel_unavailable_exits_2(tmp_path, monkeypatch):
    from hxdpc.commands import verify as V
    monkeypatch.setattr(V.K, "kernel_unavailable_reason", lambda: "bpf() needs root")
    code, lines = verify(tmp_path / "x.o", "--pcap", tmp_path / "x.pcap")
    assert code == 2
    assert lines == ["error: verify: the Linux kernel cannot be used as the reference here: bpf() needs root"]


@needs_kernel
def test_bad_inputs_exit_2(tmp_path, progs):
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:1])
    (tmp_path / "bad.json").write_text("{nope")
    code, lines = verify(progs, "--pcap", pcap, "--maps", tmp_path / "bad.json")
    assert code == 2 and len(lines) == 1 and "bad.json" in lines[0] and "not valid JSON" in lines[0]
    (tmp_path / "text.s").write_text("r0 = 2\nexit\n")
    code, lines = verify(tmp_path / "text.s", "--pcap", pcap)
    assert code == 2 and "needs an ELF object" in lines[0]


@needs_kernel
@needs_runtime
def test_a_target_changing_bytes_fails(tmp_path, progs, monkeypatch):
    from emulator.runtime import session as S
    real = S.Session.run

    def flip(self, pkt):
        r = real(self, pkt)
        if pkt.index == 1:
            r.data = r.data[:20] + bytes([r.data[20] ^ 1]) + r.data[21:]
        return r
    monkeypatch.setattr(S.Session, "run", flip)
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames()[:3])
    code, lines = verify(progs, "-s", "xdp_tx_swap", "--pcap", pcap)
    assert code == 1
    assert [l for l in lines if l.startswith("packet")] == [
        "packet 1: data: kernel 64 bytes, target 64 bytes, first difference at byte 20 (kernel 06, target 07)"]


XDPFILT = sorted(__import__("glob").glob("/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_*.o"))


@needs_kernel
@needs_runtime
@pytest.mark.skipif(not XDPFILT, reason="xdp-tools' xdpfilt_*.o are not installed")
def test_xdp_tools_filters_on_a_mixed_pcap(tmp_path):
    """xdp-filter's programs (pinned-by-name maps, per-CPU stats), maps denying ports,
    addresses and a MAC, on normal, flow and hostile traffic of the samples."""
    from emulator.runtime.pcapio import read_packets
    frames = []
    for name, step in (("simple_firewall-flows", 4), ("simple_firewall-hostile", 3), ("tx_ip_tunnel-normal", 4)):
        path = SAMPLES / "pcaps" / f"{name}.pcap"
        if not path.exists():
            pytest.skip(f"{path} is not generated yet")
        frames += [bytes(p.data) for p in read_packets(str(path))][::step]
    pcap = write_pcap(tmp_path / "mixed.pcap", frames)
    ip4 = [f[26:30].hex() for f in frames if len(f) >= 34 and f[12:14] == b"\x08\x00"]
    u64 = lambda v: v.to_bytes(8, "little").hex()
    preset = {"filter_ports": [{"key": (80).to_bytes(4, "little").hex(), "value": u64(2 | 4 | 8)},
                               {"key": (123).to_bytes(4, "little").hex(), "value": u64(2 | 8)}],
              "filter_ipv4": [{"key": ip4[0], "value": u64(1)}, {"key": ip4[5], "value": u64(1)}],
              "filter_ethernet": [{"key": frames[1][6:12].hex(), "value": u64(1)}]}
    from emulator.kernel import object_map_types
    for obj in XDPFILT:
        have = object_map_types(obj)
        (tmp_path / "m.json").write_text(json.dumps({k: v for k, v in preset.items() if k in have}))
        code, lines = verify(obj, "--pcap", pcap, "--maps", tmp_path / "m.json")
        assert code == 0, (obj, lines[-5:])
        assert lines[-1] == f"{len(frames) + len(have)} passed, 0 failed, 0 skipped", obj


@needs_kernel
@needs_runtime
def test_verify_legacy_maps_object(tmp_path):
    from test_kernel import LEGACY_C, build_c
    obj = build_c(tmp_path, "legacy", LEGACY_C)
    pcap = write_pcap(tmp_path / "p.pcap", mixed_frames())
    code, lines = verify(obj, "--pcap", pcap)
    assert (code, lines[-1]) == (0, "8 passed, 0 failed, 0 skipped"), lines


@needs_kernel
@needs_runtime
def test_progress_bar_path(tmp_path, progs, capsys):
    from hxdpc.commands.verify import Verifier, VerifyInputs
    pcap = write_pcap(tmp_path / "p.pcap", [eth(payload=bytes(50))] * 250)
    report = Verifier(VerifyInputs(progs, pcap, section="xdp_count"), progress=True).run()
    assert report.summary() == f"{250 + 9} passed, 0 failed, 0 skipped"


@needs_kernel
@needs_runtime
def test_an_lru_eviction_on_one_side_is_skipped_from_there_on(tmp_path, progs, monkeypatch):
    """The target "evicts" key 60 after packet 3 while the kernel keeps it: packet 3 on, the
    differences (the action depends on key 60) are skipped with the LRU reason, never failed,
    and the packets before still pass."""
    from emulator.runtime import session as S
    real = S.Session.run

    def evict(self, pkt):
        r = real(self, pkt)
        if pkt.index == 3:
            self.mapset.by_name("recent").delete((60).to_bytes(4, "little"))
        return r
    monkeypatch.setattr(S.Session, "run", evict)
    pcap = write_pcap(tmp_path / "p.pcap", [eth(payload=bytes(n - 14)) for n in (60, 61, 62, 63, 64, 65, 66)])
    code, lines = verify(progs, "-s", "xdp_lru", "--pcap", pcap)
    assert code == 0, lines
    skipped = [l for l in lines if ": skipped: " in l]
    assert skipped and all("LRU map 'recent' past its first eviction (packet 3)" in l for l in skipped)
    assert "packet 4: skipped: LRU map 'recent' past its first eviction (packet 3)" in lines
    assert "map recent: skipped: LRU map 'recent' past its first eviction (packet 3)" in lines
    assert not any(l.startswith(("packet 0:", "packet 1:", "packet 2:")) for l in lines)


@needs_kernel
@needs_runtime
def test_verify_fib_route_types_addresses_and_forwarding(tmp_path, progs):
    fib = {"interfaces": [{"ifindex": 2, "mac": "02:00:00:00:00:02", "ip": "10.0.0.1"},
                          {"ifindex": 3, "mac": "02:00:00:00:00:03", "mtu": 1400, "forwarding": False}],
           "routes": [{"prefix": "10.9.0.0/16", "type": "blackhole"},
                      {"prefix": "10.8.0.0/16", "type": "unreachable"},
                      {"prefix": "10.7.0.0/16", "type": "prohibit"},
                      {"prefix": "10.6.0.0/16", "ifindex": 3, "metric": 7, "mtu": 1300},
                      {"prefix": "10.5.0.0/16", "ifindex": 2, "table": 100}],
           "neighbours": [{"ip": "10.6.0.5", "mac": "02:00:00:00:06:05", "ifindex": 3}]}
    (tmp_path / "fib.json").write_text(json.dumps(fib))
    dsts = [[10, 9, 0, 1], [10, 8, 0, 1], [10, 7, 0, 1], [10, 6, 0, 5], [10, 6, 0, 6], [10, 5, 0, 1], [10, 0, 0, 1]]
    frames = [ipv4(bytes(d)) for d in dsts] + [ipv4(bytes([10, 6, 0, 5]), 1350)] * 2
    pcap = write_pcap(tmp_path / "p.pcap", frames)
    # packet 7 arrives on 3 (forwarding off: FWD_DISABLED), packet 8 on 2 exceeds the route MTU
    (tmp_path / "ctx.json").write_text(json.dumps({"ingress_ifindex": 2, "packets": {"7": {"ingress_ifindex": 3}}}))
    code, lines = verify(progs, "-s", "xdp_fib", "--pcap", pcap, "--fib", tmp_path / "fib.json",
                         "--ctx", tmp_path / "ctx.json")
    assert code == 0, lines
    assert lines[-1].endswith(" 0 failed, 0 skipped")


@needs_kernel
@needs_runtime
def test_verify_jumbo_frames_grow_only_on_the_loopback_queue(tmp_path, progs):
    """A frame beyond 3520 bytes has fragments; growing its tail needs an rx queue with a
    frag size, which the test-run gives the loopback queue only (a veth queue has none)."""
    big = eth(payload=bytes(i & 255 for i in range(5000)))
    pcap = write_pcap(tmp_path / "p.pcap", [big, big, eth(payload=bytes(100))])
    (tmp_path / "ctx.json").write_text(json.dumps({"packets": {"1": {"ingress_ifindex": 2}}}))
    (tmp_path / "m.json").write_text(json.dumps({".rodata": [{"key": "00000000", "value": struct.pack("<Ii", 2, 10).hex()}]}))
    from emulator.kernel import KernelProgram
    with KernelProgram(progs, "xdp_adjust", json.loads((tmp_path / "m.json").read_text())) as k:
        assert k.run(big).action == 2 and len(k.run(big).data) == len(big) + 10
    code, lines = verify(progs, "-s", "xdp_adjust", "--pcap", pcap, "--maps", tmp_path / "m.json",
                         "--ctx", tmp_path / "ctx.json")
    assert code == 0, lines
    assert lines[-1].endswith(" 0 failed, 0 skipped")


def _sample_cases():
    out = []
    for pcap in sorted((SAMPLES / "pcaps").glob("*.pcap*")):
        name = pcap.name.split("-")[0]
        if (SAMPLES / f"{name}.o").exists():
            out.append(pytest.param(name, pcap, id=pcap.name))
    return out


@needs_kernel
@needs_runtime
@pytest.mark.parametrize("name,pcap", _sample_cases())
def test_every_sample_pcap_verifies_clean(name, pcap):
    """issue 3: verify reports no difference for every sample program on each of its pcaps."""
    from hxdpc.commands.verify import Verifier, VerifyInputs
    side = {k: str(SAMPLES / f"{name}.{k}.json") for k in ("maps", "fib", "ctx")
            if (SAMPLES / f"{name}.{k}.json").exists()}
    inp = VerifyInputs(str(SAMPLES / f"{name}.o"), str(pcap), side.get("maps"), "interp",
                       ctx_path=side.get("ctx"), fib_path=side.get("fib"))
    report = Verifier(inp).run()
    bad = [l for o in report.outcomes if o.status != "passed" for l in o.lines()]
    assert report.count("failed") == 0 and report.count("skipped") == 0, bad[:10]
    assert report.count("passed") > 0
