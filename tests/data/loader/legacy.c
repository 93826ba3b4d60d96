/* Loader test object: the legacy "maps" section (struct bpf_map_def as samples/bpf used it,
 * with the two extra fields inner_map_idx and numa_node), no BTF. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def_legacy {
	unsigned int type, key_size, value_size, max_entries, map_flags, inner_map_idx, numa_node;
};

struct bpf_map_def_legacy SEC("maps") rxcnt = { .type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 256 };
struct bpf_map_def_legacy SEC("maps") tx_port = { .type = BPF_MAP_TYPE_DEVMAP, .key_size = 4, .value_size = 4, .max_entries = 100, .map_flags = 0 };
struct bpf_map_def_legacy SEC("maps") flows = { .type = BPF_MAP_TYPE_HASH, .key_size = 16, .value_size = 24, .max_entries = 1024, .map_flags = BPF_F_NO_PREALLOC };

SEC("xdp1")
int xdp_prog1(struct xdp_md *ctx)
{
	__u32 key = ctx->rx_queue_index;
	long *value = bpf_map_lookup_elem(&rxcnt, &key);
	if (value)
		*value += 1;
	if (bpf_map_lookup_elem(&flows, &key))
		return XDP_DROP;
	return bpf_redirect_map(&tx_port, 0, 0);
}

char _license[] SEC("license") = "GPL";
