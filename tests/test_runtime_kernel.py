"""The runtime against the Linux kernel: one probe program exercises the helpers and maps
whose limits and errnos matter (adjust_head/meta/tail with and without fragments,
csum_diff, xdp_load/store_bytes, hash/array/percpu/LPM update flags and capacity, devmap
lookups and redirects); every packet's action, bytes, metadata and the maps after it must
be identical in BPF_PROG_TEST_RUN and in the emulator."""
import struct

import pytest

from tests.conftest import build_bpf, needs_kernel

PROBE_C = r'''
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __s64); } out SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } h SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } arr SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } ph SEC(".maps");
struct lpm_key { __u32 plen; __u8 addr[4]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 3); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, struct lpm_key); __type(value, __u32); } lpm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } dm SEC(".maps");
struct cmd { __u8 op; __u8 pad[3]; __s32 arg; __u32 seed; __u8 a[16]; __u8 b[16]; };
static __always_inline void O(__u32 k, __s64 x) { bpf_map_update_elem(&out, &k, &x, 0); }
SEC("xdp") int probe(struct xdp_md *c)
{
  void *d = (void *)(long)c->data, *e = (void *)(long)c->data_end;
  struct cmd *m = d + 14; struct cmd cm;
  if ((void *)(m + 1) > e) return XDP_PASS;
  __builtin_memcpy(&cm, m, sizeof(cm));
  __s64 r = 0, aux = 0; int act = XDP_TX;
  __u32 k = cm.arg, fl = ((__u32)cm.arg >> 16) & 7;
  switch (cm.op) {
  case 0: r = bpf_xdp_adjust_head(c, cm.arg); break;
  case 1: r = bpf_xdp_adjust_meta(c, cm.arg); break;
  case 2: r = bpf_xdp_adjust_tail(c, cm.arg); break;
  case 3: aux = bpf_xdp_adjust_meta(c, -8);
          { void *mt = (void *)(long)c->data_meta, *dd = (void *)(long)c->data;
            if (mt + 8 <= dd) *(__u64 *)mt = 0x1122334455667788ULL; }
          r = bpf_xdp_adjust_head(c, cm.arg); break;
  case 4: r = bpf_csum_diff((__be32 *)cm.a, cm.arg & 15, (__be32 *)cm.b, (cm.arg >> 4) & 15, cm.seed); break;
  case 5: { __u64 v = 0; r = bpf_xdp_load_bytes(c, cm.arg, &v, 8); aux = v; break; }
  case 6: { __u32 v = 0xdeadbeef; r = bpf_xdp_store_bytes(c, cm.arg & 0xffff, &v, 4); break; }
  case 7: { __u64 v = cm.seed; k &= 0xff; r = bpf_map_update_elem(&h, &k, &v, fl);
            __u64 *p = bpf_map_lookup_elem(&h, &k); aux = p ? (__s64)*p : -1; break; }
  case 8: k &= 0xff; r = bpf_map_delete_elem(&h, &k); break;
  case 9: { __u64 v = cm.seed; k &= 0xff; r = bpf_map_update_elem(&arr, &k, &v, fl);
            aux = bpf_map_delete_elem(&arr, &k); break; }
  case 10: { struct lpm_key lk = { .plen = cm.arg & 63 }; __builtin_memcpy(lk.addr, cm.a, 4); __u32 v = cm.seed;
             r = bpf_map_update_elem(&lpm, &lk, &v, fl);
             struct lpm_key q = { .plen = 32 }; __builtin_memcpy(q.addr, cm.b, 4);
             __u32 *p = bpf_map_lookup_elem(&lpm, &q); aux = p ? *p : -1; break; }
  case 11: { struct lpm_key lk = { .plen = cm.arg & 63 }; __builtin_memcpy(lk.addr, cm.a, 4);
             r = bpf_map_delete_elem(&lpm, &lk); break; }
  case 12: { __u64 v = cm.seed; k &= 0xff; r = bpf_map_update_elem(&ph, &k, &v, fl);
             __u64 *p = bpf_map_lookup_elem(&ph, &k); if (p) { *p += 1; aux = *p; } else aux = -1; break; }
  case 13: r = bpf_xdp_get_buff_len(c); break;
  case 14: act = bpf_redirect(cm.arg & 0xff, (__u32)cm.arg >> 8); r = act; break;
  case 15: act = bpf_redirect_map(&dm, cm.arg & 0xff, (__u32)cm.arg >> 8); r = act; break;
  case 16: { __u32 *p = bpf_map_lookup_elem(&dm, &k); aux = p ? (__s64)*p : -1; break; }
  default: return XDP_DROP;
  }
  O(0, r); O(1, aux);
  d = (void *)(long)c->data; e = (void *)(long)c->data_end;
  O(2, e - d); O(3, d - (void *)(long)c->data_meta);
  return act;
}
char LICENSE[] SEC("license") = "GPL";
'''


