/* katran_lb: a Katran-style layer-4 load balancer.
 *
 * TCP/UDP packets for a virtual IP (vip_map: address, port, protocol; a VIP configured with
 * port 0 takes every port) are hashed on their 5-tuple; the hash picks a slot of the VIP's
 * row in the consistent-hash ring `ch_rings` (VIPs x RING_SIZE real indexes, filled by the
 * control plane), the slot names a real server in `reals`, and the packet is encapsulated
 * toward it, IPv4 in IPv4 or IPv6 in IPv6 (bpf_xdp_adjust_head), Ethernet destination the
 * gateway MAC from `ctl_array`, and sent with XDP_TX.  `vip_stats` counts packets and bytes
 * per VIP, `lb_drops` the drops per reason.  No VIP, ICMP and other protocols, IPv6 extension
 * headers and VLAN-tagged frames pass; fragments, packets too big to encapsulate, VIPs without
 * a usable real and headers cut short drop.  No connection table: the choice depends only on
 * the packet and the maps.
 */
#include "common.h"

#define MAX_VIPS 16
#define RING_SIZE 67 /* prime, as a Maglev table wants */
#define MAX_REALS 64
#define MAX_IP_LEN 1500 /* largest outer datagram */
#define HASH_SEED 0x5bd1e995

#define F_HASH_NO_SRC_PORT 1 /* hash without the source port */

struct vip_key {
	__be32 addr[4]; /* IPv4: addr[0] */
	__be16 port;
	__u8 proto;
	__u8 family;    /* 4 or 6 */
};

struct vip_meta {
	__u32 flags;
	__u32 vip_num;
};

struct real_def {
	__be32 addr[4];
	__u32 family;   /* 4 or 6; 0 = unused slot */
};

struct lb_ctl {
	unsigned char gw_mac[ETH_ALEN];
	__u16 pad;
	__be32 src_v4;    /* outer source; low 16 bits replaced by the flow hash */
	__be32 src_v6[4]; /* outer source; last 16 bits replaced by the flow hash */
};

struct lb_stats {
	__u64 packets;
	__u64 bytes;
};

enum drop_reason {
	DROP_FRAGMENT = 0,
	DROP_NO_REAL = 1,
	DROP_TOO_BIG = 2,
	DROP_MALFORMED = 3,
	DROP_ENCAP = 4,
	DROP_REASONS
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_VIPS * RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} ch_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_def);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_ctl);
} ctl_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, struct lb_stats);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} lb_drops SEC(".maps");

/* The packet fields the balancer decides on. */
struct flow {
	__be32 src[4];
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 inner_len; /* the whole inner IP datagram */
	__u8 tos;
};

INLINE __u32 rol32(__u32 x, int k)
{
	return (x << k) | (x >> (32 - k));
}

/* Three-word avalanche in the style of Bob Jenkins' lookup3 final mix. */
INLINE __u32 mix3(__u32 a, __u32 b, __u32 c)
{
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* A BPF-to-BPF call (not inlined), as Katran's hashing is in its own function.  The words
 * are hashed as they sit in the packet (network order); IPv6 sources are folded by XOR. */
static __noinline __u32 flow_hash(const struct flow *f, __u32 flags)
{
	__u32 ports = ((__u32)f->sport << 16) | f->dport;
	__u32 src = f->src[0];

	if (flags & F_HASH_NO_SRC_PORT)
		ports = f->dport;
	if (f->family == 6)
		src ^= f->src[1] ^ f->src[2] ^ f->src[3];
	return mix3(src, ports, HASH_SEED ^ f->proto);
}

/* Fills f from an IPv4 header; returns 0 to balance, -1 to pass, -2 (malformed) or -3
 * (fragment) to drop. */
INLINE int parse_ipv4(struct iphdr *iph, void *end, struct flow *f)
{
	__u16 len;

	if ((void *)(iph + 1) > end || iph->ihl < 5)
		return -2;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return -1;
	if (iph->frag_off & bpf_htons(0x3fff))
		return -3;
	len = bpf_ntohs(iph->tot_len);
	if (len < iph->ihl * 4 || (void *)iph + len > end)
		return -2;
	if (l4_ports((void *)iph + iph->ihl * 4, end, &f->sport, &f->dport))
		return -2;
	f->src[0] = iph->saddr;
	f->dst[0] = iph->daddr;
	f->proto = iph->protocol;
	f->family = 4;
	f->inner_len = len;
	f->tos = iph->tos;
	return 0;
}

INLINE int parse_ipv6(struct ipv6hdr *ip6h, void *end, struct flow *f)
{
	__u16 len;

	if ((void *)(ip6h + 1) > end)
		return -2;
	if (ip6h->nexthdr == IPPROTO_FRAGMENT)
		return -3;
	if (ip6h->nexthdr != IPPROTO_TCP && ip6h->nexthdr != IPPROTO_UDP)
		return -1;
	len = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + len > end)
		return -2;
	if (l4_ports(ip6h + 1, end, &f->sport, &f->dport))
		return -2;
	__builtin_memcpy(f->src, &ip6h->saddr, 16);
	__builtin_memcpy(f->dst, &ip6h->daddr, 16);
	f->proto = ip6h->nexthdr;
	f->family = 6;
	f->inner_len = len + sizeof(*ip6h);
	return 0;
}

