/* xdp_adjust_tail: answer IPv4 frames longer than max_frame bytes (600, a constant in .rodata)
 * with an ICMP "fragmentation needed" (type 3 code 4) carrying next-hop MTU max_frame - 14,
 * sent back out of the port.
 *
 * The reply reuses the frame: bpf_xdp_adjust_tail cuts it after the quoted part (the original
 * 20-byte IPv4 header and the first 8 bytes of its payload), bpf_xdp_adjust_head makes room for
 * the new IPv4 + ICMP headers in front, and the Ethernet header is rebuilt with the MACs
 * swapped.  Only untagged IPv4 without options is answered; every other frame passes (IPv4
 * headers cut short drop).  `icmp_cnt` counts the replies sent.
 */
#include "common.h"

#define QUOTE_LEN (sizeof(struct iphdr) + 8)
#define REPLY_HDRS (sizeof(struct iphdr) + sizeof(struct icmp4_hdr))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} icmp_cnt SEC(".maps");

/* global data: the loader may set it before loading (libbpf freezes .rodata afterwards) */
const volatile __u32 max_frame = 600;

/* checksum of the ICMP header and the quoted bytes (36 bytes, 16-bit aligned) */
INLINE __u16 icmp_csum(__u16 *w)
{
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)((sizeof(struct icmp4_hdr) + QUOTE_LEN) >> 1); i++)
		sum += w[i];
	return csum_fold(sum);
}

INLINE int send_too_big(struct xdp_md *ctx, __u32 frame_len)
{
	unsigned char smac[ETH_ALEN], dmac[ETH_ALEN];
	struct ethhdr *eth;
	struct iphdr *iph, *orig;
	struct icmp4_hdr *icmp;
	__be32 saddr, daddr;
	void *data, *end;
	__u32 zero = 0;
	__u64 *n;

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	orig = data + sizeof(*eth);
	if ((void *)(orig + 1) > end)
		return XDP_DROP;
	copy_mac(smac, eth->h_dest);
	copy_mac(dmac, eth->h_source);
	saddr = orig->daddr;
	daddr = orig->saddr;

	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + QUOTE_LEN) - (int)frame_len))
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, 0 - (int)REPLY_HDRS))
		return XDP_DROP;

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	iph = data + sizeof(*eth);
	icmp = (void *)(iph + 1);
	if ((void *)(icmp + 1) + QUOTE_LEN > end)
		return XDP_DROP;

	copy_mac(eth->h_dest, dmac);
	copy_mac(eth->h_source, smac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	icmp->type = ICMP4_DEST_UNREACH;
	icmp->code = ICMP4_FRAG_NEEDED;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(max_frame - sizeof(*eth));
	icmp->checksum = 0;
	icmp->checksum = icmp_csum((__u16 *)icmp);

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(REPLY_HDRS + QUOTE_LEN);
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = saddr;
	iph->daddr = daddr;
	ipv4_set_csum(iph);

	n = bpf_map_lookup_elem(&icmp_cnt, &zero);
	if (n)
		*n += 1;
	return XDP_TX;
}

SEC("xdp")
int xdp_adjust_tail_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	__u32 frame_len = data_end - data;

	if ((void *)(eth + 1) > data_end || eth_type(eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(iph + 1) > data_end)
		return XDP_DROP;
	if (frame_len <= max_frame || iph->ihl != 5)
		return XDP_PASS;
	return send_too_big(ctx, frame_len);
}

char _license[] SEC("license") = "GPL";
