"""The Linux kernel as reference executor (emulator.kernel, emulator.kernel.netns): tiny XDP
programs built with clang at test time, run through BPF_PROG_TEST_RUN on crafted packets."""
import struct
import subprocess

import pytest

from conftest import build_bpf, needs_kernel
from isa.errors import InputError

PROGS_C = r"""
/* Tiny XDP programs for tests/test_kernel.py and tests/test_verify.py (built at test time). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 4); } counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 2); } percpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 16); } by_len SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __type(key, __u32); __type(value, __u32); __uint(max_entries, 2); } jumps SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __type(key, __u32); __type(value, __u32); __uint(max_entries, 4); } ports SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 8); } fib_rc SEC(".maps");

volatile const __u32 verdict = XDP_PASS;   /* .rodata: preloaded before load */
volatile const int delta = 0;
__u64 bytes_seen = 0;                       /* .bss */

SEC("xdp")
int xdp_verdict(struct xdp_md *ctx) { return verdict; }

SEC("xdp")
int xdp_drop(struct xdp_md *ctx) { return XDP_DROP; }

SEC("xdp")
int xdp_tx_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data, k = 0, one = 1;
	__u64 *c = bpf_map_lookup_elem(&counters, &k);
	if (c)
		*c += 1;
	k = len & 3;
	c = bpf_map_lookup_elem(&counters, &k);
	if (c)
		*c += len;
	k = 0;
	c = bpf_map_lookup_elem(&percpu, &k);
	if (c)
		*c += 1;
	__u32 *n = bpf_map_lookup_elem(&by_len, &len);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&by_len, &len, &one, BPF_NOEXIST);
	bytes_seen += len;
	return XDP_PASS;
}

SEC("xdp")
int xdp_adjust(struct xdp_md *ctx)
{
	/* delta < 0: grow head by -delta and write a marker; delta > 0: grow tail */
	if (delta < 0) {
		if (bpf_xdp_adjust_head(ctx, delta))
			return XDP_ABORTED;
		unsigned char *d = (void *)(long)ctx->data;
		if ((void *)(d + 1) > (void *)(long)ctx->data_end)
			return XDP_ABORTED;
		d[0] = 0xee;
		return XDP_TX;
	}
	if (bpf_xdp_adjust_tail(ctx, delta))
		return XDP_ABORTED;
	return XDP_PASS;
}

SEC("xdp")
int xdp_meta(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -8))
		return XDP_ABORTED;
	__u32 *m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 2) > (void *)(long)ctx->data)
		return XDP_ABORTED;
	m[0] = 0x11223344;
	m[1] = ctx->ingress_ifindex;
	return XDP_PASS;
}

SEC("xdp")
int xdp_tail_target(struct xdp_md *ctx) { return XDP_TX; }

SEC("xdp")
int xdp_jump(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jumps, 0);
	return XDP_DROP;            /* the slot is empty */
}

SEC("xdp")
int xdp_context(struct xdp_md *ctx) { return ctx->ingress_ifindex * 16 + ctx->rx_queue_index; }

SEC("xdp")
int xdp_devmap(struct xdp_md *ctx) { return bpf_redirect_map(&ports, 0, XDP_PASS); }

SEC("xdp")
int xdp_clock(struct xdp_md *ctx)
{
	__u32 k = 1;
	__u64 *c = bpf_map_lookup_elem(&counters, &k);
	if (c)
		*c = bpf_ktime_get_ns();
	return XDP_PASS;
}

SEC("xdp")
int xdp_fib(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bpf_fib_lookup p = {};
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	p.family = 2;
	p.tot_len = bpf_ntohs(ip->tot_len);
	p.ipv4_src = ip->saddr;
	p.ipv4_dst = ip->daddr;
	p.ifindex = ctx->ingress_ifindex;
	int rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	__u32 k = ip->daddr, v = rc;
	bpf_map_update_elem(&fib_rc, &k, &v, BPF_ANY);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, p.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p.smac, ETH_ALEN);
	return bpf_redirect(p.ifindex, 0);
}

struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 8); } recent SEC(".maps");

SEC("xdp")
int xdp_lru(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data, first = 60;
	bpf_map_update_elem(&recent, &len, &len, BPF_ANY);
	return bpf_map_lookup_elem(&recent, &first) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"""


