/* tx_ip_tunnel: steer traffic for virtual IPs into IP-in-IP tunnels.
 *
 * The destination (address, port, protocol) of untagged IPv4 and IPv6 TCP/UDP packets is
 * looked up in `vip2tnl`; a hit names the tunnel's outer source, destination and next-hop MAC.
 * IPv4 is wrapped in an outer IPv4 header (protocol 4), IPv6 in an outer IPv6 header (next
 * header 41), made room for with bpf_xdp_adjust_head, and sent back out with XDP_TX.
 * `rxcnt` counts tunnelled packets per inner protocol.  IPv4 options are skipped to find the
 * ports.  Everything else passes unchanged: no VIP, other protocols, fragments, IPv6 extension
 * headers (not parsed), VLAN-tagged frames, a length field larger than the frame or smaller
 * than the header, L4 headers cut short.  IP headers cut short drop.
 */
#include "common.h"

struct vip_key {
	__be32 daddr[4]; /* IPv4: daddr[0] */
	__be16 dport;
	__u8 family;     /* 4 or 6 */
	__u8 protocol;
};

struct tunnel {
	__be32 saddr[4];
	__be32 daddr[4];
	unsigned char dmac[ETH_ALEN];
	__u16 family;    /* 4 or 6: the outer header */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct vip_key);
	__type(value, struct tunnel);
} vip2tnl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} rxcnt SEC(".maps");

INLINE void count(__u8 protocol)
{
	__u32 key = protocol;
	__u64 *n = bpf_map_lookup_elem(&rxcnt, &key);

	if (n)
		*n += 1;
}

INLINE int handle_ipv4(struct xdp_md *ctx, struct iphdr *iph, void *end)
{
	struct vip_key key = {};
	struct tunnel *tnl;
	__be16 sport;
	__u16 len;

	if ((void *)(iph + 1) > end || iph->ihl < 5)
		return XDP_DROP;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (iph->frag_off & bpf_htons(0x3fff)) /* MF or an offset: a fragment */
		return XDP_PASS;
	len = bpf_ntohs(iph->tot_len);
	if (len < iph->ihl * 4 || (void *)iph + len > end)
		return XDP_PASS;
	if (l4_ports((void *)iph + iph->ihl * 4, end, &sport, &key.dport))
		return XDP_PASS;
	key.daddr[0] = iph->daddr;
	key.family = 4;
	key.protocol = iph->protocol;
	tnl = bpf_map_lookup_elem(&vip2tnl, &key);
	if (!tnl || tnl->family != 4)
		return XDP_PASS;
	count(key.protocol);
	if (encap_ipv4(ctx, tnl->saddr[0], tnl->daddr[0], tnl->dmac, len, iph->tos))
		return XDP_DROP;
	return XDP_TX;
}

INLINE int handle_ipv6(struct xdp_md *ctx, struct ipv6hdr *ip6h, void *end)
{
	struct vip_key key = {};
	struct tunnel *tnl;
	__be16 sport;
	__u16 len;

	if ((void *)(ip6h + 1) > end)
		return XDP_DROP;
	if (ip6h->nexthdr != IPPROTO_TCP && ip6h->nexthdr != IPPROTO_UDP)
		return XDP_PASS;
	len = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + len > end)
		return XDP_PASS;
	if (l4_ports(ip6h + 1, end, &sport, &key.dport))
		return XDP_PASS;
	__builtin_memcpy(key.daddr, &ip6h->daddr, 16);
	key.family = 6;
	key.protocol = ip6h->nexthdr;
	tnl = bpf_map_lookup_elem(&vip2tnl, &key);
	if (!tnl || tnl->family != 6)
		return XDP_PASS;
	count(key.protocol);
	if (encap_ipv6(ctx, tnl->saddr, tnl->daddr, tnl->dmac, len + sizeof(*ip6h)))
		return XDP_DROP;
	return XDP_TX;
}

SEC("xdp")
int tx_ip_tunnel_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth_type(eth) == bpf_htons(ETH_P_IP))
		return handle_ipv4(ctx, (void *)(eth + 1), data_end);
	if (eth_type(eth) == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(ctx, (void *)(eth + 1), data_end);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
