"""bpf_fib_lookup against the routes, neighbours and interfaces of a ``--fib`` JSON file.

The order of checks and what each outcome writes into ``struct bpf_fib_lookup`` follow
net/core/filter.c (bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup, XDP flavour: MTU checked):
IPv6 only: link-local, multicast or loopback destination or source (NOT_FWDED, rt6_need_strict,
checked first) -> input device (-ENODEV, FWD_DISABLED) -> route (BLACKHOLE / UNREACHABLE / PROHIBIT /
NOT_FWDED) -> MTU (FRAG_NEEDED, mtu_result) -> ifindex, rt_metric, gateway into the
destination -> source address (flag SRC) -> neighbour (NO_NEIGH) -> smac/dmac, mtu_result.

File format (contract.md): {"routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "gateway":
"10.0.0.254"}], "neighbours": [{"ip": ..., "mac": ..., "ifindex": 2}], "interfaces":
[{"ifindex": 2, "mac": ..., "mtu": 1500}]}.  Optional: route "type" (unicast, blackhole,
unreachable, prohibit, local), "metric", "mtu", "table"; interface "ip"/"ip6" (its
addresses: lookups to them are local, and BPF_FIB_LOOKUP_SRC picks them), "forwarding".
Interface 1 (loopback) always exists, as in the kernel.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Optional

from isa.errors import (InputError, expect_bool, expect_int, expect_list, expect_object,
                          expect_str, quote, read_json)

AF_INET, AF_INET6 = 2, 10
ENODEV, EINVAL, EAFNOSUPPORT = 19, 22, 97
(RET_SUCCESS, RET_BLACKHOLE, RET_UNREACHABLE, RET_PROHIBIT, RET_NOT_FWDED, RET_FWD_DISABLED,
 RET_UNSUPP_LWT, RET_NO_NEIGH, RET_FRAG_NEEDED, RET_NO_SRC_ADDR) = range(10)
F_DIRECT, F_OUTPUT, F_SKIP_NEIGH, F_TBID, F_SRC, F_MARK = 1, 2, 4, 8, 16, 32
FLAGS_MASK = 0x3F
PARAMS_SIZE = 64          # sizeof(struct bpf_fib_lookup)
MAIN_TABLE = 254
IP6_RT_PRIO_USER = 1024   # the metric of an IPv6 route added without one
ROUTE_TYPES = {"unicast": RET_SUCCESS, "blackhole": RET_BLACKHOLE, "unreachable": RET_UNREACHABLE,
               "prohibit": RET_PROHIBIT, "local": RET_NOT_FWDED}

# struct bpf_fib_lookup offsets
O_FAMILY, O_TOT_LEN, O_IFINDEX, O_METRIC, O_SRC, O_DST, O_VLAN, O_TBID, O_SMAC, O_DMAC = 0, 6, 8, 12, 16, 32, 48, 48, 52, 58


def _mac(where: str, text) -> bytes:
    expect_str(where, text)
    try:
        raw = bytes(int(x, 16) for x in text.split(":") if len(x) <= 2)
    except ValueError:
        raw = b""
    if len(raw) != 6 or text.count(":") != 5:
        raise InputError(where, f"not a MAC address: {quote(text)}")
    return raw


def _ip(where: str, text):
    expect_str(where, text)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputError(where, f"not an IP address: {quote(text)}") from None


STRICT_NETS6 = (ipaddress.IPv6Network("ff00::/8"), ipaddress.IPv6Network("fe80::/10"))
LOOPBACK6 = ipaddress.IPv6Address("::1")
LOOPBACK_NET4 = ipaddress.IPv4Network("127.0.0.0/8")


def _need_strict(p: bytearray, off: int) -> bool:
    """include/net/ip6_route.h rt6_need_strict: ipv6_addr_type() has MULTICAST (ff00::/8),
    LINKLOCAL (fe80::/10) or LOOPBACK (::1); bpf_ipv6_fib_lookup never forwards those."""
    a = ipaddress.IPv6Address(bytes(p[off:off + 16]))
    return a == LOOPBACK6 or any(a in net for net in STRICT_NETS6)   # not is_loopback: mapped


@dataclass
class Route:
    net: ipaddress._BaseNetwork
    ifindex: int
    gateway: Optional[ipaddress._BaseAddress] = None
    kind: str = "unicast"
    metric: int = 0
    mtu: int = 0
    table: int = MAIN_TABLE


@dataclass
class Interface:
    ifindex: int
    mac: bytes = bytes(6)
    mtu: int = 1500
    addrs: list = field(default_factory=list)
    forwarding: bool = True


@dataclass
class Fib:
    routes: list[Route] = field(default_factory=list)
    neighbours: dict[tuple[int, object], bytes] = field(default_factory=dict)   # (ifindex, ip) -> mac
    interfaces: dict[int, Interface] = field(default_factory=dict)

    def __post_init__(self):
        self.interfaces.setdefault(1, Interface(1, bytes(6), 65536,
                                                [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]))

    # -- the helper ----------------------------------------------------------------------
    def lookup(self, p: bytearray, plen: int, flags: int) -> int:
        """bpf_fib_lookup on the 64-byte params `p` (modified in place); returns r0."""
        if plen < PARAMS_SIZE:
            return -EINVAL
        if flags & ~FLAGS_MASK:
            return -EINVAL
        fam = p[O_FAMILY]
        if fam == AF_INET:
            return self._lookup(p, flags, 4)
        if fam == AF_INET6:
            return self._lookup(p, flags, 6)
        return -EAFNOSUPPORT

    def _lookup(self, p: bytearray, flags: int, v: int) -> int:
        alen = 4 if v == 4 else 16
        if v == 6 and (_need_strict(p, O_DST) or _need_strict(p, O_SRC)):
            return RET_NOT_FWDED                       # before the device: even a bad ifindex
        ifindex = struct.unpack_from("<I", p, O_IFINDEX)[0]
        dev = self.interfaces.get(ifindex)
        if dev is None:
            return -ENODEV
        if not dev.forwarding:
            return RET_FWD_DISABLED
        dst = ipaddress.ip_address(bytes(p[O_DST:O_DST + alen]))
        table = struct.unpack_from("<I", p, O_TBID)[0] if (flags & F_DIRECT and flags & F_TBID) else MAIN_TABLE
        if any(dst in i.addrs for i in self.interfaces.values()):
            return RET_NOT_FWDED                       # a local address: RTN_LOCAL
        route = self._route(dst, v, table, ifindex if flags & F_OUTPUT else None)
        if route is None:
            return RET_NOT_FWDED
        if route.kind != "unicast":
            return ROUTE_TYPES[route.kind]
        out = self.interfaces.get(route.ifindex, Interface(route.ifindex))
        mtu = route.mtu or out.mtu
        tot_len = struct.unpack_from("<H", p, O_TOT_LEN)[0]
        if tot_len > mtu:
            struct.pack_into("<H", p, O_TOT_LEN, mtu & 0xFFFF)
            return RET_FRAG_NEEDED
        struct.pack_into("<I", p, O_METRIC, route.metric)
        struct.pack_into("<I", p, O_IFINDEX, route.ifindex)
        if route.gateway is not None:
            p[O_DST:O_DST + alen] = route.gateway.packed
            dst = route.gateway
        if flags & F_SRC:
            src = self._source(out, v)
            if src is None:
                return RET_NO_SRC_ADDR
            p[O_SRC:O_SRC + alen] = src.packed
        if not flags & F_SKIP_NEIGH:
            mac = self.neighbours.get((route.ifindex, dst))
            if mac is None:
                return RET_NO_NEIGH
            p[O_DMAC:O_DMAC + 6] = mac
            p[O_SMAC:O_SMAC + 6] = out.mac
        p[O_VLAN:O_VLAN + 4] = bytes(4)
        struct.pack_into("<H", p, O_TOT_LEN, mtu & 0xFFFF)
        return RET_SUCCESS

    def _source(self, out: Interface, v: int):
        """BPF_FIB_LOOKUP_SRC. IPv4 is inet_select_addr: a universe-scope address of the output
        device, else the first of any device (ifindex order; 127/8 is host scope). IPv6: an
        address of the output device (ipv6_dev_get_saddr's full rules are not modelled)."""
        def usable(a):
            return a.version == v and not (v == 4 and a in LOOPBACK_NET4)
        own = next((a for a in out.addrs if usable(a)), None)
        if own is not None or v == 6:
            return own
        return next((a for i in sorted(self.interfaces) for a in self.interfaces[i].addrs if usable(a)), None)

    def _route(self, dst, v: int, table: int, oif: Optional[int]) -> Optional[Route]:
        """Longest prefix, then lowest metric. With an output ifindex (flag OUTPUT) IPv4
        takes only routes via it (fib_table_lookup skips other nexthops); IPv6 only prefers
        them among the lowest-metric routes of the prefix (rt6_score_route without
        RT6_LOOKUP_F_IFACE), so a route via another device still forwards."""
        strict_oif = oif if v == 4 else None
        prefer = oif if v == 6 else None
        best, best_key = None, None
        for r in self.routes:
            if r.net.version != v or r.table != table or dst not in r.net:
                continue
            if strict_oif is not None and r.ifindex != strict_oif:
                continue
            key = (-r.net.prefixlen, r.metric, prefer is not None and r.ifindex != prefer)
            if best is None or key < best_key:
                best, best_key = r, key
        return best


TOP_FIELDS = ("routes", "neighbours", "interfaces")
INTERFACE_FIELDS = ("ifindex", "mac", "mtu", "ip", "ip6", "forwarding")
ROUTE_FIELDS = ("prefix", "ifindex", "gateway", "type", "metric", "mtu", "table")
NEIGHBOUR_FIELDS = ("ip", "mac", "ifindex")
IFINDEX_MAX = 0x7FFFFFFF      # the kernel's ifindex is an int


def _entries(obj: dict, name: str, where: str) -> list[tuple[str, dict]]:
    """(where, entry) for each object in the list obj[name]."""
    items = expect_list(f"{where}: {name}", obj.get(name, []))
    return [(f"{where}: {name}[{i}]", e) for i, e in enumerate(items)]


def _interface(w: str, e) -> Interface:
    expect_object(w, e, INTERFACE_FIELDS, required=("ifindex",))
    addrs = []
    for k in ("ip", "ip6"):
        if k in e:
            vals = e[k] if isinstance(e[k], list) else [e[k]]
            addrs += [_ip(f"{w}.{k}", a) for a in vals]
    return Interface(expect_int(f"{w}.ifindex", e["ifindex"], 1, IFINDEX_MAX),
                     _mac(f"{w}.mac", e.get("mac", "00:00:00:00:00:00")),
                     expect_int(f"{w}.mtu", e.get("mtu", 1500)), addrs,
                     expect_bool(f"{w}.forwarding", e.get("forwarding", True)))


def _route(w: str, e) -> Route:
    expect_object(w, e, ROUTE_FIELDS, required=("prefix",))
    try:
        net = ipaddress.ip_network(expect_str(f"{w}.prefix", e["prefix"]), strict=False)
    except ValueError:
        raise InputError(f"{w}.prefix", f"not a prefix: {quote(e['prefix'])}") from None
    kind = expect_str(f"{w}.type", e.get("type", "unicast"))
    if kind not in ROUTE_TYPES:
        raise InputError(f"{w}.type", f"route type {quote(kind)} is not one of {', '.join(ROUTE_TYPES)}")
    if kind == "unicast" and "ifindex" not in e:
        raise InputError(w, "a unicast route needs an integer ifindex")
    gw = _ip(f"{w}.gateway", e["gateway"]) if e.get("gateway") is not None else None
    if gw is not None and gw.version != net.version:
        raise InputError(w, "gateway and prefix are of different IP versions")
    metric = expect_int(f"{w}.metric", e.get("metric", 0))
    if net.version == 6 and metric == 0:
        metric = IP6_RT_PRIO_USER      # ip6_route_info_create: no priority -> 1024 (rt_metric)
    return Route(net, expect_int(f"{w}.ifindex", e.get("ifindex", 0), 0, IFINDEX_MAX), gw, kind,
                 metric, expect_int(f"{w}.mtu", e.get("mtu", 0)),
                 expect_int(f"{w}.table", e.get("table", MAIN_TABLE)))


def parse_fib(obj, where: str) -> Fib:
    """A Fib from the --fib JSON object; InputError naming the entry on anything malformed
    (wrong types, out-of-range numbers, and unknown fields: a typo is not ignored)."""
    if not isinstance(obj, dict):
        raise InputError(where, 'expected {"routes": [...], "neighbours": [...], "interfaces": [...]}')
    expect_object(where, obj, TOP_FIELDS)
    fib = Fib()
    for w, e in _entries(obj, "interfaces", where):
        itf = _interface(w, e)
        fib.interfaces[itf.ifindex] = itf
    fib.routes = [_route(w, e) for w, e in _entries(obj, "routes", where)]
    for w, e in _entries(obj, "neighbours", where):
        expect_object(w, e, NEIGHBOUR_FIELDS, required=NEIGHBOUR_FIELDS)
        ifindex = expect_int(f"{w}.ifindex", e["ifindex"], 1, IFINDEX_MAX)
        fib.neighbours[(ifindex, _ip(f"{w}.ip", e["ip"]))] = _mac(f"{w}.mac", e["mac"])
    return fib


def load_fib(path: str) -> Fib:
    return parse_fib(read_json(path, "the FIB"), path)