def build_progs(tmp_dir) -> str:
    """Compile PROGS_C into tmp_dir/progs.o (skip when clang is missing)."""
    return build_bpf(tmp_dir, "progs", PROGS_C)


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    return build_progs(tmp_path_factory.mktemp("kprogs"))


def eth(dst=b"\x02" * 6, src=b"\x04" * 6, proto=0x0800, payload=b"") -> bytes:
    return dst + src + struct.pack(">H", proto) + payload


def ipv4(dst: bytes, total: int = 100) -> bytes:
    hdr = bytes([0x45, 0]) + struct.pack(">H", total - 14) + bytes(4) + bytes([64, 17, 0, 0]) + bytes([10, 9, 9, 9]) + dst
    return eth(payload=hdr + bytes(total - 34))


def rodata(verdict=2, delta=0) -> dict:
    return {".rodata": [{"key": "00000000", "value": struct.pack("<Ii", verdict, delta).hex()}]}


# -- without a kernel -------------------------------------------------------------------
def test_contract_map_names():
    from emulator.kernel import contract_map_name
    assert contract_map_name("progs.rodata") == ".rodata"
    assert contract_map_name("simple_f.bss") == ".bss"
    assert contract_map_name(".rodata.str1.1") == ".rodata.str1.1"
    assert contract_map_name("flows") == "flows"


def test_helpers_called(progs):
    from emulator.kernel import helpers_called
    h = helpers_called(progs)
    assert {1, 2, 5, 12, 44, 51, 65, 69, 23} <= h      # lookup, update, ktime, tail_call, adjust_*, fib...
    assert 7 not in h                                   # never calls get_prandom_u32


def test_helpers_called_bad_file(tmp_path):
    from emulator.kernel import helpers_called
    bad = tmp_path / "x.o"
    bad.write_bytes(b"\x7fELF garbage")
    with pytest.raises(InputError):
        helpers_called(str(bad))


# -- with the kernel --------------------------------------------------------------------
@needs_kernel
def test_actions_and_rodata_preload(progs):
    from emulator.kernel import KernelProgram
    pkt = eth(payload=bytes(50))
    for verdict in (0, 1, 2, 3, 4, 7):
        with KernelProgram(progs, "xdp_verdict", rodata(verdict)) as k:
            r = k.run(pkt)
            assert (r.action, r.data, r.meta, r.error) == (verdict, pkt, b"", None)
            # an all-zero array entry is not listed
            assert k.dump_maps()[".rodata"] == (rodata(verdict)[".rodata"] if verdict else [])
    with KernelProgram(progs, "xdp_drop") as k:
        assert k.run(pkt).action == 1


@needs_kernel
def test_default_program_and_section_choice(progs):
    from emulator.kernel import KernelProgram
    with KernelProgram(progs) as k:               # first program in an xdp* section
        assert k.program_name == "xdp_verdict" and k.section == "xdp"
    with pytest.raises(InputError, match="no program or section named 'nope'"):
        KernelProgram(progs, "nope")


@needs_kernel
def test_tx_swaps_macs(progs):
    from emulator.kernel import KernelProgram
    pkt = eth(b"\x0a" * 6, b"\x0b" * 6, payload=bytes(46))
    with KernelProgram(progs, "xdp_tx_swap") as k:
        r = k.run(pkt)
        assert r.action == 3
        assert r.data == b"\x0b" * 6 + b"\x0a" * 6 + pkt[12:]
        assert k.cpu == 0 or 0 not in __import__("os").sched_getaffinity(0)


@needs_kernel
def test_counters_preload_and_dump(progs):
    from emulator.kernel import KernelProgram
    preset = {"counters": [{"key": "00000000", "value": (100).to_bytes(8, "little").hex()}],
              "percpu": [{"key": "01000000", "values": ["0500000000000000", "0600000000000000"]}],
              "by_len": [{"key": (64).to_bytes(4, "little").hex(), "value": "0a000000"}]}
    with KernelProgram(progs, "xdp_count", preset) as k:
        for n in (64, 64, 61, 100):
            assert k.run(eth(payload=bytes(n - 14))).action == 2
        d = k.dump_maps()
    q = lambda v: v.to_bytes(8, "little").hex()
    assert d["counters"] == [{"key": "00000000", "value": q(100 + 4 + 64 + 64 + 100)},
                             {"key": "01000000", "value": q(61)}]
    assert d["percpu"] == [{"key": "00000000", "value": q(4)}, {"key": "01000000", "value": q(5)}]
    assert d["by_len"] == [{"key": "3d000000", "value": "01000000"}, {"key": "40000000", "value": "0c000000"},
                           {"key": "64000000", "value": "01000000"}]
    assert d[".bss"] == [{"key": "00000000", "value": q(64 + 64 + 61 + 100)}]
    assert list(d) == sorted(d)
    assert "jumps" in d and d["jumps"] == [] and d["ports"] == []


