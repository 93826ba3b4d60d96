/* router_ipv4: an IPv4 forwarding plane in maps.
 *
 * The destination is looked up in the LPM trie `routes` (prefix -> egress ifindex and gateway,
 * gateway 0 meaning directly connected), the next hop in `neighbours` (IPv4 -> MAC), the
 * egress port's own MAC in `if_macs`; the MACs are rewritten, the TTL decremented with an
 * incremental checksum update, and the frame redirected through the devmap `tx_ports`
 * (key = egress ifindex; XDP_DROP when the port has no entry).  Whatever the fast path cannot
 * forward (not IPv4, VLAN-tagged, IP options, TTL <= 1, no route, no neighbour, no port MAC) is
 * passed to the host stack; IPv4 headers cut short or with a bad IHL are dropped.
 * `stats` counts the returned actions (index = XDP action).
 */
#include "common.h"

struct route_key {
	__u32 prefixlen;
	__be32 addr;
};

struct route {
	__u32 ifindex;
	__be32 gateway;
};

struct mac_addr {
	unsigned char addr[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route_key);
	__type(value, struct route);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __be32);
	__type(value, struct mac_addr);
} neighbours SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct mac_addr);
} if_macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

INLINE int done(int action)
{
	__u32 key = action;
	__u64 *n = bpf_map_lookup_elem(&stats, &key);

	if (n)
		*n += 1;
	return action;
}

SEC("xdp")
int router_ipv4_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct route_key key;
	struct mac_addr *dmac, *smac;
	struct route *rt;
	__be32 nexthop;
	__u32 ifindex;

	if ((void *)(eth + 1) > data_end)
		return done(XDP_DROP);
	if (eth_type(eth) != bpf_htons(ETH_P_IP))
		return done(XDP_PASS);
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return done(XDP_DROP);
	if (iph->ihl != 5 || iph->ttl <= 1)
		return done(XDP_PASS);

	key.prefixlen = 32;
	key.addr = iph->daddr;
	rt = bpf_map_lookup_elem(&routes, &key);
	if (!rt)
		return done(XDP_PASS);
	ifindex = rt->ifindex;
	nexthop = rt->gateway ? rt->gateway : iph->daddr;
	dmac = bpf_map_lookup_elem(&neighbours, &nexthop);
	smac = bpf_map_lookup_elem(&if_macs, &ifindex);
	if (!dmac || !smac)
		return done(XDP_PASS);

	copy_mac(eth->h_dest, dmac->addr);
	copy_mac(eth->h_source, smac->addr);
	ipv4_dec_ttl(iph);
	return done(bpf_redirect_map(&tx_ports, ifindex, XDP_DROP));
}

char _license[] SEC("license") = "GPL";
