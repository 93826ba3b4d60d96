"""THE helper table: what executors and tools need to know about each BPF helper.

Like the kernel's ``struct bpf_func_proto``: per helper number its name, how many
arguments it takes, what it returns and what it does to the packet, plus hXDP facts
(Sephirot's latency class, whether Sephirot's helper module waits for the whole packet)
and whether the kernel and an emulator can agree on its result.  Executors decide on
these fields, never on helper-number sets of their own; the runtime's implementations
(emulator/runtime/helpers.py HELPERS) are checked against it by tests/test_helper_table.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional


class Returns(str, Enum):
    INTEGER = "integer"                  # RET_INTEGER (errno as a negative value)
    VOID = "void"                        # RET_VOID (r0 is 0)
    MAP_VALUE_OR_NULL = "map_value"      # RET_PTR_TO_MAP_VALUE_OR_NULL: the program reads it next
    MEM_OR_NULL = "mem"                  # RET_PTR_TO_MEM_OR_NULL (ringbuf_reserve)


class Packet(str, Enum):
    KEEPS = "keeps"      # the packet region (base, bytes object, length) and xdp_md.data/data_end stay
    MOVES = "moves"      # may move or resize it (adjust_*), or runs code that may (bpf_loop callbacks)


class Latency(str, Enum):
    """Sephirot's helper-module latency class (emulator/sephirot/timing.py gives the cycles)."""
    DEFAULT = "default"
    MAP_LOOKUP = "map_lookup"        # hash + read, one more cycle per 32 key bytes
    MAP_UPDATE = "map_update"
    MAP_DELETE = "map_delete"
    BUFFER = "buffer"                # walks buffers: the sum of the size arguments `size_args`
    FIB = "fib"
    ADJUST = "adjust"                # moves APS pointers
    REDIRECT_MAP = "redirect_map"


@dataclass(frozen=True)
class Helper:
    num: int
    name: str                        # without the bpf_ prefix
    nargs: int                       # arguments read from r1..r5
    returns: Returns = Returns.INTEGER
    packet: Packet = Packet.KEEPS
    latency: Latency = Latency.DEFAULT
    size_args: tuple = ()            # Latency.BUFFER: indices of the arguments holding byte counts
    map_arg: bool = False            # r1 is a map (Sephirot: the latency may depend on its key size)
    whole_packet: bool = False       # Sephirot's helper module waits for the whole packet first
    nondeterministic: bool = False   # kernel and emulator cannot share its result (clocks, randomness)
    calls_back: bool = False         # may run program code (bpf_loop)
    tail_call: bool = False          # switches programs (bpf_tail_call)

    @property
    def returns_pointer(self) -> bool:
        """r0 is a pointer the program reads next (or 0)."""
        return self.returns in (Returns.MAP_VALUE_OR_NULL, Returns.MEM_OR_NULL)

    @property
    def keeps_packet(self) -> bool:
        return self.packet == Packet.KEEPS

    @property
    def full_name(self) -> str:
        return f"bpf_{self.name}"


R, P, L = Returns, Packet, Latency
TABLE: tuple[Helper, ...] = (
    Helper(1, "map_lookup_elem", 2, R.MAP_VALUE_OR_NULL, latency=L.MAP_LOOKUP, map_arg=True),
    Helper(2, "map_update_elem", 4, latency=L.MAP_UPDATE, map_arg=True),
    Helper(3, "map_delete_elem", 2, latency=L.MAP_DELETE, map_arg=True),
    Helper(5, "ktime_get_ns", 0, nondeterministic=True),
    Helper(6, "trace_printk", 5),
    Helper(7, "get_prandom_u32", 0, nondeterministic=True),
    Helper(8, "get_smp_processor_id", 0),
    Helper(12, "tail_call", 3, R.VOID, tail_call=True),
    Helper(23, "redirect", 2),
    Helper(25, "perf_event_output", 5),
    Helper(28, "csum_diff", 5, latency=L.BUFFER, size_args=(1, 3)),
    Helper(42, "get_numa_node_id", 0),
    Helper(44, "xdp_adjust_head", 2, packet=P.MOVES, latency=L.ADJUST, whole_packet=True),
    Helper(51, "redirect_map", 3, latency=L.REDIRECT_MAP),
    Helper(54, "xdp_adjust_meta", 2, packet=P.MOVES, latency=L.ADJUST, whole_packet=True),
    Helper(65, "xdp_adjust_tail", 2, packet=P.MOVES, latency=L.ADJUST, whole_packet=True),
    Helper(69, "fib_lookup", 4, latency=L.FIB),
    Helper(118, "jiffies64", 0, nondeterministic=True),
    Helper(125, "ktime_get_boot_ns", 0, nondeterministic=True),
    Helper(130, "ringbuf_output", 4),
    Helper(131, "ringbuf_reserve", 3, R.MEM_OR_NULL),
    Helper(132, "ringbuf_submit", 2, R.VOID),
    Helper(133, "ringbuf_discard", 2, R.VOID),
    Helper(160, "ktime_get_coarse_ns", 0, nondeterministic=True),
    Helper(181, "loop", 4, packet=P.MOVES, calls_back=True),
    Helper(188, "xdp_get_buff_len", 1),
    Helper(189, "xdp_load_bytes", 4, latency=L.BUFFER, size_args=(3,), whole_packet=True),
    Helper(190, "xdp_store_bytes", 4, latency=L.BUFFER, size_args=(3,), whole_packet=True),
    Helper(195, "map_lookup_percpu_elem", 3, R.MAP_VALUE_OR_NULL, map_arg=True),
    Helper(208, "ktime_get_tai_ns", 0, nondeterministic=True),
)
del R, P, L