def cmd(op: int, arg: int, seed: int = 0, a: bytes = bytes(16), b: bytes = bytes(16), size: int = 64) -> bytes:
    eth = bytes.fromhex("020000000002" "020000000001" "88b5")
    body = struct.pack("<B3xiI16s16s", op, arg, seed, a.ljust(16, b"\0"), b.ljust(16, b"\0"))
    frame = eth + body
    return frame + bytes((i * 7 + 3) & 0xFF for i in range(len(frame), max(size, len(frame))))


def _packets() -> list[bytes]:
    pk = [bytes(10), bytes(13), bytes(14), bytes(20)]             # refused / too short for a command
    for size in (60, 64, 300, 3520, 3521, 5000, 9000):
        for off in (-300, -217, -216, -100, -1, 0, 1, 46, 50, size - 14, size - 13):
            pk.append(cmd(0, off, size=size))
        for off in (-256, -220, -216, -212, -9, -8, -2, 0, 4):
            pk.append(cmd(1, off, size=size))
        for off in (-(size - 13), -(size - 14), -(size - 3520), -(size - 3519), -4096, -100, -1, 0, 1, 100,
                    3520 - size, 3521 - size, 2000, 4096):
            pk.append(cmd(2, off, size=size))
        for off in (-300, -208, -200, -1, 0, 8, 40):
            pk.append(cmd(3, off, size=size))
        for off in (0, 8, 3512, 3513, size - 8, size - 7, 65535, 65536):
            pk.append(cmd(5, off, size=size))
        for off in (0, 60, 3518, 3519, size - 4, size - 3):
            pk.append(cmd(6, off, size=size))
        pk.append(cmd(13, 0, size=size))
    a = bytes.fromhex("12345678 9abcdef0 ffff0000 0000ffff".replace(" ", ""))
    b = bytes.fromhex("11111111 22222222 33333333 44444444".replace(" ", ""))
    for sizes in (0x00, 0x40, 0x04, 0x44, 0x88, 0xCC, 0xFF, 0x23, 0x30, 0x0B):
        for seed in (0, 1, 0xFFFF, 0x12345678, 0xFFFFFFFF):
            pk.append(cmd(4, sizes, seed, a, b))
    pk.append(cmd(4, 0x00, 0, bytes(16), bytes(16)))
    pk.append(cmd(4, 0xCC, 0, bytes(16), bytes(16)))
    pk.append(cmd(4, 0xCC, 0, b"\xff" * 16, b"\xff" * 16))
    # hash: flags ANY/NOEXIST/EXIST/LOCK/bad, capacity 4, delete
    for key, flags, seed in ((1, 0, 11), (1, 1, 12), (1, 2, 13), (2, 2, 14), (2, 1, 15), (3, 0, 16), (4, 0, 17),
                             (5, 0, 18), (5, 1, 19), (1, 0, 20), (1, 4, 21), (1, 3, 22), (6, 7, 23)):
        pk.append(cmd(7, key | flags << 16, seed))
    for key in (9, 4, 4, 5):
        pk.append(cmd(8, key))
    pk.append(cmd(7, 5 | 1 << 16, 24))
    for key, flags in ((0, 0), (3, 2), (4, 0), (1, 1), (2, 4), (2, 3)):
        pk.append(cmd(9, key | flags << 16, 99))
    ip = lambda s: bytes(int(x) for x in s.split("."))
    for plen, addr, flags, q in ((8, "10.0.0.0", 0, "10.1.2.3"), (16, "10.1.0.0", 0, "10.1.2.3"),
                                 (16, "10.1.255.255", 1, "10.1.9.9"), (16, "10.2.0.0", 2, "10.2.0.1"),
                                 (24, "10.1.2.0", 0, "10.1.2.3"), (0, "0.0.0.0", 0, "9.9.9.9"),
                                 (33, "1.2.3.4", 0, "1.2.3.4"), (16, "10.1.0.0", 4, "10.1.0.1")):
        pk.append(cmd(10, plen | flags << 16, plen * 3 + 1, ip(addr), ip(q)))
    for plen, addr in ((24, "10.1.2.0"), (24, "10.1.2.0"), (33, "0.0.0.0")):
        pk.append(cmd(11, plen, 0, ip(addr)))
    pk.append(cmd(10, 0, 5, ip("0.0.0.0"), ip("9.9.9.9")))
    for key, flags in ((1, 0), (1, 1), (1, 2), (2, 2), (2, 0), (3, 0), (1, 0)):
        pk.append(cmd(12, key | flags << 16, 1000 + key))
    for arg in (2, 2 | 1 << 8, 0, 5, 1 | 3 << 8 << 8):
        pk.append(cmd(14, arg))
    for arg in (0, 1, 3, 4, 1 | 2 << 8, 3 | 1 << 8, 3 | 2 << 8, 1 | 8 << 8, 3 | 8 << 8, 1 | 4 << 8, 1 | 16 << 8):
        pk.append(cmd(15, arg))
    for key in (0, 1, 4):
        pk.append(cmd(16, key))
    pk.append(cmd(99, 0))
    return pk


