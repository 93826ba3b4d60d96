"""Random frames of 1-6000 bytes: mostly Ethernet/IPv4/UDP-or-TCP-shaped, some raw bytes,
some shorter than an Ethernet header (the kernel's test-run refuses those; the targets
must refuse them too)."""
from __future__ import annotations

import random
import struct

from emulator.runtime.pcapio import PcapWriter

MAX_LEN = 6000


def _length(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.05:
        return rng.randint(1, 13)
    if r < 0.65:
        return rng.randint(14, 200)
    if r < 0.9:
        return rng.randint(200, 1514)
    return rng.randint(1514, MAX_LEN)


def _headers(rng: random.Random) -> bytes:
    proto = rng.choice([6, 17, 1, rng.randrange(256)])
    eth = rng.randbytes(12) + struct.pack("!H", rng.choice([0x0800, 0x86DD, 0x8100, 0x0806, rng.randrange(1 << 16)]))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, rng.randrange(1 << 16), rng.randrange(1 << 16), 0, 64, proto, 0,
                     rng.randbytes(4), rng.randbytes(4))
    return eth + ip + struct.pack("!HHHH", rng.randrange(1 << 16), rng.randrange(1 << 16), 8, 0)


def random_packet(rng: random.Random) -> bytes:
    n = _length(rng)
    head = _headers(rng) if rng.random() < 0.7 else b""
    return (head + rng.randbytes(max(0, n - len(head))))[:n]


def random_packets(rng: random.Random, count: int) -> list[bytes]:
    return [random_packet(rng) for _ in range(count)]


def write_pcap(path: str, packets: list[bytes]) -> None:
    w = PcapWriter(path)
    try:
        for k, p in enumerate(packets):
            w.write(p, k * 1000)
    finally:
        w.close()
