"""The sample network: addresses, routes, VIPs and tunnels shared by gen_maps.py (which puts
them in the map presets and FIB files) and gen_pcaps.py (which sends traffic at them)."""
from __future__ import annotations

# Ethernet: the port under test is 02:00:00:00:00:01; peers are 02:00:00:00:01:xx.
HOST_MAC = "02:00:00:00:00:01"
GW_MAC = "02:00:00:00:ee:01"
PORT_MACS = {2: "02:00:00:00:02:01", 3: "02:00:00:00:03:01", 4: "02:00:00:00:04:01"}


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def peer_mac(i: int) -> str:
    return f"02:00:00:00:01:{i & 0xff:02x}"


# redirect_map: devmap tx_port[0]
REDIRECT_IFINDEX = 2

# rxq_info: config_map[0] = (action, swap_mac): XDP_TX with the MACs swapped
RXQ_CONFIG = (3, 1)

# router_ipv4: (prefix, egress ifindex, gateway or None for directly connected)
ROUTER_ROUTES = [
    ("0.0.0.0/0", 2, "10.1.0.1"),
    ("10.1.0.0/16", 2, None),
    ("10.2.0.0/16", 3, "10.2.0.254"),
    ("10.2.128.0/17", 3, "10.2.0.253"),
    ("10.2.200.0/24", 2, "10.1.0.1"),
    ("10.4.0.0/16", 4, None),          # port 4 has no devmap entry: XDP_DROP
    ("172.16.0.0/12", 3, "10.2.0.99"),  # gateway without a neighbour: XDP_PASS
    ("192.168.7.7/32", 3, "10.2.0.254"),
]
ROUTER_NEIGHBOURS = (
    [("10.1.0.1", "02:00:00:00:01:01")]
    + [(f"10.1.0.{i}", peer_mac(i)) for i in range(10, 30)]
    + [("10.2.0.254", "02:00:00:00:01:fe"), ("10.2.0.253", "02:00:00:00:01:fd"),
       ("10.4.0.5", "02:00:00:00:01:45")]
)
ROUTER_TX_PORTS = [2, 3]

# router_fib: the FIB file of the contract
FIB = {
    "routes": [
        {"prefix": "10.1.0.0/16", "ifindex": 2},
        {"prefix": "10.2.0.0/16", "ifindex": 3, "gateway": "10.2.0.254"},
        {"prefix": "0.0.0.0/0", "ifindex": 2, "gateway": "10.1.0.1"},
        {"prefix": "172.16.0.0/12", "ifindex": 3, "gateway": "10.2.0.99"},
        {"prefix": "2001:db8:1::/64", "ifindex": 2},
        {"prefix": "2001:db8:2::/64", "ifindex": 3, "gateway": "2001:db8:3::fe"},
        {"prefix": "2001:db8:3::/64", "ifindex": 3},
    ],
    "neighbours": (
        [{"ip": "10.1.0.1", "mac": "02:00:00:00:01:01", "ifindex": 2}]
        + [{"ip": f"10.1.0.{i}", "mac": peer_mac(i), "ifindex": 2} for i in range(10, 20)]
        + [{"ip": "10.2.0.254", "mac": "02:00:00:00:01:fe", "ifindex": 3},
           {"ip": "2001:db8:1::10", "mac": "02:00:00:00:01:10", "ifindex": 2},
           {"ip": "2001:db8:3::fe", "mac": "02:00:00:00:01:fe", "ifindex": 3}]
    ),
    "interfaces": [
        {"ifindex": 2, "mac": PORT_MACS[2], "mtu": 1500},
        {"ifindex": 3, "mac": PORT_MACS[3], "mtu": 1400},
    ],
}

# tx_ip_tunnel: (vip, port, proto, outer source, outer destination, next-hop MAC)
TUNNEL_VIPS = [
    ("10.0.0.10", 80, "tcp", "192.0.2.1", "192.0.2.100", "02:00:00:00:aa:01"),
    ("10.0.0.10", 53, "udp", "192.0.2.1", "192.0.2.101", "02:00:00:00:aa:02"),
    ("10.0.0.11", 443, "tcp", "192.0.2.1", "192.0.2.102", "02:00:00:00:aa:03"),
    ("2001:db8::10", 80, "tcp", "2001:db8:ff::1", "2001:db8:ff::100", "02:00:00:00:aa:11"),
    ("2001:db8::10", 443, "udp", "2001:db8:ff::1", "2001:db8:ff::101", "02:00:00:00:aa:12"),
]

# katran_lb: VIPs (address, port (0 = any), proto, flags, real indexes) in vip_num order
KATRAN_REALS = {i: f"10.200.0.{i}" for i in range(1, 9)}
KATRAN_REALS.update({i: f"2001:db8:200::{i - 8}" for i in range(9, 13)})
KATRAN_REALS[13] = "2001:db8:200::99"  # an IPv6 real behind an IPv4 VIP: no usable real
KATRAN_VIPS = [
    ("10.100.0.1", 80, "tcp", 0, [1, 2, 3, 4]),
    ("10.100.0.1", 53, "udp", 1, [3, 4, 5, 6]),  # F_HASH_NO_SRC_PORT
    ("10.100.0.2", 0, "tcp", 0, [5, 6, 7, 8, 1]),
    ("2001:db8:100::1", 80, "tcp", 0, [9, 10, 11, 12]),
    ("2001:db8:100::2", 443, "udp", 0, [9, 10]),
    ("10.100.0.3", 80, "tcp", 0, []),            # no reals: every packet dropped
    ("10.100.0.4", 80, "tcp", 0, [13]),          # family mismatch: dropped
]
KATRAN_SRC_V4 = "172.16.0.0"
KATRAN_SRC_V6 = "2001:db8:ffff::"

# simple_firewall: the inside network (simple_firewall.c INSIDE_NET/INSIDE_PREFIX)
FIREWALL_INSIDE = "10.0.0.0/8"
