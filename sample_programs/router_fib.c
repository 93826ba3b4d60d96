/* router_fib: IPv4 and IPv6 forwarding through the kernel's FIB (bpf_fib_lookup).
 *
 * A successful lookup gives the egress ifindex and both MACs: the frame is rewritten, its TTL
 * / hop limit decremented, and redirected with bpf_redirect.  Blackhole, unreachable and
 * prohibited routes drop; every other outcome (no neighbour, not forwarded, frag needed, ...)
 * passes to the host stack, as do non-IP frames, VLAN-tagged frames and TTL <= 1.  IP headers
 * cut short or with a bad IHL are dropped.  `fib_results` counts lookups per return code.
 */
#include "common.h"

#define AF_INET 2
#define AF_INET6 10
#define FIB_RESULTS 16

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIB_RESULTS);
	__type(key, __u32);
	__type(value, __u64);
} fib_results SEC(".maps");

INLINE int finish(struct xdp_md *ctx, struct ethhdr *eth, struct bpf_fib_lookup *p, long rc)
{
	__u32 key = rc < 0 || rc >= FIB_RESULTS ? FIB_RESULTS - 1 : rc;
	__u64 *n = bpf_map_lookup_elem(&fib_results, &key);

	if (n)
		*n += 1;
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		copy_mac(eth->h_dest, p->dmac);
		copy_mac(eth->h_source, p->smac);
		return bpf_redirect(p->ifindex, 0);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

SEC("xdp")
int router_fib_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup p = {};
	struct ethhdr *eth = data;
	long rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth_type(eth) == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end || iph->ihl < 5)
			return XDP_DROP;
		if (iph->ttl <= 1)
			return XDP_PASS;
		p.family = AF_INET;
		p.tos = iph->tos;
		p.l4_protocol = iph->protocol;
		p.tot_len = bpf_ntohs(iph->tot_len);
		p.ipv4_src = iph->saddr;
		p.ipv4_dst = iph->daddr;
		p.ifindex = ctx->ingress_ifindex;
		rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			ipv4_dec_ttl(iph);
		return finish(ctx, eth, &p, rc);
	}
	if (eth_type(eth) == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end)
			return XDP_DROP;
		if (ip6h->hop_limit <= 1)
			return XDP_PASS;
		p.family = AF_INET6;
		p.flowinfo = *(__be32 *)ip6h & bpf_htonl(0x0FFFFFFF);
		p.l4_protocol = ip6h->nexthdr;
		p.tot_len = bpf_ntohs(ip6h->payload_len);
		__builtin_memcpy(p.ipv6_src, &ip6h->saddr, 16);
		__builtin_memcpy(p.ipv6_dst, &ip6h->daddr, 16);
		p.ifindex = ctx->ingress_ifindex;
		rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			ip6h->hop_limit--;
		return finish(ctx, eth, &p, rc);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
