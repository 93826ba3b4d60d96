/* A map type an XDP program cannot use (cgroup storage): the loader must refuse it by name. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct { __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE); __type(key, struct bpf_cgroup_storage_key); __type(value, __u64); } cg_store SEC(".maps");

SEC("xdp")
int prog(struct xdp_md *ctx) { return XDP_PASS; }

char _license[] SEC("license") = "GPL";
