#!/usr/bin/env python3
"""Map presets (NAME.maps.json) and FIB files (NAME.fib.json) of the sample programs.

Usage: python3 gen_maps.py [OUTDIR]   (default: this directory; run by `make maps`)

The presets are the control plane of the samples: routes, neighbours, VIPs, tunnels, the
load balancer's consistent-hash rings.  They are generated rather than written by hand so
that struct layouts live in one place (the pack_* functions mirror the C structs) and the
Maglev ring is reproducible.  Format: the contract's MAPS.json (raw little-endian bytes,
lowercase hex, entries sorted by key).
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import struct
import sys
from pathlib import Path

_WRITE_BYTECODE, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ here
sys.path.insert(0, str(Path(__file__).resolve().parent))
from addrs import (GW_MAC, KATRAN_REALS, KATRAN_SRC_V4, KATRAN_SRC_V6, KATRAN_VIPS, PORT_MACS,
                   ROUTER_NEIGHBOURS, ROUTER_ROUTES, ROUTER_TX_PORTS, RXQ_CONFIG,
                   TUNNEL_VIPS, FIB, REDIRECT_IFINDEX, mac)
sys.dont_write_bytecode = _WRITE_BYTECODE

KATRAN_MAX_VIPS = 16
KATRAN_RING_SIZE = 67  # katran_lb.c RING_SIZE


def ip4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def ip16(addr: str) -> bytes:
    """A 16-byte address field: IPv6 as is, IPv4 in the first 4 bytes."""
    a = ipaddress.ip_address(addr)
    return a.packed if a.version == 6 else a.packed + bytes(12)


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def entries(pairs) -> list[dict]:
    """Rows of (key bytes, value bytes or, for a prog_array, the program's name)."""
    rows = [{"key": k.hex(), "value": v if isinstance(v, str) else v.hex()} for k, v in pairs]
    keys = [r["key"] for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys in a preset")
    return sorted(rows, key=lambda r: r["key"])


PROTO = {"tcp": 6, "udp": 17}


def redirect_map() -> dict:
    return {"tx_port": entries([(u32(0), u32(REDIRECT_IFINDEX))])}


def rxq_info() -> dict:
    action, swap = RXQ_CONFIG
    return {"config_map": entries([(u32(0), struct.pack("<II", action, swap))])}


def router_ipv4() -> dict:
    routes = []
    for prefix, ifindex, gateway in ROUTER_ROUTES:
        net = ipaddress.IPv4Network(prefix)
        key = u32(net.prefixlen) + net.network_address.packed
        routes.append((key, u32(ifindex) + ip4(gateway or "0.0.0.0")))
    neigh = [(ip4(ip), mac(m) + bytes(2)) for ip, m in ROUTER_NEIGHBOURS]
    if_macs = [(u32(i), mac(m) + bytes(2)) for i, m in PORT_MACS.items()]
    tx = [(u32(i), u32(i)) for i in ROUTER_TX_PORTS]
    return {"routes": entries(routes), "neighbours": entries(neigh),
            "if_macs": entries(if_macs), "tx_ports": entries(tx)}


def tx_ip_tunnel() -> dict:
    rows = []
    for vip, port, proto, src, dst, dmac in TUNNEL_VIPS:
        family = ipaddress.ip_address(vip).version
        key = ip16(vip) + struct.pack(">H", port) + bytes([family, PROTO[proto]])
        outer = ipaddress.ip_address(src).version
        value = ip16(src) + ip16(dst) + mac(dmac) + struct.pack("<H", outer)
        rows.append((key, value))
    return {"vip2tnl": entries(rows)}


def _perm(name: str, salt: str, mod: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "little") % mod


def maglev(reals: list[int], size: int = KATRAN_RING_SIZE) -> list[int]:
    """Maglev lookup table (Eisenbud et al., NSDI 2016) of real indexes, `size` prime."""
    if not reals:
        return [0] * size
    offset = {r: _perm(str(r), "offset", size) for r in reals}
    skip = {r: _perm(str(r), "skip", size - 1) + 1 for r in reals}
    nxt = {r: 0 for r in reals}
    table = [-1] * size
    filled = 0
    while True:
        for r in reals:
            while True:
                slot = (offset[r] + nxt[r] * skip[r]) % size
                nxt[r] += 1
                if table[slot] < 0:
                    break
            table[slot] = r
            filled += 1
            if filled == size:
                return table


def katran_lb() -> dict:
    vips, rings = [], []
    for num, (addr, port, proto, flags, reals) in enumerate(KATRAN_VIPS):
        family = ipaddress.ip_address(addr).version
        key = ip16(addr) + struct.pack(">H", port) + bytes([PROTO[proto], family])
        vips.append((key, struct.pack("<II", flags, num)))
        for i, real in enumerate(maglev(reals)):
            if real:
                rings.append((u32(num * KATRAN_RING_SIZE + i), u32(real)))
    assert len(KATRAN_VIPS) <= KATRAN_MAX_VIPS
    reals = [(u32(i), ip16(a) + u32(ipaddress.ip_address(a).version))
             for i, a in KATRAN_REALS.items()]
    ctl = mac(GW_MAC) + bytes(2) + ip4(KATRAN_SRC_V4) + ip16(KATRAN_SRC_V6)
    return {"vip_map": entries(vips), "ch_rings": entries(rings), "reals": entries(reals),
            "ctl_array": entries([(u32(0), ctl)])}


def xdp_tailcall() -> dict:
    return {"jmp_table": entries([(u32(0), "xdp_ipv4"), (u32(1), "xdp_ipv6")])}


PRESETS = {
    "xdp_tailcall": xdp_tailcall,
    "redirect_map": redirect_map,
    "rxq_info": rxq_info,
    "router_ipv4": router_ipv4,
    "tx_ip_tunnel": tx_ip_tunnel,
    "katran_lb": katran_lb,
}
FIBS = {"router_fib": FIB}


def dump(obj) -> str:
    """JSON with one map entry (or FIB row) per line, keys sorted."""
    lines = []
    for name in sorted(obj):
        rows = ",\n".join("  " + json.dumps(r, sort_keys=True) for r in obj[name])
        lines.append(f"  {json.dumps(name)}: [\n{rows}\n  ]")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_all(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in PRESETS.items():
        path = outdir / f"{name}.maps.json"
        path.write_text(dump(build()))
        written.append(path)
    for name, fib in FIBS.items():
        path = outdir / f"{name}.fib.json"
        path.write_text(dump(fib))
        written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for p in write_all(out):
        print(p)
