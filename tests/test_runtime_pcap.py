"""Capture input/output: pcap (µs/ns, both byte orders), pcapng (interfaces, epb_queue,
timestamp resolution, several sections), --ctx, and damaged files (clear error naming the
packet after every good packet before it)."""
import struct

import pytest

from emulator.runtime import pcapio
from emulator.runtime.results import PacketInput
from isa.errors import InputError

ETH = bytes.fromhex("020000000002020000000001" "0800") + bytes(46)


def pcap(records, linktype=1, endian="<", nano=False):
    out = struct.pack(endian + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for ts_sec, frac, data, wire in records:
        out += struct.pack(endian + "IIII", ts_sec, frac, len(data), wire) + data
    return out


def block(btype, body):
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def shb():
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(linktype=1, tsresol=None):
    opts = b""
    if tsresol is not None:
        opts = struct.pack("<HH", 9, 1) + bytes([tsresol]) + bytes(3) + struct.pack("<HH", 0, 0)
    return block(1, struct.pack("<HHI", linktype, 0, 0) + opts)


def epb(iface, ts, data, queue=None, wire=None):
    body = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wire or len(data))
    body += data + bytes(-len(data) % 4)
    if queue is not None:
        body += struct.pack("<HHI", 6, 4, queue) + struct.pack("<HH", 0, 0)
    return block(6, body)


def write(tmp_path, name, raw):
    p = tmp_path / name
    p.write_bytes(raw)
    return str(p)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_records(tmp_path, endian, nano):
    raw = pcap([(1, 5, ETH, 60), (2, 7, ETH[:20], 1500)], endian=endian, nano=nano)
    pk = list(pcapio.read_packets(write(tmp_path, "a.pcap", raw)))
    unit = 1 if nano else 1000
    assert [(p.index, p.ts_ns, len(p.data), p.wire_len, p.ingress_ifindex, p.rx_queue_index) for p in pk] == \
        [(0, 1_000_000_000 + 5 * unit, 60, 60, 1, 0), (1, 2_000_000_000 + 7 * unit, 20, 1500, 1, 0)]


def test_pcapng_interfaces_queues_and_resolution(tmp_path):
    raw = (shb() + idb() + idb(tsresol=9) + epb(0, 1_000_001, ETH) + epb(1, 5_000_000_123, ETH, queue=3)
           + shb() + idb() + epb(0, 7, ETH, queue=1, wire=100))
    pk = list(pcapio.read_packets(write(tmp_path, "a.pcapng", raw)))
    assert [(p.ingress_ifindex, p.rx_queue_index, p.ts_ns) for p in pk] == \
        [(1, 0, 1_000_001_000), (2, 3, 5_000_000_123), (3, 1, 7000)]
    assert pk[2].wire_len == 100


@pytest.mark.parametrize("raw_fn, where", [
    (lambda: pcap([(0, 0, ETH, 60)], linktype=101), "packet 0"),
    (lambda: shb() + idb(linktype=113) + epb(0, 0, ETH), "packet 0"),
    (lambda: shb() + idb() + epb(0, 0, ETH) + epb(4, 0, ETH), "packet 1"),
])
def test_unsupported_inputs_name_the_packet(tmp_path, raw_fn, where):
    with pytest.raises(InputError) as e:
        list(pcapio.read_packets(write(tmp_path, "x.cap", raw_fn())))
    assert where in str(e.value)


@pytest.mark.parametrize("make", ["pcap", "pcapng"])
def test_truncated_files_yield_good_packets_then_fail(tmp_path, make):
    raw = pcap([(0, 0, ETH, 60)] * 3) if make == "pcap" else shb() + idb() + epb(0, 0, ETH) * 3
    for cut in range(len(raw) - 1, len(raw) - 60, -7):
        path = write(tmp_path, f"t.{make}", raw[:cut])
        got = []
        with pytest.raises(InputError) as e:
            for p in pcapio.read_packets(path):
                got.append(p)
        assert str(e.value).startswith(f"{path}: packet 2") and len(got) == 2


@pytest.mark.parametrize("raw", [b"", b"\x00\x01", b"GARBAGE!" * 10, b"\xd4\xc3\xb2\xa1" + bytes(5)])
def test_garbage_files(tmp_path, raw):
    with pytest.raises(InputError):
        list(pcapio.read_packets(write(tmp_path, "g.pcap", raw)))


def test_missing_file():
    with pytest.raises(InputError, match="cannot read"):
        list(pcapio.read_packets("/nonexistent/x.pcap"))


def test_ctx_overrides():
    ctx = {"ingress_ifindex": 2, "packets": {"1": {"ingress_ifindex": 3, "rx_queue_index": 1}}}
    pcapio.check_ctx(ctx, "ctx.json")
    a = pcapio.apply_ctx(PacketInput(0, ETH, 60, 0, 5, 2), ctx)
    b = pcapio.apply_ctx(PacketInput(1, ETH, 60, 0, 5, 2), ctx)
    assert (a.ingress_ifindex, a.rx_queue_index, b.ingress_ifindex, b.rx_queue_index) == (2, 2, 3, 1)
    for bad in ({"ingress_ifindex": -1}, {"bogus": 1}, {"packets": {"x": {}}}, [1]):
        with pytest.raises(InputError):
            pcapio.check_ctx(bad, "ctx.json")


def test_writer_roundtrip_and_names(tmp_path):
    out = pcapio.ActionPcaps(str(tmp_path / "o"))
    out.write("XDP_TX.pcap", ETH, 1_500_000_007)
    out.close()
    (p,) = pcapio.read_packets(str(tmp_path / "o" / "XDP_TX.pcap"))
    assert p.data == ETH and p.ts_ns == 1_500_000_007
    assert pcapio.output_name(4, {"ifindex": 3}, 3) == "XDP_REDIRECT-ifindex-3.pcap"
    assert pcapio.output_name(4, {"map": "cpus", "key": 1}, None) == "XDP_REDIRECT-map-cpus-key-1.pcap"
    assert pcapio.output_name(7, None, None) == "UNKNOWN-7.pcap"
    assert pcapio.output_name(1, None, None) == "XDP_DROP.pcap"


def test_random_corruption_gives_input_errors_only(tmp_path):
    import random
    rng = random.Random(5)
    good = [pcap([(i, 0, ETH, 60) for i in range(5)]), shb() + idb() + b"".join(epb(0, i, ETH, queue=i) for i in range(5))]
    for n in range(200):
        b = bytearray(good[n % 2])
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path = write(tmp_path, "c.cap", bytes(b))
        try:
            for p in pcapio.read_packets(path):
                assert isinstance(p.data, bytes)
        except InputError as e:
            assert str(e).startswith(path)