BY_NUM: dict[int, Helper] = {h.num: h for h in TABLE}
BY_NAME: dict[str, Helper] = {h.name: h for h in TABLE}
assert len(BY_NUM) == len(TABLE) and len(BY_NAME) == len(TABLE), "duplicate helpers in the table"

# helper names by number (__BPF_FUNC_MAPPER order, include/uapi/linux/bpf.h), for messages
NAMES = """unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk
get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call
clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid
skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect
get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt
skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc
get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data
csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str
get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map
sk_redirect_map sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value
getsockopt override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes
msg_pull_data bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative
fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap
lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown skb_cgroup_id
get_current_cgroup_id get_local_storage sk_select_reuseport skb_ancestor_cgroup_id sk_lookup_tcp
sk_lookup_udp sk_release map_push_elem map_pop_elem map_peek_elem msg_push_data msg_pop_data
rc_pointer_rel spin_lock spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock
skc_lookup_tcp tcp_check_syncookie sysctl_get_name sysctl_get_current_value sysctl_get_new_value
sysctl_set_new_value strtol strtoul sk_storage_get sk_storage_delete send_signal
tcp_gen_syncookie skb_output probe_read_user probe_read_kernel probe_read_user_str
probe_read_kernel_str tcp_send_ack send_signal_thread jiffies64 read_branch_records
get_ns_current_pid_tgid xdp_output get_netns_cookie get_current_ancestor_cgroup_id sk_assign
ktime_get_boot_ns seq_printf seq_write sk_cgroup_id sk_ancestor_cgroup_id ringbuf_output
ringbuf_reserve ringbuf_submit ringbuf_discard ringbuf_query csum_level skc_to_tcp6_sock
skc_to_tcp_sock skc_to_tcp_timewait_sock skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack
load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get inode_storage_delete d_path
copy_from_user snprintf_btf seq_printf_btf skb_cgroup_classid redirect_neigh per_cpu_ptr
this_cpu_ptr redirect_peer task_storage_get task_storage_delete get_current_task_btf
bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu for_each_map_elem
snprintf sys_bpf btf_find_by_name_kind sys_close timer_init timer_set_callback timer_start
timer_cancel get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot trace_vprintk
skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret
get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes
copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem
skc_to_mptcp_sock dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr
ringbuf_discard_dynptr dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4
tcp_raw_gen_syncookie_ipv6 tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6
ktime_get_tai_ns user_ringbuf_drain""".split()
assert all(NAMES[h.num] == h.name for h in TABLE), "helper table and name list disagree"


def get(num: int) -> Optional[Helper]:
    return BY_NUM.get(num)


def helper_name(num: int) -> str:
    return f"bpf_{NAMES[num]}" if 0 <= num < len(NAMES) else f"helper #{num}"


def number(name: str) -> int:
    """The number of a helper of the table, by its name (without bpf_)."""
    return BY_NAME[name].num


def keeps_packet(num: int) -> bool:
    """The helper surely leaves the packet region and xdp_md.data/data_end as they were
    (an unknown helper: no)."""
    h = BY_NUM.get(num)
    return h is not None and h.keeps_packet


def returns_pointer(num: int) -> bool:
    h = BY_NUM.get(num)
    return h is not None and h.returns_pointer
