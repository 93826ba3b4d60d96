/* ubench_redirect: like ubench_tx, then redirect to ifindex 2 (the paper's redirect
 * microbenchmark). */
#include "common.h"

#define OUT_IFINDEX 2

SEC("xdp")
int ubench_redirect_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	swap_mac(data);
	return bpf_redirect(OUT_IFINDEX, 0);
}

char _license[] SEC("license") = "GPL";
