/* Shared pieces of the sample XDP programs: header parsing, MAC swap, checksums.
 * Written for hxdpc; everything is inlined so each object stays one self-contained program.
 */
#ifndef HXDPC_SAMPLES_COMMON_H
#define HXDPC_SAMPLES_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define INLINE static __always_inline

/* ICMPv4 header (linux/icmp.h pulls in libc's socket headers, which a BPF target lacks). */
struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};
#define ICMP4_DEST_UNREACH 3
#define ICMP4_FRAG_NEEDED 4

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* One 802.1Q / 802.1ad tag as it follows the MAC addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 next_proto;
};

/* Cursor over the packet: where the next header starts and where the packet ends. */
struct cursor {
	void *pos;
	void *end;
};

/* The EtherType as one 16-bit load (struct ethhdr is packed, so eth->h_proto costs two byte
 * loads, a shift and an or); the frame starts 2-byte aligned. */
INLINE __be16 eth_type(const struct ethhdr *eth)
{
	return ((const __be16 *)eth)[6];
}

INLINE int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Ethernet header plus up to two VLAN tags.  Returns the EtherType (network order, as a
 * non-negative int) and leaves the cursor after the last tag, or -1 when the frame is too short. */
INLINE int parse_eth(struct cursor *c, struct ethhdr **eth_out)
{
	struct ethhdr *eth = c->pos;
	__be16 proto;

	if ((void *)(eth + 1) > c->end)
		return -1;
	*eth_out = eth;
	proto = eth_type(eth);
	c->pos = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *tag = c->pos;

		if (!is_vlan(proto))
			break;
		if ((void *)(tag + 1) > c->end)
			return -1;
		proto = tag->next_proto;
		c->pos = tag + 1;
	}
	return proto;
}

/* IP protocol (IPv4) or first next-header (IPv6) after the cursor, or 0 for anything else
 * and for headers cut short. */
INLINE __u8 ip_protocol(struct cursor *c, int proto)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = c->pos;

		if ((void *)(iph + 1) > c->end)
			return 0;
		return iph->protocol;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = c->pos;

		if ((void *)(ip6h + 1) > c->end)
			return 0;
		return ip6h->nexthdr;
	}
	return 0;
}

/* Swap source and destination MAC as three 16-bit swaps (the hXDP paper's XDP_TX example). */
INLINE void swap_mac(void *data)
{
	__u16 *p = data;
	__u16 t0 = p[0], t1 = p[1], t2 = p[2];

	p[0] = p[3];
	p[1] = p[4];
	p[2] = p[5];
	p[3] = t0;
	p[4] = t1;
	p[5] = t2;
}

INLINE void copy_mac(unsigned char *dst, const unsigned char *src)
{
	__builtin_memcpy(dst, src, ETH_ALEN);
}

INLINE __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Internet checksum of a 20-byte IPv4 header without options (check field zeroed first). */
INLINE void ipv4_set_csum(struct iphdr *iph)
{
	__u16 *w = (__u16 *)iph;
	__u32 sum = 0;

	iph->check = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) >> 1); i++)
		sum += w[i];
	iph->check = csum_fold(sum);
}

/* Decrement the TTL and patch the header checksum incrementally (RFC 1624). */
INLINE void ipv4_dec_ttl(struct iphdr *iph)
{
	__u32 check = iph->check;

	check += bpf_htons(0x0100);
	iph->check = (__u16)(check + (check >= 0xFFFF));
	iph->ttl--;
}

/* Source and destination port of a TCP or UDP header at l4 (both are the first 4 bytes);
 * -1 when cut short. */
INLINE int l4_ports(void *l4, void *end, __be16 *sport, __be16 *dport)
{
	struct udphdr *uh = l4;

	if ((void *)(uh + 1) > end)
		return -1;
	*sport = uh->source;
	*dport = uh->dest;
	return 0;
}

/* Prepend an outer IPv4 header (protocol 4, IP-in-IP) to an untagged Ethernet/IPv4 frame and
 * address it: Ethernet source = the old destination (our port), destination = dmac.
 * inner_len is the inner datagram's length.  Returns 0, or -1 when the headroom is missing. */
INLINE int encap_ipv4(struct xdp_md *ctx, __be32 saddr, __be32 daddr, const unsigned char *dmac,
		      __u16 inner_len, __u8 tos)
{
	struct ethhdr *eth, *old;
	struct iphdr *outer;
	void *data, *end;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	outer = data + sizeof(*eth);
	old = data + sizeof(struct iphdr);
	if ((void *)(outer + 1) > end || (void *)(old + 1) > end)
		return -1;
	copy_mac(eth->h_source, old->h_dest);
	copy_mac(eth->h_dest, dmac);
	eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = bpf_htons(inner_len + sizeof(*outer));
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = saddr;
	outer->daddr = daddr;
	ipv4_set_csum(outer);
	return 0;
}

/* Prepend an outer IPv6 header (next header 41, IPv6-in-IPv6) like encap_ipv4; payload_len is
 * the whole inner datagram (40 + its payload length). */
INLINE int encap_ipv6(struct xdp_md *ctx, const __u32 *saddr, const __u32 *daddr,
		      const unsigned char *dmac, __u16 payload_len)
{
	struct ethhdr *eth, *old;
	struct ipv6hdr *outer;
	void *data, *end;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct ipv6hdr)))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	outer = data + sizeof(*eth);
	old = data + sizeof(struct ipv6hdr);
	if ((void *)(outer + 1) > end || (void *)(old + 1) > end)
		return -1;
	copy_mac(eth->h_source, old->h_dest);
	copy_mac(eth->h_dest, dmac);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)outer = bpf_htonl(0x60000000);
	outer->payload_len = bpf_htons(payload_len);
	outer->nexthdr = IPPROTO_IPV6;
	outer->hop_limit = 64;
	__builtin_memcpy(&outer->saddr, saddr, 16);
	__builtin_memcpy(&outer->daddr, daddr, 16);
	return 0;
}

#endif
