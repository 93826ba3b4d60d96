#!/usr/bin/env python3
"""Deterministic test traffic for the sample programs.

Usage: python3 gen_pcaps.py [OUTDIR] [--only NAME ...]   (default OUTDIR: ./pcaps; `make pcaps`)

For every sample NAME it writes OUTDIR/NAME-normal.pcap (typical traffic aimed at what the
program does), NAME-flows.pcap (many flows) and NAME-hostile.pcap (headers cut at every
boundary, bogus lengths and versions, VLAN stacks, IPv6 extension headers, garbage, tiny
and full-size frames); a few extras: NAME-jumbo.pcap (frames up to 9000 bytes) for xdp1 and
xdp_adjust_tail, rxq_info-multiq.pcapng (several interfaces, epb_queue options) and
simple_firewall-established.pcap (one UDP flow of 64-byte frames, for Sephirot's
calibration).  Every frame is at least 14 bytes: the kernel's BPF_PROG_TEST_RUN rejects
shorter data (EINVAL), so no executor could be compared on them.

Everything is a pure function of the fixed seeds below: the same dpkt gives byte-identical
files (timestamps are synthetic, 10 us apart, from a fixed epoch).
"""
from __future__ import annotations

import argparse
import ipaddress
import random
import struct
import sys
import zlib
from pathlib import Path
from typing import Callable, Iterable

import dpkt

_WRITE_BYTECODE, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ here
sys.path.insert(0, str(Path(__file__).resolve().parent))
from addrs import (HOST_MAC, KATRAN_VIPS, TUNNEL_VIPS, mac, peer_mac)  # noqa: E402
sys.dont_write_bytecode = _WRITE_BYTECODE

EPOCH = 1_700_000_000
SNAPLEN = 65535
ETH_MIN = 60  # frames shorter than this are padded, like a NIC would deliver them
MAX_FRAME = 1514

TCP_SYN, TCP_ACK, TCP_PSH, TCP_FIN = 0x02, 0x10, 0x08, 0x01

# --------------------------------------------------------------------------- frame builders


def ip_bytes(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def ether(payload: bytes, ethertype: int, dst: str = HOST_MAC, src: str = peer_mac(0x99),
          vlans: Iterable[tuple[int, int]] = (), pad: bool = True) -> bytes:
    """Ethernet header, VLAN tags given as (tpid, vid), payload; padded to 60 bytes."""
    hdr = mac(dst) + mac(src)
    for tpid, vid in vlans:
        hdr += struct.pack(">HH", tpid, vid)
    frame = hdr + struct.pack(">H", ethertype) + payload
    if pad and len(frame) < ETH_MIN:
        frame += bytes(ETH_MIN - len(frame))
    return frame


def l4(proto: int, sport: int, dport: int, payload: bytes, flags: int = TCP_ACK,
       seq: int = 1000) -> dpkt.Packet:
    if proto == 6:
        return dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=1, flags=flags, win=8192,
                            data=payload)
    if proto == 17:
        return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    if proto == 1:
        return dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=sport, seq=dport,
                                                                        data=payload))
    return _raw(payload)


class _raw(bytes):
    """Opaque L4 payload for protocols dpkt has no class for."""


def ipv4(src: str, dst: str, proto: int, body, ttl: int = 64, tos: int = 0,
         opts: bytes = b"", frag: int = 0, ident: int = 1) -> bytes:
    ip = dpkt.ip.IP(src=ip_bytes(src), dst=ip_bytes(dst), p=proto, ttl=ttl, tos=tos, id=ident,
                    data=body if isinstance(body, dpkt.Packet) else bytes(body))
    ip.opts = opts
    ip.hl = 5 + len(opts) // 4
    ip._flags_offset = frag  # raw flags + fragment offset
    return bytes(ip)


def ipv6(src: str, dst: str, nxt: int, body, hlim: int = 64, ext: bytes = b"",
         first_nxt: int | None = None) -> bytes:
    """IPv6 with optional raw extension headers `ext` (first_nxt = their first type)."""
    s, d = ip_bytes(src), ip_bytes(dst)
    if isinstance(body, dpkt.Packet):
        raw = bytes(body)
        if nxt in (6, 17, 58):
            off = {6: 16, 17: 6, 58: 2}[nxt]
            raw = raw[:off] + b"\0\0" + raw[off + 2:]
            cs = dpkt.in_cksum_add(0, struct.pack(">16s16sxBH", s, d, nxt, len(raw)))
            total = dpkt.in_cksum_done(dpkt.in_cksum_add(cs, raw))
            if nxt == 17 and total == 0:
                total = 0xffff
            raw = raw[:off] + struct.pack(">H", total) + raw[off + 2:]
    else:
        raw = bytes(body)
    payload = ext + raw
    hdr = struct.pack(">IHBB16s16s", 0x60000000, len(payload),
                      first_nxt if ext else nxt, hlim, s, d)
    return hdr + payload


