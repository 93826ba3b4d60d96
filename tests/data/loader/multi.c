/* Loader test object: several programs per section, BPF-to-BPF calls (static and global
 * functions in .text, a chain of calls, a bpf_loop callback), global data in .data,
 * .rodata, .bss and a string literal section, and BTF maps of many types. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct lpm_key { __u32 prefixlen; __u8 addr[4]; };

struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, __u64); } pc_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, struct lpm_key); } pc_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 128); __type(key, __u64); __type(value, __u32); __uint(map_flags, BPF_F_NO_COMMON_LRU); } lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16); __type(key, struct lpm_key); __type(value, __u32); __uint(map_flags, BPF_F_NO_PREALLOC); } lpm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 8); __uint(key_size, 4); __uint(value_size, 4); } devs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, struct bpf_devmap_val); } devs_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CPUMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } cpus SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __uint(key_size, 4); __uint(value_size, 4); } jumps SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u16); };
struct inner inner1 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 3); __type(key, __u32); __array(values, struct inner); } outer SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 5); __type(key, __u64); __array(values, struct inner); } outer_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 10); __uint(value_size, 8); } q SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 100); __uint(value_size, 4); __uint(map_extra, 3); } bloom SEC(".maps");

__u64 counter = 7;                    /* .data */
const volatile __u32 limits[3] = {1, 2, 3};   /* .rodata */
__u32 scratch[5];                     /* .bss */
static __u64 hidden;                  /* .bss, static: relocation against the section symbol */

static __attribute__((noinline)) int leaf(int x) { return x * 3 + limits[1]; }
static __attribute__((noinline)) int middle(int x) { scratch[2] = x; return leaf(x) + leaf(x + 1); }
__attribute__((noinline)) int global_helper(struct xdp_md *ctx) { return ctx->ingress_ifindex + (int)counter; }

static int loop_cb(__u32 index, void *data) { *(__u64 *)data += index; return 0; }

SEC("xdp")
int prog_a(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&pc_hash, &k);
	if (v)
		*v += 1;
	hidden += middle(ctx->rx_queue_index);
	return (global_helper(ctx) & 1) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int prog_b(struct xdp_md *ctx)
{
	__u64 sum = 0;
	bpf_loop(4, loop_cb, &sum, 0);
	counter += sum + leaf(1);
	bpf_printk("b %d", (int)sum);
	return bpf_redirect_map(&devs, 0, XDP_PASS);
}

SEC("xdp.frags")
int prog_c(struct xdp_md *ctx)
{
	__u32 k = 1;
	struct lpm_key lk = {32, {10, 0, 0, 1}};
	void *m = bpf_map_lookup_elem(&outer, &k);
	if (m)
		return XDP_TX;
	if (bpf_map_lookup_elem(&lru, &counter))
		return XDP_TX;
	if (bpf_map_lookup_elem(&lpm, &lk))
		return XDP_REDIRECT;
	bpf_tail_call(ctx, &jumps, 0);
	return middle(2) ? XDP_PASS : XDP_ABORTED;
}

SEC("tc")
int not_xdp(struct __sk_buff *skb)
{
	bpf_trace_printk("len %d\n", 8, skb->len);   /* a literal: .rodata.str1.1 */
	return leaf(skb->len) & 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";

/* statically initialised prog_array and map-in-map (libbpf's init_slots, from .rel.maps) */
SEC("xdp") int tail_target(struct xdp_md *ctx) { return XDP_PASS; }
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 3); __type(key, __u32); __array(values, int (void *)); }
	jump_init SEC(".maps") = { .values = { [2] = (void *)&tail_target } };
struct inner inner2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 4); __type(key, __u32); __array(values, struct inner); }
	outer_init SEC(".maps") = { .values = { [0] = &inner1, [3] = &inner2 } };
