/* ubench_tx: check that 14 bytes are there, swap the MAC addresses as three 16-bit swaps, and
 * send the frame back (the hXDP paper's XDP_TX microbenchmark). */
#include "common.h"

SEC("xdp")
int ubench_tx_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	swap_mac(data);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