def ext_header(kind: int, nxt: int, length8: int = 0) -> bytes:
    """A generic IPv6 extension header (hop-by-hop 0, routing 43, dest opts 60: PadN filled;
    fragment 44: offset 0, M=0)."""
    if kind == 44:
        return struct.pack(">BBHI", nxt, 0, 0, 0x12345678)
    size = 8 * (length8 + 1)
    body = bytes([nxt, length8]) + bytes([1, size - 4]) + bytes(size - 4)
    if kind == 43:
        body = bytes([nxt, length8, 0, 0]) + bytes(size - 4)  # type 0 routing, 0 segments left
    return body


def v4frame(src: str, dst: str, proto: int = 17, sport: int = 1234, dport: int = 80,
            size: int = 64, flags: int = TCP_ACK, vlans=(), smac: str = peer_mac(0x99),
            dmac: str = HOST_MAC, **ipkw) -> bytes:
    """An Ethernet/IPv4 frame of exactly `size` bytes (L4 payload filled to fit)."""
    hdr_len = 14 + 4 * len(vlans) + 20 + len(ipkw.get("opts", b"")) + \
        {6: 20, 17: 8, 1: 8}.get(proto, 0)
    fill = _fill(max(0, size - hdr_len), sport ^ dport)
    body = l4(proto, sport, dport, fill, flags)
    return ether(ipv4(src, dst, proto, body, **ipkw), 0x0800, dst=dmac, src=smac, vlans=vlans)


def v6frame(src: str, dst: str, proto: int = 17, sport: int = 1234, dport: int = 80,
            size: int = 80, flags: int = TCP_ACK, vlans=(), smac: str = peer_mac(0x99),
            dmac: str = HOST_MAC, ext: bytes = b"", first_nxt: int | None = None,
            hlim: int = 64) -> bytes:
    l4len = {6: 20, 17: 8, 58: 8}.get(proto, 0)
    hdr_len = 14 + 4 * len(vlans) + 40 + len(ext) + l4len
    fill = _fill(max(0, size - hdr_len), sport ^ dport)
    if proto == 58:
        body = dpkt.icmp6.ICMP6(type=128, code=0, data=struct.pack(">HH", sport, dport) + fill)
    else:
        body = l4(proto, sport, dport, fill, flags)
    return ether(ipv6(src, dst, proto, body, ext=ext, first_nxt=first_nxt, hlim=hlim), 0x86DD,
                 dst=dmac, src=smac, vlans=vlans)


def _fill(n: int, salt: int) -> bytes:
    """Deterministic, non-zero-looking payload."""
    return bytes((i * 7 + salt) & 0xff for i in range(n))


def arp(sender: str, target: str) -> bytes:
    body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac(peer_mac(0x42)),
                       ip_bytes(sender), bytes(6), ip_bytes(target))
    return ether(body, 0x0806, dst="ff:ff:ff:ff:ff:ff", src=peer_mac(0x42))


# --------------------------------------------------------------------------- traffic mixes


def rng_for(name: str) -> random.Random:
    return random.Random(zlib.crc32(name.encode()))


def rand_v4(r: random.Random, net: str = "198.51.100.0/24") -> str:
    n = ipaddress.ip_network(net)
    return str(n.network_address + r.randrange(1, n.num_addresses - 1))


def rand_v6(r: random.Random, net: str = "2001:db8:77::/64") -> str:
    n = ipaddress.ip_network(net)
    return str(n.network_address + r.randrange(1, 1 << 32))


def mixed_traffic(r: random.Random, count: int, v4dst: Callable[[], str] | None = None,
                  v6dst: Callable[[], str] | None = None, sizes=(60, 64, 128, 256, 512, 1024,
                                                                  1514)) -> list[bytes]:
    """General traffic: IPv4/IPv6 TCP/UDP/ICMP, VLAN-tagged frames, ARP, odd protocols."""
    v4dst = v4dst or (lambda: rand_v4(r, "203.0.113.0/24"))
    v6dst = v6dst or (lambda: rand_v6(r, "2001:db8:99::/64"))
    out = []
    for i in range(count):
        size = r.choice(sizes)
        kind = r.randrange(12)
        sport, dport = r.randrange(1024, 65535), r.choice([22, 53, 80, 443, 8080, 4789])
        vlans = ()
        if kind == 9:
            vlans = ((0x8100, r.randrange(1, 4095)),)
        elif kind == 10:
            vlans = ((0x88A8, r.randrange(1, 4095)), (0x8100, r.randrange(1, 4095)))
        if kind in (0, 1, 2, 9, 10):
            proto = r.choice([6, 17, 17, 1])
            out.append(v4frame(rand_v4(r), v4dst(), proto, sport, dport, size, vlans=vlans,
                               flags=TCP_ACK | TCP_PSH))
        elif kind in (3, 4, 5):
            proto = r.choice([6, 17, 58])
            out.append(v6frame(rand_v6(r), v6dst(), proto, sport, dport, max(size, 80)))
        elif kind == 6:
            out.append(arp(rand_v4(r), v4dst()))
        elif kind == 7:
            proto = r.choice([47, 50, 132, 89, 2])
            out.append(ether(ipv4(rand_v4(r), v4dst(), proto, _raw(_fill(size - 34, i))),
                             0x0800))
        elif kind == 8:
            out.append(v4frame(rand_v4(r), v4dst(), 17, sport, dport, max(size, 64),
                               opts=b"\x01\x01\x01\x00"))  # NOP NOP NOP EOL
        else:
            out.append(v4frame(rand_v4(r), v4dst(), 6, sport, dport, 64, flags=TCP_SYN))
    return out


