"""bpf_fib_lookup branch by branch against net/core/filter.c (bpf_ipv6_fib_lookup,
bpf_ipv4_fib_lookup), in the runtime and, where bpf() works, against the kernel itself in
verify's private netns.

IPv6 refuses before anything else (even an unknown ifindex) a destination or source that
rt6_need_strict() flags: multicast ff00::/8, link-local fe80::/10, loopback ::1 -> NOT_FWDED.
"""
import ipaddress
import json
import struct

import pytest

from conftest import build_bpf, needs_kernel
from emulator.runtime import fib as F
from test_kernel import eth
from test_verify import verify, write_pcap

FIB = {"interfaces": [{"ifindex": 2, "mac": "02:00:00:00:00:02", "mtu": 1500, "ip": "10.1.0.1"},
                      {"ifindex": 3, "mac": "02:00:00:00:00:03", "mtu": 1400},
                      {"ifindex": 4, "mac": "02:00:00:00:00:04", "forwarding": False}],
       "routes": [{"prefix": "2001:db8:1::/64", "ifindex": 2, "gateway": "2001:db8:1::fe"},
                  {"prefix": "2001:db8:3::/64", "ifindex": 3},
                  {"prefix": "10.1.0.0/16", "ifindex": 2, "gateway": "10.1.0.254"},
                  {"prefix": "10.3.0.0/16", "ifindex": 3},
                  {"prefix": "2001:db8:5::/64", "ifindex": 3, "table": 100},
                  {"prefix": "10.5.0.0/16", "ifindex": 3, "table": 100}],
       "neighbours": [{"ip": "2001:db8:1::fe", "mac": "02:00:00:00:01:fe", "ifindex": 2},
                      {"ip": "10.1.0.254", "mac": "02:00:00:00:01:fe", "ifindex": 2}]}
ROUTED6, NOROUTE6, NONEIGH6 = "2001:db8:1::5", "2001:db8:7::1", "2001:db8:3::9"
ROUTED4, NONEIGH4 = "10.1.2.3", "10.3.0.9"
SRC6, SRC4 = "2001:db8:9::1", "10.9.9.9"

# (dst, src, ifindex, flags, tot_len, rc, out ifindex on success)
CASES = [
    (ROUTED6, SRC6, 2, 0, 100, F.RET_SUCCESS, 2),
    ("fe80::1", SRC6, 2, 0, 100, F.RET_NOT_FWDED, None),
    (ROUTED6, "fe80::1", 2, 0, 100, F.RET_NOT_FWDED, None),         # the source too
    ("ff02::1", SRC6, 2, 0, 100, F.RET_NOT_FWDED, None),
    ("ff0e::1", SRC6, 2, 0, 100, F.RET_NOT_FWDED, None),            # any multicast scope
    ("::1", SRC6, 2, 0, 100, F.RET_NOT_FWDED, None),
    ("fe80::1", SRC6, 99, 0, 100, F.RET_NOT_FWDED, None),           # before the device
    (ROUTED6, SRC6, 99, 0, 100, -F.ENODEV, None),
    (ROUTED6, SRC6, 4, 0, 100, F.RET_FWD_DISABLED, None),
    (NOROUTE6, SRC6, 2, 0, 100, F.RET_NOT_FWDED, None),
    (NONEIGH6, SRC6, 2, 0, 100, F.RET_NO_NEIGH, None),
    (NONEIGH6, SRC6, 2, F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),
    (ROUTED6, SRC6, 2, 0, 1501, F.RET_FRAG_NEEDED, None),
    (ROUTED6, SRC6, 2, 0, 1500, F.RET_SUCCESS, 2),
    (ROUTED6, SRC6, 2, F.F_DIRECT, 100, F.RET_SUCCESS, 2),
    (ROUTED4, SRC4, 2, 0, 100, F.RET_SUCCESS, 2),
    (ROUTED4, SRC4, 4, 0, 100, F.RET_FWD_DISABLED, None),
    (ROUTED4, SRC4, 99, 0, 100, -F.ENODEV, None),
    (NONEIGH4, SRC4, 2, 0, 100, F.RET_NO_NEIGH, None),
    (NONEIGH4, SRC4, 2, F.F_SKIP_NEIGH, 1401, F.RET_FRAG_NEEDED, None),
    (ROUTED4, SRC4, 2, F.F_DIRECT, 100, F.RET_SUCCESS, 2),
    (NONEIGH6, SRC6, 3, F.F_OUTPUT | F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),
    (ROUTED6, SRC6, 3, F.F_OUTPUT, 100, F.RET_SUCCESS, 2),          # IPv6: oif only preferred
    (NONEIGH4, SRC4, 3, F.F_OUTPUT | F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),
    (ROUTED4, SRC4, 3, F.F_OUTPUT, 100, F.RET_NOT_FWDED, None),     # IPv4: only routes via oif
    ("2001:db8:5::1", SRC6, 2, F.F_DIRECT | F.F_TBID | F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),
    ("10.5.0.1", SRC4, 2, F.F_DIRECT | F.F_TBID | F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),
    ("2001:db8:5::1", SRC6, 2, F.F_DIRECT | F.F_SKIP_NEIGH, 100, F.RET_NOT_FWDED, None),
    ("10.5.0.1", SRC4, 2, F.F_DIRECT | F.F_SKIP_NEIGH, 100, F.RET_NOT_FWDED, None),
    (ROUTED4, SRC4, 2, F.F_SRC, 100, F.RET_SUCCESS, 2),             # src = 10.1.0.1 of ifindex 2
    (NONEIGH4, SRC4, 2, F.F_SRC | F.F_SKIP_NEIGH, 100, F.RET_SUCCESS, 3),   # 10.1.0.1: no address on 3
]


