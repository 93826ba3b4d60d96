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
 * included) and inside IPv4 that is not TCP/UDP pass to the host.  IPv4 that is not version 4
 * with a 20-byte header (IP options, IHL != 5: the paper's firewall reads the ports at a fixed
 * offset too) drops as malformed.  Frames cut short before the end of the IPv4 header, or of
 * the ports for TCP/UDP (fragments included), drop uncounted: such checks become the hardware's
 * bounds checks on Sephirot.  Non-first fragments carry no ports: they use ports 0.
 * `fw_stats` counts the other packets that are not forwarded, per reason.
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
	FW_MALFORMED = 1,  /* not IPv4 version 4 with IHL 5 */
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
	struct udphdr *uh = (void *)(iph + 1);   /* TCP and UDP both start with the ports */
	struct flow_key key = {};
	struct flow_state *st;
	__be16 sport = 0, dport = 0;
	__be32 saddr, daddr;

	/* Frames cut short drop uncounted: the compiler turns these checks into the hardware's
	 * bounds checks (docs/compiler.md). */
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth_type(eth) != bpf_htons(ETH_P_IP))
		return verdict(FW_PASS, XDP_PASS);
	if ((void *)(iph + 1) > data_end)
		return XDP_DROP;
	if (*(__u8 *)iph != 0x45)                 /* version 4, 20-byte header: no options */
		return verdict(FW_MALFORMED, XDP_DROP);
	saddr = iph->saddr;
	daddr = iph->daddr;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP) {
		if (is_inside(saddr))
			return verdict(FW_PASS, XDP_PASS);
		return verdict(FW_BLOCKED, XDP_DROP);
	}
	if ((void *)(uh + 1) > data_end)
		return XDP_DROP;
	if (!(iph->frag_off & bpf_htons(0x1fff))) {
		sport = uh->source;
		dport = uh->dest;
	}

	key.proto = iph->protocol;
	if (saddr < daddr || (saddr == daddr && sport <= dport)) {
		key.addr_lo = saddr;
		key.addr_hi = daddr;
		key.port_lo = sport;
		key.port_hi = dport;
		asm volatile("" ::: "memory");    /* each side stores its own key (layout hint) */
	} else {
		key.addr_lo = daddr;
		key.addr_hi = saddr;
		key.port_lo = dport;
		key.port_hi = sport;
		asm volatile(" " ::: "memory");
	}

	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {   /* established: count it, out through the other side */
		__sync_fetch_and_add(&st->packets, 1);
		return bpf_redirect(is_inside(saddr) ? OUTSIDE_IFINDEX : INSIDE_IFINDEX, 0);
	}
	if (!is_inside(saddr))
		return verdict(FW_BLOCKED, XDP_DROP);
	{
		struct flow_state fresh = { .packets = 1 };

		if (bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST))
			return verdict(FW_TABLE_FULL, XDP_DROP);
	}
	return bpf_redirect(OUTSIDE_IFINDEX, 0);
}

char _license[] SEC("license") = "GPL";
