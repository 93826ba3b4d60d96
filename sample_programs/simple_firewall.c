/* simple_firewall: the hXDP paper's running example, a stateful firewall between an inside
 * network and an outside one.
 *
 * A packet is "from the inside" when its IPv4 source is in INSIDE_NET/INSIDE_PREFIX
 * (10.0.0.0/8).  TCP and UDP packets from the inside record their 5-tuple in `flows` and go
 * out through OUTSIDE_IFINDEX; packets from the outside go in through INSIDE_IFINDEX only when
 * the reverse 5-tuple is a known flow, and are dropped otherwise.  Every other IPv4 protocol
 * from the outside is dropped too; non-IPv4 frames and IPv4 from the inside that is not TCP or
 * UDP pass to the host.  Malformed IPv4 (IHL < 5, headers cut short) is dropped.
 * Non-first fragments carry no ports: they use ports 0, so only a flow opened by such a
 * fragment lets their replies in.
 */
#include "common.h"

#define INSIDE_NET 0x0a000000 /* 10.0.0.0 */
#define INSIDE_PREFIX 8
#define INSIDE_IFINDEX 1
#define OUTSIDE_IFINDEX 2
#define MAX_FLOWS 4096

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_state {
	__u64 packets_out;
	__u64 packets_in;
	__u64 bytes_out;
	__u64 bytes_in;
};

enum fw_stat {
	FW_OUT = 0,       /* inside -> outside, forwarded */
	FW_IN = 1,        /* outside -> inside, known flow, forwarded */
	FW_BLOCKED = 2,   /* outside -> inside, unknown flow */
	FW_MALFORMED = 3, /* IPv4 header or ports cut short, bad IHL */
	FW_PASS = 4,      /* not IPv4, or inside non-TCP/UDP */
	FW_TABLE_FULL = 5,
	FW_NSTATS
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FW_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} fw_stats SEC(".maps");

INLINE int verdict(__u32 stat, int action)
{
	__u64 *n = bpf_map_lookup_elem(&fw_stats, &stat);

	if (n)
		*n += 1;
	return action;
}

INLINE int is_inside(__be32 addr)
{
	return (bpf_ntohl(addr) >> (32 - INSIDE_PREFIX)) == (INSIDE_NET >> (32 - INSIDE_PREFIX));
}

SEC("xdp")
int simple_firewall_prog(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	__u64 len = c.end - (void *)(long)ctx->data;
	struct flow_key key = {};
	struct flow_state *st;
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto;

	proto = parse_eth(&c, &eth);
	if (proto < 0)
		return verdict(FW_MALFORMED, XDP_DROP);
	if (proto != bpf_htons(ETH_P_IP))
		return verdict(FW_PASS, XDP_PASS);
	iph = c.pos;
	if ((void *)(iph + 1) > c.end || iph->ihl < 5)
		return verdict(FW_MALFORMED, XDP_DROP);
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP) {
		if (is_inside(iph->saddr))
			return verdict(FW_PASS, XDP_PASS);
		return verdict(FW_BLOCKED, XDP_DROP);
	}
	if (!(iph->frag_off & bpf_htons(0x1fff)) &&
	    l4_ports((void *)iph + iph->ihl * 4, c.end, &key.sport, &key.dport))
		return verdict(FW_MALFORMED, XDP_DROP);
	key.proto = iph->protocol;

	if (is_inside(iph->saddr)) {
		key.saddr = iph->saddr;
		key.daddr = iph->daddr;
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st) {
			struct flow_state fresh = {};

			if (bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST))
				return verdict(FW_TABLE_FULL, XDP_DROP);
			st = bpf_map_lookup_elem(&flows, &key);
			if (!st)
				return verdict(FW_TABLE_FULL, XDP_DROP);
		}
		st->packets_out += 1;
		st->bytes_out += len;
		return verdict(FW_OUT, bpf_redirect(OUTSIDE_IFINDEX, 0));
	}

	/* from the outside: look the flow up as the inside host opened it */
	__be16 port = key.sport;
	key.sport = key.dport;
	key.dport = port;
	key.saddr = iph->daddr;
	key.daddr = iph->saddr;
	st = bpf_map_lookup_elem(&flows, &key);
	if (!st)
		return verdict(FW_BLOCKED, XDP_DROP);
	st->packets_in += 1;
	st->bytes_in += len;
	return verdict(FW_IN, bpf_redirect(INSIDE_IFINDEX, 0));
}

char _license[] SEC("license") = "GPL";
