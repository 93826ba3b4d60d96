/* redirect_map: swap the MAC addresses, count, and redirect every frame through entry 0 of the
 * devmap tx_port (XDP_DROP when that entry is empty or the frame is shorter than Ethernet). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

/* key 0: frames redirected, key 1: frames dropped as too short */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} rxcnt SEC(".maps");

INLINE void count(__u32 key)
{
	__u64 *n = bpf_map_lookup_elem(&rxcnt, &key);

	if (n)
		*n += 1;
}

SEC("xdp")
int redirect_map_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end) {
		count(1);
		return XDP_DROP;
	}
	swap_mac(data);
	count(0);
	return bpf_redirect_map(&tx_port, 0, XDP_DROP);
}

char _license[] SEC("license") = "GPL";