def params(dst: str, src: str, ifindex: int, tot_len: int, tbid: int = 100) -> bytearray:
    d, s = ipaddress.ip_address(dst), ipaddress.ip_address(src)
    p = bytearray(F.PARAMS_SIZE)
    p[F.O_FAMILY] = F.AF_INET6 if d.version == 6 else F.AF_INET
    struct.pack_into("<H", p, F.O_TOT_LEN, tot_len)
    struct.pack_into("<I", p, F.O_IFINDEX, ifindex)
    p[F.O_SRC:F.O_SRC + len(s.packed)] = s.packed
    p[F.O_DST:F.O_DST + len(d.packed)] = d.packed
    struct.pack_into("<I", p, F.O_TBID, tbid)      # read with DIRECT|TBID only
    return p


@pytest.mark.parametrize("dst,src,ifindex,flags,tot_len,rc,oif", CASES)
def test_runtime_branch(dst, src, ifindex, flags, tot_len, rc, oif):
    fib = F.parse_fib(FIB, "fib.json")
    p = params(dst, src, ifindex, tot_len)
    assert fib.lookup(p, F.PARAMS_SIZE, flags) == rc
    mtu = struct.unpack_from("<H", p, F.O_TOT_LEN)[0]
    if rc == F.RET_SUCCESS:
        assert struct.unpack_from("<I", p, F.O_IFINDEX)[0] == oif
        # rt_metric: an IPv6 route without a metric has the kernel's 1024 (IP6_RT_PRIO_USER)
        assert struct.unpack_from("<I", p, F.O_METRIC)[0] == (1024 if ":" in dst else 0)
        assert mtu == {2: 1500, 3: 1400}[oif]              # mtu_result, union with tot_len
        if flags & F.F_SRC:
            assert bytes(p[F.O_SRC:F.O_SRC + 4]) == bytes([10, 1, 0, 1])
    elif rc == F.RET_FRAG_NEEDED:
        assert mtu == (1500 if ifindex == 2 and ":" in dst else 1400)
    elif rc == F.RET_NO_NEIGH:                              # ifindex, metric, gateway written
        assert struct.unpack_from("<I", p, F.O_IFINDEX)[0] == (2 if dst == ROUTED6 else 3)
    else:
        assert p == params(dst, src, ifindex, tot_len)     # nothing written on a refusal


# The kernel side: the program reads its lookup's arguments from the packet (IPv6 or IPv4
# header for the addresses, then index, flags, ifindex, tot_len) and keeps every field the
# helper writes in a map, so verify compares rc and params byte for byte.
FIB_PROG = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
struct res { __s32 rc; __u32 ifindex; __u32 metric; __u16 mtu; __u8 smac[6]; __u8 dmac[6]; __u8 pad[2]; __u32 src[4]; __u32 dst[4]; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, struct res); __uint(max_entries, 32); } out SEC(".maps");
SEC("xdp")
int fib_rules(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup p = {};
	__u8 *arg;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == __builtin_bswap16(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		arg = (void *)(ip6 + 1);
		if ((void *)(arg + 6) > end)
			return XDP_PASS;
		p.family = 10;
		__builtin_memcpy(p.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(p.ipv6_dst, &ip6->daddr, 16);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		arg = (void *)(ip + 1);
		if ((void *)(arg + 6) > end)
			return XDP_PASS;
		p.family = 2;
		p.ipv4_src = ip->saddr;
		p.ipv4_dst = ip->daddr;
	}
	p.ifindex = arg[2];
	p.tot_len = (arg[3] << 8) | arg[4];
	if (arg[1] & BPF_FIB_LOOKUP_TBID)
		p.tbid = arg[5];
	int rc = bpf_fib_lookup(ctx, &p, sizeof(p), arg[1]);
	struct res r = {};
	r.rc = rc;
	r.ifindex = p.ifindex;
	r.metric = p.rt_metric;
	r.mtu = p.mtu_result;
	__builtin_memcpy(r.smac, p.smac, 6);
	__builtin_memcpy(r.dmac, p.dmac, 6);
	__builtin_memcpy(r.src, p.ipv6_src, 16);
	__builtin_memcpy(r.dst, p.ipv6_dst, 16);
	__u32 k = arg[0] & 31;
	bpf_map_update_elem(&out, &k, &r, BPF_ANY);
	return rc == 0 ? XDP_TX : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""


def frame(i: int, dst: str, src: str, ifindex: int, flags: int, tot_len: int) -> bytes:
    d, s = ipaddress.ip_address(dst), ipaddress.ip_address(src)
    arg = bytes([i, flags, ifindex]) + struct.pack(">H", tot_len) + bytes([100]) + bytes(10)
    if d.version == 6:
        hdr = bytes([0x60, 0, 0, 0]) + struct.pack(">H", len(arg)) + bytes([17, 64]) + s.packed + d.packed
        return eth(proto=0x86DD, payload=hdr + arg)
    hdr = bytes([0x45, 0]) + struct.pack(">H", 20 + len(arg)) + bytes(4) + bytes([64, 17, 0, 0]) + s.packed + d.packed
    return eth(payload=hdr + arg)


@needs_kernel
def test_kernel_agrees_branch_by_branch(tmp_path):
    obj = build_bpf(tmp_path, "fib_rules", FIB_PROG)
    (tmp_path / "fib.json").write_text(json.dumps(FIB))
    frames = [frame(i, *c[:5]) for i, c in enumerate(CASES)]
    pcap = write_pcap(tmp_path / "p.pcap", frames)
    code, lines = verify(obj, "-s", "fib_rules", "--pcap", pcap, "--fib", tmp_path / "fib.json")
    assert code == 0, lines
    assert lines[-1].endswith(" 0 failed, 0 skipped"), lines
