/* rxq_info: count packets and bytes per receive queue and per ingress interface, then apply
 * the action chosen by config_map (XDP_DROP, XDP_PASS or XDP_TX, the latter optionally with
 * the MAC addresses swapped).  Any other configured action counts as a configuration error
 * and aborts. */
#include "common.h"

#define MAX_RXQ 64
#define MAX_IFINDEX 64

struct config {
	__u32 action;
	__u32 swap_mac;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct global_stats {
	__u64 processed;
	__u64 bad_config;
	__u64 too_short;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config_map SEC(".maps");

/* index = rx_queue_index; the last entry collects queues >= MAX_RXQ */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RXQ + 1);
	__type(key, __u32);
	__type(value, struct counter);
} rxq_stats SEC(".maps");

/* index = ingress_ifindex; the last entry collects ifindexes >= MAX_IFINDEX */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IFINDEX + 1);
	__type(key, __u32);
	__type(value, struct counter);
} ifindex_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct global_stats);
} stats_global SEC(".maps");

INLINE void count(void *map, __u32 key, __u32 limit, __u64 bytes)
{
	struct counter *c;

	if (key > limit)
		key = limit;
	c = bpf_map_lookup_elem(map, &key);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

SEC("xdp")
int rxq_info_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct global_stats *g;
	struct config *cfg;
	__u32 zero = 0;

	g = bpf_map_lookup_elem(&stats_global, &zero);
	cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!g || !cfg)
		return XDP_ABORTED;
	g->processed += 1;
	count(&rxq_stats, ctx->rx_queue_index, MAX_RXQ, len);
	count(&ifindex_stats, ctx->ingress_ifindex, MAX_IFINDEX, len);

	switch (cfg->action) {
	case XDP_DROP:
	case XDP_PASS:
		return cfg->action;
	case XDP_TX:
		if (cfg->swap_mac) {
			if (data + ETH_HLEN > data_end) {
				g->too_short += 1;
				return XDP_DROP;
			}
			swap_mac(data);
		}
		return XDP_TX;
	default:
		g->bad_config += 1;
		return XDP_ABORTED;
	}
}

char _license[] SEC("license") = "GPL";
