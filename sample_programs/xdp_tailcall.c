/* xdp_tailcall: one object, three programs.  The dispatcher parses Ethernet and up to two VLAN
 * tags, hands the L3 offset to the next program in 4 bytes of metadata (bpf_xdp_adjust_meta)
 * and tail-calls the IPv4 or IPv6 handler through the prog_array `jmp_table` (slot 0: IPv4,
 * 1: IPv6).  A handler drops packets whose TTL / hop limit is <= 1 and sends the rest back
 * with the MACs swapped (XDP_TX).  Anything else, or an empty slot, passes.
 * `verdicts` counts, per stage, what happened (see enum stage).
 */
#include "common.h"

enum stage {
	ST_DISPATCHED_V4 = 0,
	ST_DISPATCHED_V6 = 1,
	ST_OTHER = 2,       /* not IP, or cut short: passed by the dispatcher */
	ST_NO_HANDLER = 3,  /* the tail call found no program */
	ST_NO_META = 4,     /* bpf_xdp_adjust_meta refused */
	ST_TX = 5,
	ST_EXPIRED = 6,
	ST_BAD = 7,         /* a handler found the metadata or the header unusable */
	ST_COUNT
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jmp_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

INLINE int count(__u32 stage, int action)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &stage);

	if (n)
		*n += 1;
	return action;
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	__u32 *meta, l3, slot;
	void *data;
	int proto;

	proto = parse_eth(&c, &eth);
	if (proto == bpf_htons(ETH_P_IP))
		slot = 0;
	else if (proto == bpf_htons(ETH_P_IPV6))
		slot = 1;
	else
		return count(ST_OTHER, XDP_PASS);
	l3 = c.pos - (void *)(long)ctx->data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return count(ST_NO_META, XDP_PASS);
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return count(ST_NO_META, XDP_PASS);
	*meta = l3;
	count(slot, 0);
	bpf_tail_call(ctx, &jmp_table, slot);
	return count(ST_NO_HANDLER, XDP_PASS);
}

/* The L3 header's offset from the metadata, checked against the packet; 0 when unusable. */
INLINE __u32 l3_offset(struct xdp_md *ctx)
{
	__u32 *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return 0;
	switch (*meta) {         /* Ethernet + up to two tags: constants the verifier can bound */
	case ETH_HLEN:
		return ETH_HLEN;
	case ETH_HLEN + 4:
		return ETH_HLEN + 4;
	case ETH_HLEN + 8:
		return ETH_HLEN + 8;
	default:
		return 0;
	}
}

SEC("xdp")
int xdp_ipv4(struct xdp_md *ctx)
{
	__u32 off = l3_offset(ctx);
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + off;

	if (!off || (void *)(iph + 1) > end || data + ETH_HLEN > end)
		return count(ST_BAD, XDP_DROP);
	if (iph->ttl <= 1)
		return count(ST_EXPIRED, XDP_DROP);
	swap_mac(data);
	return count(ST_TX, XDP_TX);
}

SEC("xdp")
int xdp_ipv6(struct xdp_md *ctx)
{
	__u32 off = l3_offset(ctx);
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6h = data + off;

	if (!off || (void *)(ip6h + 1) > end || data + ETH_HLEN > end)
		return count(ST_BAD, XDP_DROP);
	if (ip6h->hop_limit <= 1)
		return count(ST_EXPIRED, XDP_DROP);
	swap_mac(data);
	return count(ST_TX, XDP_TX);
}

char _license[] SEC("license") = "GPL";
