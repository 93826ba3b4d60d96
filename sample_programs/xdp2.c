/* xdp2: count packets per IP protocol like xdp1, then send every complete Ethernet frame back
 * out of the port it came from with its MAC addresses swapped.  Frames shorter than an
 * Ethernet header (or a VLAN tag cut short) are dropped. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} rxcnt SEC(".maps");

SEC("xdp")
int xdp2_prog(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	__u32 key;
	__u64 *count;
	int proto;

	proto = parse_eth(&c, &eth);
	if (proto < 0)
		return XDP_DROP;
	key = ip_protocol(&c, proto);
	count = bpf_map_lookup_elem(&rxcnt, &key);
	if (count)
		*count += 1;
	swap_mac(eth);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
