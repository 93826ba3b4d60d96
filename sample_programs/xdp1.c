/* xdp1: count packets per IP protocol, then drop them all.
 * Ethernet with up to two VLAN tags, IPv4 protocol or IPv6 next header; anything else and
 * headers cut short count under protocol 0. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} rxcnt SEC(".maps");

SEC("xdp")
int xdp1_prog(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	__u32 key = 0;
	__u64 *count;
	int proto;

	proto = parse_eth(&c, &eth);
	if (proto >= 0)
		key = ip_protocol(&c, proto);
	count = bpf_map_lookup_elem(&rxcnt, &key);
	if (count)
		*count += 1;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
