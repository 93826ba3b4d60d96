"""Packet capture input and output: pcap and pcapng in, one pcap per action out.

Reading is a generator of PacketInput: a truncated or corrupt file raises InputError naming
the file and the packet index *after* yielding every packet before the damage, so outputs
written so far stay consistent.  Both formats are parsed here (a few struct reads) because
the pcapng rules of the contract need each packet's interface and its ``epb_queue`` option,
which dpkt's pcapng reader does not give.

Rules (docs/runtime.md): only Ethernet link types (DLT_EN10MB = 1) are accepted, since XDP
sees Ethernet frames; a record captured shorter than it was on the wire (caplen < len) runs
with the captured bytes only, as the test-run would receive them; pcapng interface k of the
file gives ingress ifindex k + 1, a packet's ``epb_queue`` its rx queue; ``--ctx`` overrides.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator, Optional

from emulator.runtime.results import PacketInput
from isa.uapi import action_name
from isa.errors import InputError, quote, read_json

LINKTYPE_ETHERNET = 1
PCAP_MAGICS = {0xA1B2C3D4: 1000, 0xA1B23C4D: 1}        # -> ns per fraction unit
PCAPNG_SHB = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
U32_MAX = 0xFFFFFFFF
MAX_RECORD = 1 << 26      # a record bigger than this is corruption, not a packet


def read_packets(path: str, ctx: Optional[dict] = None) -> Iterator[PacketInput]:
    """Packets of a pcap or pcapng file, in order (format recognised by content), with the
    --ctx object `ctx` applied (see apply_ctx)."""
    if ctx is not None:
        check_ctx(ctx, "--ctx")
    for pkt in _read(path):
        yield apply_ctx(pkt, ctx)


def _read(path: str) -> Iterator[PacketInput]:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror}") from None
    with f:
        head = f.read(4)
        if len(head) < 4:
            raise InputError(path, "empty or truncated file: not a pcap or pcapng capture")
        magic_le = struct.unpack("<I", head)[0]
        if magic_le == PCAPNG_SHB:
            yield from _read_pcapng(path, f, head)
        elif magic_le in PCAP_MAGICS or struct.unpack(">I", head)[0] in PCAP_MAGICS:
            yield from _read_pcap(path, f, head)
        else:
            raise InputError(path, f"not a pcap or pcapng capture (magic {head.hex()})")


def _read_pcap(path: str, f: BinaryIO, head: bytes) -> Iterator[PacketInput]:
    endian = "<" if struct.unpack("<I", head)[0] in PCAP_MAGICS else ">"
    unit = PCAP_MAGICS[struct.unpack(endian + "I", head)[0]]
    rest = f.read(20)
    if len(rest) < 20:
        raise InputError(path, "truncated pcap file header")
    _vmaj, _vmin, _zone, _sig, _snap, network = struct.unpack(endian + "HHiIII", rest)
    linktype = network & 0x0FFFFFFF
    index = 0
    while True:
        hdr = f.read(16)
        if not hdr:
            return
        where = f"{path}: packet {index}"
        if len(hdr) < 16:
            raise InputError(where, f"truncated record header ({len(hdr)} of 16 bytes)")
        sec, frac, caplen, wirelen = struct.unpack(endian + "IIII", hdr)
        if caplen > MAX_RECORD:
            raise InputError(where, f"corrupt record: captured length {caplen}")
        data = f.read(caplen)
        if len(data) < caplen:
            raise InputError(where, f"truncated record ({len(data)} of {caplen} captured bytes)")
        if linktype != LINKTYPE_ETHERNET:
            raise InputError(where, f"link type {linktype} is not Ethernet (1): XDP programs see Ethernet frames")
        yield PacketInput(index, data, max(wirelen, caplen), sec * 1_000_000_000 + frac * unit)
        index += 1


class _Iface:
    def __init__(self, ifindex: int, linktype: int, snaplen: int):
        self.ifindex = ifindex
        self.linktype = linktype
        self.snaplen = snaplen
        self.tsresol_num, self.tsresol_den = 1000, 1     # ns per unit = num/den (default µs)
        self.tsoffset = 0


def _options(body: bytes, e: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, pos)
        if code == 0:
            return
        val = body[pos + 4:pos + 4 + length]
        if len(val) < length:
            raise ValueError("option runs past its block")
        yield code, val
        pos += 4 + ((length + 3) & ~3)


def _read_pcapng(path: str, f: BinaryIO, head: bytes) -> Iterator[PacketInput]:
    e = "<"
    ifaces: list[_Iface] = []
    base = 0                   # interfaces of earlier sections (ifindex = position in the file + 1)
    index = 0
    first = True
    while True:
        btype_raw = head if first else f.read(4)
        first = False
        if not btype_raw:
            return
        where = f"{path}: packet {index}"
        if len(btype_raw) < 4:
            raise InputError(where, "truncated block header")
        rest = f.read(4)
        if len(rest) < 4:
            raise InputError(where, "truncated block header")
        btype_le = struct.unpack("<I", btype_raw)[0]
        if btype_le == PCAPNG_SHB:
            bom = f.read(4)
            if len(bom) < 4:
                raise InputError(where, "truncated section header block")
            if struct.unpack("<I", bom)[0] == BYTE_ORDER_MAGIC:
                e = "<"
            elif struct.unpack(">I", bom)[0] == BYTE_ORDER_MAGIC:
                e = ">"
            else:
                raise InputError(where, "corrupt section header block (byte-order magic)")
            total = struct.unpack(e + "I", rest)[0]
            if total < 28 or total % 4 or total > MAX_RECORD:
                raise InputError(where, f"corrupt section header block (length {total})")
            body = f.read(total - 12)
            if len(body) < total - 12:
                raise InputError(where, "truncated section header block")
            base += len(ifaces)
            ifaces = []
            continue
        btype = struct.unpack(e + "I", btype_raw)[0]
        total = struct.unpack(e + "I", rest)[0]
        if total < 12 or total % 4 or total > MAX_RECORD:
            raise InputError(where, f"corrupt block of type {btype} (length {total})")
        body = f.read(total - 8)
        if len(body) < total - 8:
            raise InputError(where, f"truncated block of type {btype} ({len(body) + 8} of {total} bytes)")
        if struct.unpack_from(e + "I", body, len(body) - 4)[0] != total:
            raise InputError(where, f"corrupt block of type {btype} (trailing length differs)")
        body = body[:-4]
        try:
            if btype == 1:                                      # interface description
                linktype, _res, snaplen = struct.unpack_from(e + "HHI", body)
                it = _Iface(base + len(ifaces) + 1, linktype, snaplen)
                for code, val in _options(body[8:], e):
                    if code == 9 and val:                       # if_tsresol
                        r = val[0]
                        if r & 0x80:
                            it.tsresol_num, it.tsresol_den = 10 ** 9, 1 << (r & 0x7F)
                        else:
                            p = r & 0x7F
                            it.tsresol_num, it.tsresol_den = (10 ** (9 - p), 1) if p <= 9 else (1, 10 ** (p - 9))
                    elif code == 14 and len(val) == 8:          # if_tsoffset (seconds)
                        it.tsoffset = struct.unpack(e + "q", val)[0]
                ifaces.append(it)
                continue
            if btype in (6, 2, 3):
                pkt = _packet_block(btype, body, e, ifaces, index)
                if isinstance(pkt, str):
                    raise InputError(where, pkt)
                yield pkt
                index += 1
        except (struct.error, ValueError) as ex:
            raise InputError(where, f"corrupt block of type {btype} ({ex})") from None


def _packet_block(btype: int, body: bytes, e: str, ifaces: list[_Iface], index: int):
    queue = 0
    if btype == 3:                                          # simple packet block
        if not ifaces:
            return "simple packet block before any interface description"
        iface = ifaces[0]
        wirelen = struct.unpack_from(e + "I", body)[0]
        caplen = min(wirelen, iface.snaplen or wirelen)
        data = body[4:4 + caplen]
        ts = 0
        opts = b""
    else:
        if btype == 6:
            iid, hi, lo, caplen, wirelen = struct.unpack_from(e + "IIIII", body)
            off = 20
        else:                                               # obsolete packet block
            iid, _drops, hi, lo, caplen, wirelen = struct.unpack_from(e + "HHIIII", body)
            off = 20
        if iid >= len(ifaces):
            return f"packet on interface {iid}, which the section does not describe"
        iface = ifaces[iid]
        data = body[off:off + caplen]
        opts = body[off + ((caplen + 3) & ~3):]
        units = (hi << 32) | lo
        ts = units * iface.tsresol_num // iface.tsresol_den + iface.tsoffset * 1_000_000_000
    if len(data) < caplen:
        return f"truncated packet data ({len(data)} of {caplen} bytes)"
    if btype == 6:
        for code, val in _options(opts, e):
            if code == 6 and len(val) == 4:                 # epb_queue
                queue = struct.unpack(e + "I", val)[0]
    if iface.linktype != LINKTYPE_ETHERNET:
        return f"link type {iface.linktype} is not Ethernet (1): XDP programs see Ethernet frames"
    return PacketInput(index, bytes(data), max(wirelen, len(data)), ts, iface.ifindex, queue)


# ---------------------------------------------------------------- --ctx

def load_ctx(path: str) -> dict:
    """The --ctx JSON, validated: {"ingress_ifindex", "rx_queue_index", "packets": {"N": {...}}}."""
    obj = read_json(path, "the packet context")
    check_ctx(obj, path)
    return obj


def _check_fields(obj: dict, where: str) -> None:
    for k, v in obj.items():
        if k not in ("ingress_ifindex", "rx_queue_index"):
            raise InputError(where, f"unknown field {quote(k)} (ingress_ifindex, rx_queue_index)")
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= U32_MAX:
            raise InputError(f"{where}.{k}", f"expected an integer 0..{U32_MAX}, got {quote(v)}")


def check_ctx(obj, where: str) -> None:
    if not isinstance(obj, dict):
        raise InputError(where, 'expected {"ingress_ifindex": N, "rx_queue_index": N, "packets": {...}}')
    _check_fields({k: v for k, v in obj.items() if k != "packets"}, where)
    pk = obj.get("packets", {})
    if not isinstance(pk, dict):
        raise InputError(f"{where}: packets", "expected an object keyed by 0-based packet index")
    for k, v in pk.items():
        if not (isinstance(k, str) and k.isascii() and k.isdigit()):
            raise InputError(f"{where}: packets", f"key {quote(k)} is not a packet index")
        if not isinstance(v, dict):
            raise InputError(f"{where}: packets.{k}", "expected an object")
        _check_fields(v, f"{where}: packets.{k}")


def apply_ctx(pkt: PacketInput, ctx: Optional[dict]) -> PacketInput:
    """The packet with --ctx applied: per-packet entries over the file-wide ones over the
    capture's own (pcapng interface and queue) over the defaults (ifindex 1, queue 0)."""
    if not ctx:
        return pkt
    over = {k: v for k, v in ctx.items() if k != "packets"}
    over.update(ctx.get("packets", {}).get(str(pkt.index), {}))
    if not over:
        return pkt
    return PacketInput(pkt.index, pkt.data, pkt.wire_len, pkt.ts_ns,
                       over.get("ingress_ifindex", pkt.ingress_ifindex),
                       over.get("rx_queue_index", pkt.rx_queue_index))


