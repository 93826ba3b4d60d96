"""The instruction budget bounds each activation (the run, each bpf_loop callback call) on its
own: a program whose bpf_loop does more work in all than the budget still completes, as in the
kernel, while a runaway callback or main loop still ends (docs/runtime.md)."""
import json

import dpkt
import pytest
from click.testing import CliRunner

from conftest import build_bpf, needs_kernel
from emulator.runtime.results import PacketInput
from emulator.runtime.session import Session
from hxdpc import targets
from isa.asm import assemble
from isa.insn import Insn
from isa.opcodes import LDDW_FUNC
from isa.program import Program

LOOP_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
static long cb(__u32 i, void *ctx) { return 0; }
SEC("xdp") int xdp_loop(struct xdp_md *ctx) {
  long n = bpf_loop(NR, cb, 0, 0);
  return n == NR ? XDP_PASS : XDP_DROP;
}
char _license[] SEC("license") = "GPL";
"""
TARGETS = ["interp", "fast"]      # Sephirot has no call stack: the compiler rejects bpf_loop


def _program(callback: str, main_tail: str = "exit") -> Program:
    """main: r0 = bpf_loop(3, cb, 0, 0) then `main_tail`; cb: `callback` (slot 8 on)."""
    insns = assemble(f"mov %r1, 3\nmov %r3, 0\nmov %r4, 0\ncall 181\n{main_tail}\n")
    head = insns[:1] + [Insn(0x18, dst=2, src=LDDW_FUNC, imm=len(insns))] + insns[1:]
    return Program("t", head + assemble(callback))


def _run(program, target, budget=None):
    s = Session(program, executor=lambda p: targets.build(target, p), budget=budget)
    return s.run(PacketInput(0, bytes(64), 0))


@pytest.mark.parametrize("target", TARGETS)
def test_callbacks_are_not_charged_to_the_caller(target):
    # 3 calls of a 40-instruction callback: 120 > budget 50, yet each activation stays below it
    body = "mov %r0, 0\n" + "add %r0, 0\n" * 38 + "exit\n"
    r = _run(_program(body), target, budget=50)
    assert r.error is None and r.action == 3


@pytest.mark.parametrize("target", TARGETS)
def test_a_runaway_callback_still_ends(target):
    r = _run(_program("ja -1\n"), target, budget=500)
    assert r.error.startswith("instruction budget of 500 exhausted at pc "), r.error
    assert r.error.endswith("raise it with --budget N)")


@pytest.mark.parametrize("target", TARGETS)
def test_a_runaway_main_loop_calling_bpf_loop_still_ends(target):
    r = _run(_program("mov %r0, 0\nexit\n", main_tail="ja -6"), target, budget=300)
    assert r.error.startswith("instruction budget of 300 exhausted"), r.error


def _pcap(path):
    with open(path, "wb") as f:
        dpkt.pcap.Writer(f, linktype=1).writepkt(bytes(64), ts=1.0)
    return str(path)


@pytest.mark.parametrize("target", TARGETS)
def test_emulate_budget_option(tmp_path, target):
    from hxdpc.cli import main
    obj = build_bpf(tmp_path, "loop", LOOP_C.replace("NR", str(1 << 12)))
    out = tmp_path / "r.jsonl"
    args = ["emulate", obj, "--pcap", _pcap(tmp_path / "p.pcap"), "--target", target, "--results", str(out)]
    res = CliRunner().invoke(main, args + ["--budget", "5"])
    assert res.exit_code == 0, res.output
    line = json.loads(out.read_text())      # the main program alone runs 9 instructions
    assert line["error"].startswith("instruction budget of 5 exhausted at pc "), line
    assert line["error"].endswith("raise it with --budget N)")
    res = CliRunner().invoke(main, args + ["--budget", "20"])   # 4096 x 2 callback instructions
    assert res.exit_code == 0, res.output
    line = json.loads(out.read_text())
    assert line["action_name"] == "XDP_PASS" and "error" not in line, line


@needs_kernel
@pytest.mark.parametrize("target", TARGETS)
def test_verify_bpf_loop_beyond_the_budget_in_all(tmp_path, target):
    """The kernel runs bpf_loop(1 << 14) of an empty callback: 32k instructions in all, far more
    than --budget 1000, and the target completes the same way."""
    from hxdpc.cli import main
    obj = build_bpf(tmp_path, "loop", LOOP_C.replace("NR", str(1 << 14)))
    res = CliRunner().invoke(main, ["verify", obj, "--pcap", _pcap(tmp_path / "p.pcap"),
                                    "--target", target, "--budget", "1000"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == "1 passed, 0 failed, 0 skipped"


def test_interp_and_fast_agree_at_every_budget():
    """Where the budget ends (main or callback), the error's pc and the steps reported."""
    for callback, tail in (("mov %r0, 0\nadd %r0, 1\nadd %r0, -1\nexit\n", "exit"),
                           ("mov %r0, 0\nja -1\n", "exit"),
                           ("mov %r0, 0\nexit\n", "ja -6")):
        prog = _program(callback, tail)
        for budget in range(1, 12):
            a, b = _run(prog, "interp", budget), _run(prog, "fast", budget)
            assert (a.action, a.error, a.extra["steps"]) == (b.action, b.error, b.extra["steps"]), \
                (callback, tail, budget)