@needs_kernel
def test_adjust_head_tail_meta(progs):
    from emulator.kernel import KernelProgram
    pkt = eth(payload=bytes(range(50)))
    with KernelProgram(progs, "xdp_adjust", rodata(delta=-4)) as k:
        r = k.run(pkt)
        assert r.action == 3 and r.data == b"\xee\0\0\0" + pkt
    with KernelProgram(progs, "xdp_adjust", rodata(delta=-217)) as k:   # 256 - sizeof(xdp_frame) = 216
        assert k.run(pkt).action == 0
    with KernelProgram(progs, "xdp_adjust", rodata(delta=6)) as k:
        r = k.run(pkt)
        assert r.action == 2 and r.data == pkt + bytes(6)                # grown tail is zeroed
        big = bytes(3520 - 6)
        assert k.run(eth(payload=big[14:])).action == 2                   # 3520 linear bytes at most
        assert k.run(eth(payload=big[13:])).action == 0
    with KernelProgram(progs, "xdp_meta") as k:
        r = k.run(pkt)
        assert r.action == 2 and r.data == pkt
        assert r.meta == struct.pack("<II", 0x11223344, 1)


@needs_kernel
def test_refusals_and_long_frames(progs):
    from emulator.kernel import KernelProgram
    with KernelProgram(progs, "xdp_count") as k:
        r = k.run(bytes(13))
        assert r.action is None and "EINVAL" in r.error and not r.refused_for_context
        long = eth(payload=bytes(range(256)) * 20)          # 5134 bytes: linear part + a fragment
        r = k.run(long)
        assert r.action == 2 and r.data == long
        assert k.dump_maps()["by_len"] == [{"key": (3520).to_bytes(4, "little").hex(), "value": "01000000"}]


@needs_kernel
def test_tail_call_through_prog_array(progs):
    from emulator.kernel import KernelProgram
    pkt = eth(payload=bytes(50))
    with KernelProgram(progs, "xdp_jump") as k:
        assert k.run(pkt).action == 1
    with KernelProgram(progs, "xdp_jump", {"jumps": [{"key": "00000000", "value": "xdp_tail_target"}]}) as k:
        assert k.run(pkt).action == 3
        assert k.dump_maps()["jumps"] == [{"key": "00000000", "value": "xdp_tail_target"}]


@needs_kernel
def test_bad_presets_are_input_errors(progs):
    from emulator.kernel import KernelProgram
    cases = [({"nosuch": []}, "not in"),
             ({"counters": [{"key": "00", "value": "00" * 8}]}, "1 bytes where the map holds 4"),
             ({"counters": [{"key": "00000000", "value": "zz"}]}, "not hex"),
             ({"counters": [{"key": "09000000", "value": "00" * 8}]}, "refuses the entry"),
             ({"jumps": [{"key": "00000000", "value": "nope"}]}, "must name a program"),
             ({".rodata": [{"key": "01000000", "value": "00" * 8}]}, "only key 00000000")]
    for preset, msg in cases:
        with pytest.raises(InputError, match=msg):
            KernelProgram(progs, "xdp_count", preset, maps_source="m.json")


@needs_kernel
def test_run_many_reports_ns(progs):
    from emulator.kernel import KernelProgram
    with KernelProgram(progs, "xdp_tx_swap") as k:
        ns = k.run_many([eth(payload=bytes(50))] * 3, repeat=200)
    assert len(ns) == 3 and all(0 < x < 1e6 for x in ns)


