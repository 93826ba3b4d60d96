/* ubench_drop: the smallest XDP program, for calibrating Sephirot's XDP_DROP throughput. */
#include "common.h"

SEC("xdp")
int ubench_drop_prog(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