# ---------------------------------------------------------------- output pcaps

class PcapWriter:
    """A nanosecond pcap, Ethernet link type; records written as given (deterministic).

    Each record (16-byte header and its data) is one write, so a run stopped between
    packets (emulate's SIGINT/SIGTERM handling) leaves only whole records; any OSError
    is an InputError naming the file (exit 2)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.f = open(path, "wb")
        except OSError as e:
            raise InputError(path, f"cannot write: {e.strerror or e}") from None
        self._put(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))

    def _put(self, record: bytes) -> None:
        try:
            self.f.write(record)
        except OSError as e:
            raise InputError(self.path, f"cannot write: {e.strerror or e}") from None

    def write(self, data: bytes, ts_ns: int, wire_len: Optional[int] = None) -> None:
        sec, nsec = divmod(max(ts_ns, 0), 1_000_000_000)
        header = struct.pack("<IIII", sec & U32_MAX, nsec, len(data), max(wire_len or 0, len(data)))
        self._put(header + bytes(data))

    def close(self) -> None:
        try:
            self.f.close()
        except OSError as e:
            raise InputError(self.path, f"cannot write: {e.strerror or e}") from None


def output_name(action: int, redirect: Optional[dict], ifindex: Optional[int]) -> str:
    """File name of the per-action pcap a result goes to."""
    if action == 4:
        if ifindex is not None:
            return f"XDP_REDIRECT-ifindex-{ifindex}.pcap"
        if redirect and "map" in redirect:
            return f"XDP_REDIRECT-map-{redirect['map']}-key-{redirect['key']}.pcap"
        return "XDP_REDIRECT.pcap"
    name = action_name(action)
    return (name.replace("(", "-").replace(")", "") if name.startswith("UNKNOWN") else name) + ".pcap"


class ActionPcaps:
    """DIR/XDP_PASS.pcap, DIR/XDP_TX.pcap, ..., DIR/XDP_REDIRECT-ifindex-N.pcap, opened on first use."""

    def __init__(self, directory: str):
        self.dir = directory
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise InputError(directory, f"cannot create the output directory: {e.strerror or e}") from None
        self.writers: dict[str, PcapWriter] = {}

    def write(self, name: str, data: bytes, ts_ns: int) -> None:
        w = self.writers.get(name)
        if w is None:
            w = self.writers[name] = PcapWriter(os.path.join(self.dir, name))
        w.write(data, ts_ns)

    def close(self) -> None:
        """Close every writer (all of them, even when one fails; the first failure is raised)."""
        close_all(self.writers.values())


def close_all(outputs) -> None:
    """Close every output even when one fails (disk full); the first failure is raised."""
    first = None
    for f in outputs:
        try:
            f.close()
        except InputError as e:
            first = first or e
    if first is not None:
        raise first