SEC("xdp")
int katran_lb_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow f = {};
	struct vip_key vk = {};
	struct vip_meta *vip;
	struct real_def *real;
	struct lb_stats *st;
	struct lb_ctl *ctl;
	__u32 *real_idx;
	__u32 hash, slot, reason, zero = 0;
	__u32 encap_len;
	__u64 *n;
	int rc;

	reason = DROP_MALFORMED;
	if ((void *)(eth + 1) > data_end)
		goto drop;
	if (eth_type(eth) == bpf_htons(ETH_P_IP))
		rc = parse_ipv4((void *)(eth + 1), data_end, &f);
	else if (eth_type(eth) == bpf_htons(ETH_P_IPV6))
		rc = parse_ipv6((void *)(eth + 1), data_end, &f);
	else
		return XDP_PASS;
	if (rc == -1)
		return XDP_PASS;
	if (rc == -2)
		goto drop;
	reason = DROP_FRAGMENT;
	if (rc == -3)
		goto drop;

	__builtin_memcpy(vk.addr, f.dst, 16);
	vk.port = f.dport;
	vk.proto = f.proto;
	vk.family = f.family;
	vip = bpf_map_lookup_elem(&vip_map, &vk);
	if (!vip) {
		vk.port = 0;
		vip = bpf_map_lookup_elem(&vip_map, &vk);
		if (!vip)
			return XDP_PASS;
	}
	encap_len = f.family == 4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	reason = DROP_TOO_BIG;
	if (f.inner_len + encap_len > MAX_IP_LEN)
		goto drop;

	reason = DROP_NO_REAL;
	if (vip->vip_num >= MAX_VIPS)
		goto drop;
	hash = flow_hash(&f, vip->flags);
	slot = vip->vip_num * RING_SIZE + hash % RING_SIZE;
	real_idx = bpf_map_lookup_elem(&ch_rings, &slot);
	if (!real_idx)
		goto drop;
	real = bpf_map_lookup_elem(&reals, real_idx);
	ctl = bpf_map_lookup_elem(&ctl_array, &zero);
	if (!real || !ctl || real->family != f.family)
		goto drop;

	st = bpf_map_lookup_elem(&vip_stats, &vip->vip_num);
	if (st) {
		st->packets += 1;
		st->bytes += f.inner_len;
	}
	if (f.family == 4) {
		__be32 src = bpf_htonl((bpf_ntohl(ctl->src_v4) & 0xffff0000) | (hash & 0xffff));

		rc = encap_ipv4(ctx, src, real->addr[0], ctl->gw_mac, f.inner_len, f.tos);
	} else {
		__be32 src[4];

		__builtin_memcpy(src, ctl->src_v6, 16);
		src[3] = bpf_htonl((bpf_ntohl(src[3]) & 0xffff0000) | (hash & 0xffff));
		rc = encap_ipv6(ctx, src, real->addr, ctl->gw_mac, f.inner_len);
	}
	reason = DROP_ENCAP;
	if (rc)
		goto drop;
	return XDP_TX;

drop:
	n = bpf_map_lookup_elem(&lb_drops, &reason);
	if (n)
		*n += 1;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