@pytest.fixture(scope="module")
def probe_obj(tmp_path_factory):
    return build_bpf(tmp_path_factory.mktemp("probe"), "probe", PROBE_C)


MAPS = {"dm": [{"key": "01000000", "value": "01000000"}]}


@needs_kernel
def test_probe_matches_kernel(probe_obj):
    from emulator import kernel as K
    from emulator.interp.interpreter import Interpreter
    from emulator.runtime import PacketInput, Session
    from isa.loader import load

    packets = _packets()
    sess = Session(load(probe_obj), executor=Interpreter, maps=MAPS)
    diffs = []
    with K.KernelProgram(probe_obj, None, MAPS) as kp:
        for i, data in enumerate(packets):
            kr = kp.run(data)
            tr = sess.run(PacketInput(i, data, len(data)))
            if kr.error is not None or tr.error is not None:
                if (kr.error is None) != (tr.error is None):
                    diffs.append((i, data[14:22].hex(), len(data), "refusal", kr.error, tr.error))
                continue
            if (kr.action, kr.data, kr.meta) != (tr.action, tr.data, tr.meta):
                diffs.append((i, data[14:22].hex(), len(data), (kr.action, len(kr.data), kr.meta.hex()),
                              (tr.action, len(tr.data), tr.meta.hex())))
            km, tm = kp.dump_maps(), sess.dump_maps()
            if km != tm:
                diffs.append((i, data[14:22].hex(), len(data), "maps", km, tm))
            if len(diffs) > 5:
                break
    assert not diffs, diffs


@needs_kernel
def test_ingress_devices_match_kernel(probe_obj):
    """Packets on a veth device (verify's private namespace): same context values, and
    fragment growth refused (-EOPNOTSUPP) as on the kernel's veth rx queues."""
    from emulator import kernel as K
    from emulator.kernel import netns
    from emulator.interp.interpreter import Interpreter
    from emulator.runtime import PacketInput, Session
    from isa.loader import load

    reason = netns.netns_unavailable_reason()
    if reason:
        pytest.skip(f"no private network namespace: {reason}")
    ns = netns.PrivateNetns(netns.make_plan({(2, 0), (2, 1)}, None, set()))
    ns.enter()
    try:
        sess = Session(load(probe_obj), executor=Interpreter, maps=MAPS)
        with K.KernelProgram(probe_obj, None, MAPS) as kp:
            for i, (size, op, arg) in enumerate(((5000, 2, 1), (5000, 2, -1), (60, 2, 100), (5000, 13, 0))):
                data = cmd(op, arg, size=size)
                for ifx, q in ((2, 0), (2, 1), (1, 0)):
                    kr = kp.run(data, ifx, q)
                    tr = sess.run(PacketInput(i, data, len(data), 0, ifx, q))
                    assert (kr.action, kr.data, kr.meta) == (tr.action, tr.data, tr.meta)
                    assert kp.dump_maps() == sess.dump_maps(), (size, op, arg, ifx, q)
    finally:
        ns.close()
