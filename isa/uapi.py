"""Numbers of the kernel's BPF ABI (include/uapi/linux/bpf.h) that the whole toolchain shares,
each kept here once: XDP actions (enum xdp_action) and map types (enum bpf_map_type)."""
from __future__ import annotations

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 0, 1, 2, 3, 4
ACTION_NAMES = {XDP_ABORTED: "XDP_ABORTED", XDP_DROP: "XDP_DROP", XDP_PASS: "XDP_PASS", XDP_TX: "XDP_TX",
                XDP_REDIRECT: "XDP_REDIRECT"}


def action_name(action: int) -> str:
    """The action's name (results JSONL, pcap file names); UNKNOWN(n) above XDP_REDIRECT."""
    return ACTION_NAMES.get(action, f"UNKNOWN({action})")


# BPF map types (include/uapi/linux/bpf.h)
MAP_TYPES = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array",
    5: "percpu_hash", 6: "percpu_array", 7: "stack_trace", 8: "cgroup_array",
    9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps",
    13: "hash_of_maps", 14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap",
    18: "sockhash", 19: "cgroup_storage", 20: "reuseport_sockarray",
    21: "percpu_cgroup_storage", 22: "queue", 23: "stack", 24: "sk_storage",
    25: "devmap_hash", 26: "struct_ops", 27: "ringbuf", 28: "inode_storage",
    29: "task_storage", 30: "bloom_filter",
}
MAP_TYPE_IDS = {v: k for k, v in MAP_TYPES.items()}
