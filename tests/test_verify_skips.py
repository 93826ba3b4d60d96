"""verify: a packet the kernel cannot give its context (rx queue > 0 on the loopback device,
ifindex 1, or an ifindex with no device) is skipped on both sides, so the target's maps never
hold its effects; a frame the kernel refuses for itself is still compared."""
import json

import pytest

from conftest import SAMPLES, needs_kernel
from test_verify import verify

RXQ = SAMPLES / "rxq_info.o"
RXQ_MAPS = SAMPLES / "rxq_info.maps.json"
MULTIQ = SAMPLES / "pcaps" / "rxq_info-multiq.pcapng"
NORMAL = SAMPLES / "pcaps" / "rxq_info-normal.pcap"


def _ctx(tmp_path, ctx):
    path = tmp_path / "ctx.json"
    path.write_text(json.dumps(ctx))
    return path


@needs_kernel
def test_loopback_queue_above_0_is_skipped_on_both_sides(tmp_path):
    # the multi-queue pcapng (epb_queue on ifindex 2 and 3) plus two of its loopback packets (0 and 6) on queue 2 and 1
    ctx = _ctx(tmp_path, {"packets": {"0": {"rx_queue_index": 2}, "6": {"rx_queue_index": 1}}})
    code, lines = verify(RXQ, "--pcap", MULTIQ, "--maps", RXQ_MAPS, "--ctx", ctx)
    assert code == 0, lines
    assert not any(l.startswith("map ") for l in lines), lines
    skipped = [l for l in lines if ": skipped: " in l]
    assert [l.split(":")[0] for l in skipped] == ["packet 0", "packet 6"]
    assert "the device with ifindex 1 has no rx queue 2" in skipped[0] and "run on neither side" in skipped[0]
    assert lines[-1] == "98 passed, 0 failed, 2 skipped"


@needs_kernel
def test_a_stream_the_kernel_refuses_entirely(tmp_path):
    ctx = _ctx(tmp_path, {"rx_queue_index": 1})
    code, lines = verify(RXQ, "--pcap", NORMAL, "--maps", RXQ_MAPS, "--ctx", ctx)
    assert code == 0, lines
    assert "note: no packet ran on either side: the maps are compared as preloaded" in lines
    assert not any(l.startswith("map ") for l in lines), lines
    assert lines[-1] == "4 passed, 0 failed, 100 skipped"


@needs_kernel
def test_a_context_without_a_namespace_is_skipped(tmp_path, monkeypatch):
    """No private namespace: ifindex 987654 names no device (ENODEV) here, and nothing runs."""
    from emulator.kernel import netns
    monkeypatch.setattr(netns, "netns_unavailable_reason", lambda: "ip netns disabled by the test")
    ctx = _ctx(tmp_path, {"packets": {"1": {"ingress_ifindex": 987654}}})
    code, lines = verify(RXQ, "--pcap", NORMAL, "--maps", RXQ_MAPS, "--ctx", ctx)
    assert code == 0, lines
    skipped = [l for l in lines if ": skipped: " in l]
    assert len(skipped) == 1 and skipped[0].startswith("packet 1: skipped:") and "ENODEV" in skipped[0]
    assert lines[-1] == "103 passed, 0 failed, 1 skipped"


@needs_kernel
def test_the_probe_tells_context_from_frame():
    from emulator.kernel.probe import ContextProbe
    probe = ContextProbe()
    try:
        assert probe.refusal(1, 0) == ""
        assert probe.refusal(1, 1).startswith("EINVAL: the device with ifindex 1 has no rx queue 1")
        assert probe.refusal(987654, 0).startswith("ENODEV")
    finally:
        probe.close()
    assert probe.fd == -1
