"""The load-time helper check covers the selected program and what it reaches, not the whole
object: an unselected program (another section, or a tail-call candidate never placed in a
prog_array) may call a helper the runtime lacks. A tail call into such a program is the run's
fault, named there."""
import pytest

from conftest import build_bpf
from isa.errors import InputError

SOURCE = r'''
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } jmp SEC(".maps");
static __attribute__((noinline)) int verdict(struct xdp_md *c) { return c->data_end - c->data > 60 ? XDP_DROP : XDP_PASS; }
SEC("xdp") int xdp_main(struct xdp_md *c)
{
  bpf_tail_call(c, &jmp, 0);
  return verdict(c);
}
SEC("xdp") int xdp_cookie(struct xdp_md *c) { return bpf_get_socket_cookie(c) ? XDP_DROP : XDP_TX; }
SEC("sk_reuseport") int reuse(struct sk_reuseport_md *m) { return bpf_get_socket_cookie(m) ? SK_PASS : SK_DROP; }
char LICENSE[] SEC("license") = "GPL";
'''


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    return build_bpf(tmp_path_factory.mktemp("reach"), "reach", SOURCE)


def session(obj, name, maps=None, executor=None):
    from emulator.interp.interpreter import Interpreter
    from emulator.runtime import Session
    from isa.loader import load, load_all
    progs = {p.name: p for p in load_all(obj)}
    return Session(load(obj, name), executor=executor or Interpreter, maps=maps, programs=progs)


def packet(n=40):
    from emulator.runtime import PacketInput
    data = bytes.fromhex("020000000002020000000001" "0800") + bytes(n - 14)
    return PacketInput(0, data, len(data))


def test_unselected_programs_do_not_refuse_the_object(obj):
    s = session(obj, "xdp_main")                      # jmp empty: the tail call falls through
    assert s.run(packet(40)).action_name == "XDP_PASS"
    assert s.run(packet(100)).action_name == "XDP_DROP"   # the BPF-to-BPF callee ran


def test_selected_program_with_a_missing_helper_is_refused(obj):
    with pytest.raises(InputError) as e:
        session(obj, "xdp_cookie")
    assert "xdp_cookie: instruction" in str(e.value) and "bpf_get_socket_cookie" in str(e.value)


@pytest.mark.parametrize("engine", ["interpreter", "fastpath"])
def test_tail_call_into_a_missing_helper_is_the_runs_fault(obj, engine):
    from emulator.interp.fastpath import FastPath
    from emulator.interp.interpreter import Interpreter
    s = session(obj, "xdp_main", {"jmp": [{"key": "00000000", "value": "xdp_cookie"}]},
                {"interpreter": Interpreter, "fastpath": FastPath}[engine])
    r = s.run(packet())
    assert r.action_name == "XDP_ABORTED"
    assert "tail call into xdp_cookie" in r.error and "bpf_get_socket_cookie" in r.error, r.error


def test_cli_selects_one_program(obj, tmp_path):
    from click.testing import CliRunner
    from hxdpc.cli import main
    from test_verify import write_pcap
    pcap = write_pcap(tmp_path / "p.pcap", [packet().data])
    ok = CliRunner().invoke(main, ["emulate", obj, "-s", "xdp_main", "--pcap", pcap])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["emulate", obj, "-s", "reuse", "--pcap", pcap])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "bpf_get_socket_cookie" in bad.output and len(bad.output.strip().splitlines()) == 1, bad.output