@needs_kernel
def test_netns_context_devmap_and_fib(progs):
    from emulator.kernel import KernelProgram
    from emulator.kernel.netns import PrivateNetns, make_plan, netns_unavailable_reason
    if netns_unavailable_reason():
        pytest.skip(netns_unavailable_reason())
    fib = {"routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "gateway": "10.0.0.254"},
                      {"prefix": "192.168.0.0/16", "ifindex": 3}],
           "neighbours": [{"ip": "10.0.0.254", "mac": "02:00:00:00:00:fe", "ifindex": 2}],
           "interfaces": [{"ifindex": 2, "mac": "02:00:00:00:00:02", "mtu": 1500},
                          {"ifindex": 3, "mac": "02:00:00:00:00:03", "mtu": 1400}]}
    ns = PrivateNetns(make_plan([(2, 3), (5, 0)], fib, devices=[3]))
    try:
        assert ns.problems == []
        ns.enter()
        with KernelProgram(progs, "xdp_context") as k:
            assert k.run(eth(payload=bytes(50)), 2, 3).action == 2 * 16 + 3
            assert k.run(eth(payload=bytes(50)), 5, 0).action == 5 * 16
            r = k.run(eth(payload=bytes(50)), 2, 4)          # only 4 queues on ifindex 2
            assert r.action is None and r.refused_for_context
            r = k.run(eth(payload=bytes(50)), 9, 0)          # no such device
            assert r.action is None and r.refused_for_context
        with KernelProgram(progs, "xdp_devmap", {"ports": [{"key": "00000000", "value": "03000000"}]}) as k:
            assert k.run(eth(payload=bytes(50))).action == 4
        with KernelProgram(progs, "xdp_fib") as k:
            r = k.run(ipv4(bytes([10, 1, 2, 3])), 2, 0)
            assert r.action == 4
            assert r.data[:6] == bytes.fromhex("0200000000fe") and r.data[6:12] == bytes.fromhex("020000000002")
            assert k.run(ipv4(bytes([10, 1, 2, 3]), 1600), 2, 0).action == 2      # FRAG_NEEDED (mtu 1500)
            assert k.run(ipv4(bytes([192, 168, 0, 9])), 2, 0).action == 2        # no neighbour
            assert k.run(ipv4(bytes([11, 0, 0, 1])), 2, 0).action == 2           # no route
            rc = {e["key"]: int.from_bytes(bytes.fromhex(e["value"]), "little") for e in k.dump_maps()["fib_rc"]}
        assert rc == {"0a010203": 8, "c0a80009": 7, "0b000001": 4}
    finally:
        ns.close()
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns.name not in out


LEGACY_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct bpf_map_def SEC("maps") cnt = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 2 };
static __attribute__((noinline)) int verdict(struct xdp_md *ctx) { return ctx->data_end - ctx->data > 100 ? XDP_DROP : XDP_PASS; }
SEC("xdp_legacy")
int legacy(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&cnt, &k);
	if (v)
		*v += 1;
	return verdict(ctx);
}
char LICENSE[] SEC("license") = "GPL";
"""

REJECTED_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp")
int unchecked(struct xdp_md *ctx) { return *(unsigned char *)(long)ctx->data; }
char LICENSE[] SEC("license") = "GPL";
"""


build_c = build_bpf


@needs_kernel
def test_legacy_maps_object_through_the_raw_path(tmp_path):
    """libbpf 1.x refuses SEC("maps"); the loader's linked program goes to the kernel as is."""
    from emulator.kernel import KernelProgram, object_map_types
    obj = build_c(tmp_path, "legacy", LEGACY_C)
    assert object_map_types(obj) == {"cnt": 2}
    with KernelProgram(obj, maps={"cnt": [{"key": "01000000", "value": "0500000000000000"}]}) as k:
        assert (k.program_name, k.section) == ("legacy", "xdp_legacy")
        assert k.run(eth(payload=bytes(50))).action == 2
        assert k.run(eth(payload=bytes(150))).action == 1
        assert k.dump_maps() == {"cnt": [{"key": "00000000", "value": "0200000000000000"},
                                         {"key": "01000000", "value": "0500000000000000"}]}


@needs_kernel
def test_verifier_rejection_is_an_input_error_with_the_log(tmp_path):
    from emulator.kernel import KernelProgram
    obj = build_c(tmp_path, "rejected", REJECTED_C)
    with pytest.raises(InputError, match=r"the kernel refused to load it \(Permission denied\).*invalid access to packet"):
        KernelProgram(obj)


@needs_kernel
def test_redirect_map_miss_returns_the_flags_action(progs):
    from emulator.kernel import KernelProgram
    with KernelProgram(progs, "xdp_devmap") as k:          # empty devmap, flags = XDP_PASS
        r = k.run(eth(payload=bytes(50)))
        assert r.action == 2
