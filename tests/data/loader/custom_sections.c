/* Loader test object: custom global-data sections (.data.X, .rodata.X, .bss.X), which libbpf
 * turns into maps named exactly as the section. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
int a SEC(".data.custom") = 3;
int b SEC(".bss.custom");
static const int c SEC(".rodata.custom") = 5;
int e SEC(".data.empty");
SEC("xdp") int p(struct xdp_md *ctx) { b += a + c; return XDP_PASS; }
char _license[] SEC("license") = "GPL";
