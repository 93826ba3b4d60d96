/* Loader test object without BTF (built without -g): global data only, so libbpf gives the
 * global-data maps no BPF_F_MMAPABLE; a static subprogram called from two programs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int hits = 1;                      /* .data */
const int answer = 42;             /* .rodata */
long zeros[3];                     /* .bss */

static __attribute__((noinline)) int bump(int by) { hits += by; zeros[1] = by; return answer; }

SEC("xdp") int first(struct xdp_md *ctx) { return bump(1) == 42 ? XDP_PASS : XDP_DROP; }
SEC("xdp") int second(struct xdp_md *ctx) { return bump(2) & 3; }

char _license[] SEC("license") = "GPL";