def flow_traffic(r: random.Random, flows: int, packets: int, make: Callable[[int, random.Random],
                 Callable[[int], bytes]]) -> list[bytes]:
    """`packets` packets over `flows` flows, interleaved; make(i, r)(n) is flow i's n-th."""
    gens = [make(i, r) for i in range(flows)]
    sent = [0] * flows
    out = []
    for k in range(packets):
        i = k if k < flows else r.randrange(flows)
        out.append(gens[i](sent[i]))
        sent[i] += 1
    return out


def generic_flows(r: random.Random, packets: int = 300, v4dst: Callable[[], str] | None = None,
                  v6dst: Callable[[], str] | None = None) -> list[bytes]:
    def make(i, r):
        v6 = r.random() < 0.3
        proto = r.choice([6, 17])
        src = rand_v6(r) if v6 else rand_v4(r, "198.18.0.0/15")
        dst = (v6dst or (lambda: rand_v6(r, "2001:db8:99::/64")))() if v6 else \
            (v4dst or (lambda: rand_v4(r, "203.0.113.0/24")))()
        sport, dport = r.randrange(1024, 65535), r.choice([53, 80, 443, 5201])
        size = r.choice([64, 90, 128, 200, 400])

        def pkt(n):
            if v6:
                return v6frame(src, dst, proto, sport, dport, max(size, 80))
            return v4frame(src, dst, proto, sport, dport, size, ident=n + 1)
        return pkt
    return flow_traffic(r, max(2, packets // 4), packets, make)


# --------------------------------------------------------------------------- hostile frames

def boundaries(frame: bytes) -> list[int]:
    """Header boundaries of a well-formed frame: Ethernet, VLAN tags, IP (+options), L4."""
    offs = [12, 14]
    pos, etype = 12, struct.unpack(">H", frame[12:14])[0]
    while etype in (0x8100, 0x88A8) and len(frame) >= pos + 6:
        pos += 4
        offs.append(pos + 2)
        etype = struct.unpack(">H", frame[pos:pos + 2])[0]
    l3 = pos + 2
    if etype == 0x0800 and len(frame) >= l3 + 20:
        ihl = (frame[l3] & 0xf) * 4
        offs += [l3 + 1, l3 + 10, l3 + 20, l3 + ihl]
        proto = frame[l3 + 9]
        offs += [l3 + ihl + 2, l3 + ihl + 4]
        offs.append(l3 + ihl + {6: 20, 17: 8, 1: 8}.get(proto, 0))
    elif etype == 0x86DD and len(frame) >= l3 + 40:
        offs += [l3 + 1, l3 + 8, l3 + 24, l3 + 40]
        nxt, pos = frame[l3 + 6], l3 + 40
        while nxt in (0, 43, 60, 44) and len(frame) >= pos + 8:
            step = 8 if nxt == 44 else 8 * (frame[pos + 1] + 1)
            nxt, pos = frame[pos], pos + step
            offs.append(pos)
        offs += [pos + 2, pos + 4, pos + {6: 20, 17: 8, 58: 8}.get(nxt, 0)]
    return offs


def truncations(frame: bytes) -> list[bytes]:
    """The frame cut one byte before, at and one byte after every header boundary."""
    cuts = sorted({c + d for c in boundaries(frame) for d in (-1, 0, 1)})
    return [frame[:c] for c in cuts if 14 <= c < len(frame)]


def set_u8(frame: bytes, off: int, value: int) -> bytes:
    return frame[:off] + bytes([value & 0xff]) + frame[off + 1:]


def set_u16(frame: bytes, off: int, value: int) -> bytes:
    return frame[:off] + struct.pack(">H", value & 0xffff) + frame[off + 2:]


def hostile(r: random.Random, seeds: list[bytes]) -> list[bytes]:
    """Malformed and borderline frames built around `seeds` (well-formed frames that reach
    the program's deepest path: truncating them probes every bounds check)."""
    out = []
    for s in seeds:
        out += truncations(s)
    v4 = [s for s in seeds if s[12:14] == b"\x08\x00"]
    v6 = [s for s in seeds if s[12:14] == b"\x86\xdd"]
    for s in v4:
        for ihl in (0, 1, 4, 6, 15):
            out.append(set_u8(s, 14, 0x40 | ihl))
        out.append(set_u8(s, 14, 0x65))                     # version 6 in an IPv4 ethertype
        for tot in (0, 19, 20, len(s) - 14 + 1, 0xffff):
            out.append(set_u16(s, 16, tot))
        out.append(set_u16(s, 20, 0x2000))                  # MF: first fragment
        out.append(set_u16(s, 20, 0x00b9))                  # non-first fragment
        out.append(set_u8(s, 22, 1))                        # TTL 1
        out.append(set_u8(s, 22, 0))                        # TTL 0
        out.append(set_u8(s, 23, r.choice([0, 4, 41, 255])))  # other protocols
        out.append(s[:14 + 20] + b"\x00" * 3)               # ports cut short
    for s in v6:
        for plen in (0, 1, len(s) - 54 + 1, 0xffff):
            out.append(set_u16(s, 18, plen))
        out.append(set_u8(s, 14, 0x40))                     # version 4 in an IPv6 ethertype
        for nxt in (59, 0, 44, 255):                        # no-next, hop-by-hop, frag, bogus
            out.append(set_u8(s, 20, nxt))
        out.append(set_u8(s, 21, 1))                        # hop limit 1
    # IPv6 extension header chains in front of UDP
    src6, dst6 = "2001:db8:77::1", (v6[0] if v6 else None)
    dst6 = str(ipaddress.IPv6Address(dst6[38:54])) if dst6 else "2001:db8:99::1"
    dport6 = struct.unpack(">H", v6[0][56:58])[0] if v6 else 53
    chains = [((0,), 17), ((60,), 17), ((43,), 6), ((0, 60), 17), ((44,), 17),
              ((0, 43, 60), 6)]
    for kinds, proto in chains:
        ext, nxts = b"", list(kinds[1:]) + [proto]
        for k, n in zip(kinds, nxts):
            ext += ext_header(k, n, 1 if k == 60 else 0)
        f = v6frame(src6, dst6, proto, 5555, dport6, 120, ext=ext, first_nxt=kinds[0])
        out.append(f)
        out += [f[:c] for c in boundaries(f)[-5:] if 14 <= c < len(f)]
    # VLAN stacks: 1, 2 and 3 tags, 802.1ad outer tag, a tag with nothing behind it
    base = v4[0] if v4 else v4frame("198.51.100.7", "203.0.113.9", 17, 1000, 53, 80)
    for tags in ([0x8100], [0x88A8, 0x8100], [0x8100, 0x8100, 0x8100], [0x88A8]):
        vl = b"".join(struct.pack(">HH", t, 100 + i) for i, t in enumerate(tags))
        f = base[:12] + vl + base[12:]
        out.append(f)
        out += [f[:c] for c in (15, 16, 17, 18, 19, 20, 22) if c < len(f)]
    out.append(base[:12] + b"\x81\x00\x00\x64")             # tag ends the frame
    # odd EtherTypes, ARP, all-zero and all-ones frames, garbage
    for et in (0x0000, 0x05DC, 0x0806, 0x8847, 0x88CC, 0xFFFF):
        out.append(base[:12] + struct.pack(">H", et) + base[14:])
    out.append(bytes(60))
    out.append(b"\xff" * 60)
    out.append(bytes(14))
    out.append(b"\xff" * 14 + b"\x45")
    for n in (14, 15, 33, 34, 54, 61, 200, 1514):
        out.append(bytes(r.randrange(256) for _ in range(n)))
    for n in (14, 34, 54, 100):                             # garbage behind valid headers
        out.append(base[:n] + bytes(r.randrange(256) for _ in range(40)))
    # maximum size frames
    out.append(v4frame("198.51.100.7", "203.0.113.9", 17, 1000, 53, MAX_FRAME))
    out.append(v6frame("2001:db8:77::1", dst6, 6, 1000, 80, MAX_FRAME))
    out.append(base[:34] + _fill(MAX_FRAME - 34, 3))        # IPv4 total length says short
    return out


# --------------------------------------------------------------------------- per program

def calibration_flow(count: int, size: int = 64) -> list[bytes]:
    """One UDP flow of `size`-byte frames (the paper's throughput traffic)."""
    return [v4frame("192.0.2.10", "198.51.100.20", 17, 9, 9, size, ident=i + 1)
            for i in range(count)]


def std_seeds() -> list[bytes]:
    return [
        v4frame("198.51.100.7", "203.0.113.9", 6, 40000, 80, 64),
        v4frame("198.51.100.7", "203.0.113.9", 17, 40000, 53, 64, opts=b"\x01\x01\x01\x00"),
        v4frame("198.51.100.7", "203.0.113.9", 17, 40000, 53, 64,
                vlans=((0x88A8, 10), (0x8100, 20))),
        v6frame("2001:db8:77::1", "2001:db8:99::1", 17, 40000, 53, 90),
    ]


def gen_xdp1(r):
    normal = mixed_traffic(r, 120)
    return {"normal": normal, "flows": generic_flows(r, 300), "hostile": hostile(r, std_seeds()),
            "jumbo": jumbo(r)}


def gen_xdp2(r):
    return {"normal": mixed_traffic(r, 120), "flows": generic_flows(r, 300),
            "hostile": hostile(r, std_seeds())}


def jumbo(r) -> list[bytes]:
    """Frames around the test-run's linear-area limit (4096 - 256 headroom - 320 tailroom)
    and up to 9000 bytes, between ordinary ones."""
    out = []
    for size in (1514, 1515, 2048, 3519, 3520, 3521, 4000, 4096, 8000, 9000):
        out.append(v4frame("198.51.100.7", "203.0.113.9", 17, 4000, 53, size))
        out.append(v4frame("198.51.100.8", "203.0.113.9", 6, 4001, 80, 100))
    out.append(v6frame("2001:db8:77::1", "2001:db8:99::1", 17, 4000, 53, 9000))
    out.append(v4frame("198.51.100.7", "203.0.113.9", 17, 4000, 53, 5000,
                       vlans=((0x8100, 5),)))
    return out


def gen_xdp_adjust_tail(r):
    normal = []
    for i in range(100):
        size = r.choice([64, 200, 599, 600, 601, 614, 615, 1000, 1400, 1514])
        proto = r.choice([6, 17, 1])
        kw = {"opts": b"\x01\x01\x01\x00"} if i % 10 == 3 else {}
        normal.append(v4frame(rand_v4(r), rand_v4(r, "203.0.113.0/24"), proto,
                              r.randrange(1024, 65535), 443, size, ident=i, **kw))
        if i % 12 == 5:
            normal.append(v6frame(rand_v6(r), "2001:db8:99::5", 17, 1000, 53, 1200))
        if i % 15 == 7:
            normal.append(v4frame(rand_v4(r), "203.0.113.5", 17, 1000, 53, 900,
                                  vlans=((0x8100, 3),)))

    def make(i, r):
        src, size = rand_v4(r, "198.18.0.0/15"), r.choice([100, 500, 700, 1200, 1514])
        return lambda n: v4frame(src, "203.0.113.80", 17, 2000 + i, 53, size, ident=n)
    seeds = std_seeds() + [v4frame("198.51.100.7", "203.0.113.9", 17, 40000, 53, 1000)]
    return {"normal": normal, "flows": flow_traffic(r, 60, 250, make),
            "hostile": hostile(r, seeds) + [set_u8(seeds[-1], 14, 0x46)],
            "jumbo": jumbo(r)}


ROUTER_DSTS = (["10.1.0.%d" % i for i in range(10, 30)] + ["10.1.0.99", "10.1.200.1"]
               + ["10.2.%d.%d" % (a, b) for a, b in ((0, 1), (1, 7), (130, 4), (200, 9))]
               + ["8.8.8.8", "1.1.1.1", "198.51.100.44", "172.20.1.1", "10.4.0.5",
                  "10.4.0.6", "192.168.7.7", "192.168.7.8"])


def gen_router_ipv4(r):
    normal = []
    for i in range(150):
        dst = r.choice(ROUTER_DSTS)
        k = i % 25
        if k == 3:
            normal.append(v4frame(rand_v4(r), dst, 17, 1000, 53, 80, ttl=1))
        elif k == 7:
            normal.append(v4frame(rand_v4(r), dst, 17, 1000, 53, 80, opts=b"\x01" * 4))
        elif k == 11:
            normal.append(v6frame(rand_v6(r), "2001:db8:1::10", 17, 1000, 53, 90))
        elif k == 13:
            normal.append(v4frame(rand_v4(r), dst, 6, 1000, 80, 80, vlans=((0x8100, 7),)))
        elif k == 17:
            normal.append(arp("10.1.0.10", "10.1.0.1"))
        else:
            normal.append(v4frame(rand_v4(r), dst, r.choice([6, 17, 1]), r.randrange(1024, 60000),
                                  80, r.choice([64, 128, 512, 1514]), ttl=r.choice([2, 64, 255]),
                                  tos=r.choice([0, 0x10, 0xb8])))
    flows = generic_flows(r, 300, v4dst=lambda: r.choice(ROUTER_DSTS) if r.random() < 0.8
                          else rand_v4(r, "100.64.0.0/10"))
    seeds = [v4frame("198.51.100.7", "10.1.0.10", 6, 40000, 80, 64),
             v4frame("198.51.100.7", "10.2.0.1", 17, 40000, 53, 64)]
    return {"normal": normal, "flows": flows, "hostile": hostile(r, seeds + std_seeds())}


FIB_DSTS4 = ["10.1.0.%d" % i for i in range(10, 22)] + ["10.2.0.1", "10.2.9.9", "8.8.8.8",
                                                        "172.16.0.1", "10.1.0.1"]
FIB_DSTS6 = ["2001:db8:1::10", "2001:db8:1::11", "2001:db8:2::5", "2001:db8:3::fe",
             "2001:db8:4::1"]


def gen_router_fib(r):
    normal = []
    for i in range(150):
        k = i % 20
        if k in (1, 6, 12):
            normal.append(v6frame(rand_v6(r), r.choice(FIB_DSTS6), r.choice([6, 17]), 1000, 443,
                                  r.choice([80, 200, 1400, 1514]), hlim=r.choice([1, 2, 64])))
        elif k == 9:
            normal.append(v4frame(rand_v4(r), r.choice(FIB_DSTS4), 17, 1000, 53, 80, ttl=1))
        elif k == 15:
            normal.append(arp("10.1.0.10", "10.1.0.1"))
        else:
            normal.append(v4frame(rand_v4(r), r.choice(FIB_DSTS4), r.choice([6, 17, 1]),
                                  r.randrange(1024, 60000), 80,
                                  r.choice([64, 128, 512, 1400, 1401, 1420, 1514])))
    flows = generic_flows(r, 300, v4dst=lambda: r.choice(FIB_DSTS4),
                          v6dst=lambda: r.choice(FIB_DSTS6))
    seeds = [v4frame("198.51.100.7", "10.1.0.10", 6, 40000, 80, 64),
             v6frame("2001:db8:77::1", "2001:db8:1::10", 17, 40000, 53, 90)]
    return {"normal": normal, "flows": flows, "hostile": hostile(r, seeds + std_seeds())}


def gen_rxq_info(r):
    normal = mixed_traffic(r, 100)
    return {"normal": normal, "flows": generic_flows(r, 250),
            "hostile": hostile(r, std_seeds()),
            "multiq.pcapng": multiqueue(mixed_traffic(r, 96))}


def multiqueue(frames: list[bytes]) -> list[tuple[int, int, bytes]]:
    """Frames spread over 3 interfaces (ingress ifindex 1-3) and rx queues 0-3; interface 0 is
    ifindex 1, the loopback device in a fresh network namespace, which has a single queue."""
    out = []
    for i, f in enumerate(frames):
        iface = i % 3
        out.append((iface, 0 if iface == 0 else (i * 7 // 3) % 4, f))
    return out


def gen_tx_ip_tunnel(r):
    normal = []
    for i in range(150):
        k = i % 10
        vip, port, proto, *_ = r.choice(TUNNEL_VIPS)
        p = 6 if proto == "tcp" else 17
        size = r.choice([64, 100, 300, 800, 1400, 1460, 1480, 1514])
        if k == 4:      # right address, wrong port
            port = 8080
        elif k == 5:    # right address and port, other protocol
            p = 17 if p == 6 else 6
        elif k == 6:
            normal.append(v4frame(rand_v4(r), "10.0.0.10", 1, 1, 1, 64))
            continue
        elif k == 7:
            normal.append(v4frame(rand_v4(r), "10.0.0.10", 6, 3333, 80, 200, frag=0x2000))
            continue
        if ":" in vip:
            normal.append(v6frame(rand_v6(r), vip, p, r.randrange(1024, 65535), port,
                                  max(size, 80)))
        else:
            kw = {"opts": b"\x01\x01\x01\x00"} if k == 8 else {}
            normal.append(v4frame(rand_v4(r), vip, p, r.randrange(1024, 65535), port, size,
                                  **kw))

    def make(i, r):
        vip, port, proto, *_ = TUNNEL_VIPS[i % len(TUNNEL_VIPS)]
        p = 6 if proto == "tcp" else 17
        if ":" in vip:
            src = rand_v6(r)
            return lambda n: v6frame(src, vip, p, 10000 + i, port, 120)
        src = rand_v4(r, "198.18.0.0/15")
        return lambda n: v4frame(src, vip, p, 10000 + i, port, 90, ident=n)
    seeds = [v4frame("198.51.100.7", "10.0.0.10", 6, 40000, 80, 64),
             v4frame("198.51.100.7", "10.0.0.10", 17, 40000, 53, 64, opts=b"\x01\x01\x01\x00"),
             v6frame("2001:db8:77::1", "2001:db8::10", 6, 40000, 80, 90)]
    return {"normal": normal, "flows": flow_traffic(r, 100, 300, make),
            "hostile": hostile(r, seeds)}


def gen_redirect_map(r):
    return {"normal": mixed_traffic(r, 100), "flows": generic_flows(r, 250),
            "hostile": hostile(r, std_seeds())}


def firewall_pair(r: random.Random, i: int):
    """An inside host's flow i: functions n -> its n-th outgoing packet, n -> n-th reply."""
    inside = f"10.{i % 3}.{(i // 3) % 250}.{1 + i % 200}"
    outside = rand_v4(r, "203.0.113.0/24")
    proto = 6 if i % 3 == 0 else 17
    sport, dport = 20000 + i, r.choice([53, 80, 443, 123])
    size = r.choice([64, 128, 600])

    def out(n):
        return v4frame(inside, outside, proto, sport, dport, size,
                       flags=TCP_SYN if n == 0 else TCP_ACK, ident=n)

    def back(n):
        return v4frame(outside, inside, proto, dport, sport, size, ident=n,
                       smac=peer_mac(0xee), flags=TCP_SYN | TCP_ACK if n == 0 else TCP_ACK)
    return out, back


def gen_simple_firewall(r):
    normal = []
    pairs = [firewall_pair(r, i) for i in range(12)]
    for i, (out, back) in enumerate(pairs):
        normal += [out(0), back(0), out(1), back(1), back(2)]
    for i in range(20):             # unsolicited from outside: known host, unknown flow
        if i % 2:
            normal.append(v4frame(rand_v4(r, "203.0.113.0/24"), "10.0.0.5", 6, 4444, 22, 64,
                                  flags=TCP_SYN))
        else:
            inside = f"10.0.{i}.{1 + i}"
            normal.append(v4frame("203.0.113.50", inside, 17, 53, 20000 + i, 64))
    normal += [v4frame("203.0.113.7", "10.0.0.1", 1, 1, 1, 64),   # outside ping: dropped
               v4frame("10.0.0.1", "203.0.113.7", 1, 1, 1, 64),   # inside ping: passes
               arp("10.0.0.1", "10.0.0.254"),
               v6frame("2001:db8:77::1", "2001:db8:99::1", 17, 1, 53, 90)]
    normal += [b(3) for _, b in pairs[:6]] + [o(3) for o, _ in pairs[6:]]

    flows = []
    fpairs = [firewall_pair(r, i) for i in range(120)]
    state = [0] * len(fpairs)
    for k in range(400):
        i = r.randrange(len(fpairs))
        o, b = fpairs[i]
        if state[i] == 0 or r.random() < 0.3:
            flows.append(o(state[i]))
        elif r.random() < 0.1:      # an attacker guessing the flow (wrong dport)
            flows.append(v4frame(rand_v4(r, "203.0.113.0/24"), "10.0.0.9", 17, 53, 20000 + i,
                                 64))
        else:
            flows.append(b(state[i]))
        state[i] += 1
    o, b = firewall_pair(r, 7)
    seeds = [o(0), b(0), v4frame("10.0.0.1", "203.0.113.7", 6, 1000, 80, 64,
                                 opts=b"\x01\x01\x01\x00")]
    return {"normal": normal, "flows": flows, "hostile": hostile(r, seeds + std_seeds()),
            "established": established_flow()}


def established_flow(count: int = 500) -> list[bytes]:
    """One UDP flow: the inside packet that opens it, then 64-byte packets from outside."""
    first = v4frame("10.0.0.1", "198.51.100.20", 17, 5000, 9000, 64, ident=1)
    return [first] + [v4frame("198.51.100.20", "10.0.0.1", 17, 9000, 5000, 64, ident=i + 2,
                              smac=peer_mac(0xee)) for i in range(count - 1)]


def gen_katran_lb(r):
    vips = KATRAN_VIPS

    def vip_packet(num, src=None, sport=None, size=None, proto=None):
        addr, port, pr, _, _ = vips[num]
        p = proto or (6 if pr == "tcp" else 17)
        port = port or r.choice([22, 80, 8443])
        sport = sport or r.randrange(1024, 65535)
        size = size or r.choice([64, 100, 300, 1000, 1400])
        if ":" in addr:
            return v6frame(src or rand_v6(r), addr, p, sport, port, max(size, 80))
        return v4frame(src or rand_v4(r, "198.18.0.0/15"), addr, p, sport, port, size)
    normal = []
    for i in range(160):
        k = i % 16
        if k == 10:
            normal.append(v4frame(rand_v4(r), "10.100.0.1", 6, 1234, 8080, 64))  # not a VIP port
        elif k == 11:
            normal.append(v4frame(rand_v4(r), "10.100.0.1", 1, 1, 1, 64))        # ICMP to VIP
        elif k == 12:
            normal.append(v4frame(rand_v4(r), "10.100.0.1", 6, 1234, 80, 200, frag=0x2000))
        elif k == 13:
            normal.append(vip_packet(0, size=1494))   # 1480 inner + 20: fits
        elif k == 14:
            normal.append(vip_packet(r.choice([0, 3]), size=1514))  # too big to encapsulate
        elif k == 15:
            normal.append(v6frame(rand_v6(r), "2001:db8:100::1", 6, 1000, 80, 90,
                                  ext=ext_header(44, 6), first_nxt=44))
        else:
            normal.append(vip_packet(r.randrange(len(vips))))

    def make(i, r):
        num = [0, 0, 1, 2, 2, 3, 3, 4][i % 8]
        addr = vips[num][0]
        src = rand_v6(r) if ":" in addr else rand_v4(r, "198.18.0.0/15")
        sport = r.randrange(1024, 65535)
        size = r.choice([64, 90, 200])
        return lambda n: vip_packet(num, src=src, sport=sport, size=size)
    seeds = [vip_packet(0, src="198.51.100.7", sport=40000, size=64),
             vip_packet(3, src="2001:db8:77::1", sport=40000, size=90),
             v4frame("198.51.100.7", "10.100.0.1", 17, 40000, 53, 64, opts=b"\x01\x01\x01\x00")]
    return {"normal": normal, "flows": flow_traffic(r, 160, 400, make),
            "hostile": hostile(r, seeds)}


def gen_xdp_tailcall(r):
    normal = mixed_traffic(r, 100)
    for i in range(20):
        vlans = [(), ((0x8100, 9),), ((0x88A8, 1), (0x8100, 2))][i % 3]
        normal.append(v4frame(rand_v4(r), "203.0.113.3", 17, 1000 + i, 53, 64, ttl=i % 3,
                              vlans=vlans))
        normal.append(v6frame(rand_v6(r), "2001:db8:99::3", 6, 1000 + i, 80, 90, hlim=i % 3,
                              vlans=vlans))
    return {"normal": normal, "flows": generic_flows(r, 200),
            "hostile": hostile(r, std_seeds())}


def gen_ubench(r):
    return {"normal": calibration_flow(100), "flows": generic_flows(r, 200),
            "hostile": hostile(r, std_seeds())}


PROGRAMS: dict[str, Callable[[random.Random], dict]] = {
    "xdp1": gen_xdp1,
    "xdp2": gen_xdp2,
    "xdp_tailcall": gen_xdp_tailcall,
    "xdp_adjust_tail": gen_xdp_adjust_tail,
    "router_ipv4": gen_router_ipv4,
    "router_fib": gen_router_fib,
    "rxq_info": gen_rxq_info,
    "tx_ip_tunnel": gen_tx_ip_tunnel,
    "redirect_map": gen_redirect_map,
    "simple_firewall": gen_simple_firewall,
    "katran_lb": gen_katran_lb,
    "ubench_drop": gen_ubench,
    "ubench_tx": gen_ubench,
    "ubench_redirect": gen_ubench,
}

# --------------------------------------------------------------------------- writers


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=SNAPLEN, linktype=dpkt.pcap.DLT_EN10MB)
        for i, frame in enumerate(frames):
            w.writepkt(frame, ts=EPOCH + i * 10e-6)


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def write_pcapng(path: Path, packets: list[tuple[int, int, bytes]], interfaces: int) -> None:
    """pcapng with `interfaces` Ethernet interfaces; packets are (interface, queue, frame) and
    carry their queue in the EPB option epb_queue (code 6)."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(0, b""))]
    for i in range(interfaces):
        opts = _option(2, f"port{i + 1}".encode()) + _option(9, b"\x06") + _option(0, b"")
        out.append(_block(1, struct.pack("<HHI", 1, 0, SNAPLEN) + opts))
    for k, (iface, queue, frame) in enumerate(packets):
        ts = EPOCH * 1_000_000 + k * 10
        body = struct.pack("<IIIII", iface, ts >> 32, ts & 0xffffffff, len(frame), len(frame))
        body += frame + bytes(-len(frame) % 4)
        body += _option(6, struct.pack("<I", queue)) + _option(0, b"")
        out.append(_block(6, body))
    path.write_bytes(b"".join(out))


def write_program(name: str, outdir: Path) -> list[Path]:
    sets = PROGRAMS[name](random.Random(zlib.crc32(name.encode())))
    written = []
    for kind, frames in sets.items():
        for f in frames if not kind.endswith(".pcapng") else (p[2] for p in frames):
            if len(f) < 14:
                raise ValueError(f"{name}-{kind}: frame shorter than Ethernet")
        if kind.endswith(".pcapng"):
            path = outdir / f"{name}-{kind}"
            write_pcapng(path, frames, interfaces=1 + max(p[0] for p in frames))
        else:
            path = outdir / f"{name}-{kind}.pcap"
            write_pcap(path, frames)
        written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", nargs="?", default=str(Path(__file__).resolve().parent / "pcaps"))
    ap.add_argument("--only", nargs="*", choices=sorted(PROGRAMS), default=None)
    args = ap.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name in args.only or PROGRAMS:
        for p in write_program(name, outdir):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
