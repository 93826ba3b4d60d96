/* simple_firewall: the hXDP paper's running example, a stateful firewall between an inside
 * network and an outside one that lets in only the TCP and UDP flows opened from the inside.
 *
 * A packet is "from the inside" when its IPv4 source is in INSIDE_NET/INSIDE_PREFIX
 * (10.0.0.0/8): deciding by address, not by ingress port, lets any pcap drive it with the
 * default packet context.  As in the paper, the flow key is the 5-tuple in an absolute order
 * (lower address first, with its port), so both directions of a flow share one entry of
 * `flows`.  TCP/UDP from the inside creates the entry if needed and goes out through
 * OUTSIDE_IFINDEX; TCP/UDP from the outside goes in through INSIDE_IFINDEX when the entry
 * exists and is dropped otherwise.  Each forwarded packet adds 1 to its entry (an atomic add).
 * Every other IPv4 protocol from the outside is dropped; non-IPv4 frames (VLAN-tagged ones
 * included) and inside IPv4 that is not TCP/UDP pass to the host.  Malformed IPv4 (IHL < 5,
 * headers cut short) drops.  Non-first fragments carry no ports: they use ports 0.
 * `fw_stats` counts the packets that are not forwarded, per reason.
 */
#include "common.h"

#define INSIDE_NET 0x0a000000 /* 10.0.0.0 */
#define INSIDE_PREFIX 8
#define INSIDE_IFINDEX 1
#define OUTSIDE_IFINDEX 2
#define MAX_FLOWS 4096

struct flow_key {
	__be32 addr_lo;  /* the lower address (as a number in network byte order) */
	__be32 addr_hi;
	__be16 port_lo;  /* the port on addr_lo's side */
	__be16 port_hi;
	__u8 proto;
	__u8 pad[3];
};

struct flow_state {
	__u64 packets;   /* forwarded, both directions */
};

enum fw_stat {
	FW_BLOCKED = 0,    /* from the outside, no flow */
	FW_MALFORMED = 1,  /* IPv4 header or ports cut short, IHL < 5 */
	FW_PASS = 2,       /* not IPv4, or inside non-TCP/UDP */
	FW_TABLE_FULL = 3, /* a new inside flow found no room */
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
	return (addr & bpf_htonl(~0u << (32 - INSIDE_PREFIX))) == bpf_htonl(INSIDE_NET);
}

SEC("xdp")
int simple_firewall_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct flow_key key = {};
	struct flow_state *st;
	__be16 sport = 0, dport = 0;
	int inside;

	if ((void *)(eth + 1) > data_end)
		return verdict(FW_MALFORMED, XDP_DROP);
	if (eth_type(eth) != bpf_htons(ETH_P_IP))
		return verdict(FW_PASS, XDP_PASS);
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return verdict(FW_MALFORMED, XDP_DROP);
	inside = is_inside(iph->saddr);
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP) {
		if (inside)
			return verdict(FW_PASS, XDP_PASS);
		return verdict(FW_BLOCKED, XDP_DROP);
	}
	if (!(iph->frag_off & bpf_htons(0x1fff)) &&
	    l4_ports((void *)iph + iph->ihl * 4, data_end, &sport, &dport))
		return verdict(FW_MALFORMED, XDP_DROP);

	key.proto = iph->protocol;
	if (iph->saddr < iph->daddr || (iph->saddr == iph->daddr && sport <= dport)) {
		key.addr_lo = iph->saddr;
		key.addr_hi = iph->daddr;
		key.port_lo = sport;
		key.port_hi = dport;
	} else {
		key.addr_lo = iph->daddr;
		key.addr_hi = iph->saddr;
		key.port_lo = dport;
		key.port_hi = sport;
	}

	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {
		__sync_fetch_and_add(&st->packets, 1);
	} else if (inside) {
		struct flow_state fresh = { .packets = 1 };

		if (bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST))
			return verdict(FW_TABLE_FULL, XDP_DROP);
	} else {
		return verdict(FW_BLOCKED, XDP_DROP);
	}
	return bpf_redirect(inside ? OUTSIDE_IFINDEX : INSIDE_IFINDEX, 0);
}

char _license[] SEC("license") = "GPL";
