"""The target registry (hxdpc.targets): one entry is all a new executor needs.

A test-only target, the interpreter counting the packets it runs, is registered here and
nowhere else; emulate, verify and conformance must all run it, with its own figures."""
from __future__ import annotations

import json
import re
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, needs_kernel
from emulator.interp.interpreter import DEFAULT_BUDGET, Interpreter
from emulator.runtime.session import Session
from hxdpc import targets
from hxdpc.cli import main
from isa.errors import InputError
from isa.loader import load


class Counting:
    """The reference interpreter, counting the packets it was given."""

    built: list["Counting"] = []

    def __init__(self, program):
        self.inner = Interpreter(program)
        self.packets = 0
        Counting.built.append(self)

    def run(self, env, r1, budget=DEFAULT_BUDGET):
        self.packets += 1
        return self.inner.run(env, r1, budget)


COUNTING = targets.Target("counting", lambda program, options: Counting(program),
                          figures=lambda ex: {"counted": ex.packets},
                          figures_text=lambda ex: f"counted by the target: {ex.packets}")


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(targets.TARGETS, "counting", COUNTING)
    return COUNTING


def invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


XDP1 = SAMPLES / "xdp1.o"
XDP1_PCAP = SAMPLES / "pcaps" / "xdp1-normal.pcap"


def test_emulate_runs_a_registered_target_with_its_figures(tmp_path, counting):
    code, out = invoke("emulate", XDP1, "--pcap", XDP1_PCAP, "--target", "counting", "--stats",
                       "--stats-json", tmp_path / "s.json", "--results", tmp_path / "r.jsonl")
    assert code == 0, out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["target"] == "counting"
    assert stats["counted"] == stats["packets"] > 0
    assert f"counted by the target: {stats['packets']}" in out.splitlines()
    ref = tmp_path / "ref.jsonl"
    assert invoke("emulate", XDP1, "--pcap", XDP1_PCAP, "--results", ref)[0] == 0
    assert (tmp_path / "r.jsonl").read_text() == ref.read_text()


def test_an_unregistered_target_is_not_a_choice():
    code, out = invoke("emulate", XDP1, "--pcap", XDP1_PCAP, "--target", "counting")
    registered = ", ".join(f"'{n}'" for n in targets.names())
    assert code == 2 and f"'counting' is not one of {registered}." in out


def test_conformance_runs_a_registered_target(tmp_path, counting):
    (tmp_path / "three.data").write_text("-- asm\nmov %r0, 3\nexit\n-- result\n0x3\n")
    (tmp_path / "four.data").write_text("-- asm\nmov %r0, 3\nexit\n-- result\n0x4\n")
    code, out = invoke("conformance", tmp_path, "--target", "counting")
    assert code == 1
    assert out.splitlines() == ["FAIL four: [counting] r0 = 0x3, expected 0x4", "1 passed, 1 failed"]
    code, out = invoke("conformance", tmp_path, "--target", "all")
    assert "[interp]" in out and "[counting]" in out.splitlines()[0]


def test_a_target_conformance_cannot_run_is_left_out(tmp_path, monkeypatch):
    monkeypatch.setitem(targets.TARGETS, "nomem", targets.Target(
        "nomem", lambda program, options: Counting(program), conformance=False))
    assert "nomem" not in targets.conformance_factories("all")
    assert "nomem" in targets.names()
    with pytest.raises(InputError, match="unknown target 'nomem'"):
        targets.conformance_factories("nomem")


@needs_kernel
def test_verify_runs_a_registered_target(counting):
    from emulator.runtime.pcapio import read_packets
    Counting.built.clear()
    code, out = invoke("verify", XDP1, "--pcap", XDP1_PCAP, "--target", "counting")
    assert code == 0, out
    assert re.fullmatch(r"\d+ passed, 0 failed, 0 skipped", out.splitlines()[-1]), out
    assert [c.packets for c in Counting.built] == [len(list(read_packets(str(XDP1_PCAP))))]


def test_session_takes_an_executor_or_a_factory():
    program = load(str(XDP1))
    ex = Counting(program)
    assert Session(program, executor=ex).executor is ex
    assert isinstance(Session(program, executor=Counting).executor, Counting)
    assert isinstance(Session(program, executor=Interpreter).executor, Interpreter)


def test_unknown_target_by_name():
    with pytest.raises(InputError, match="unknown target 'nope'"):
        targets.build("nope", load(str(XDP1)))


def test_sephirot_runs_at_the_emulation_depth(monkeypatch):
    """Every way to Sephirot compiles with the same options (there was one at depth 256)."""
    from hxdpc import compiler
    seen = []
    real = compiler.compile_program
    monkeypatch.setattr(compiler, "compile_program", lambda p, o=None: seen.append(o) or real(p, o))
    program = load(str(XDP1))
    targets.build("sephirot", program)
    targets.conformance_factories("sephirot")["sephirot"](program)
    assert [o.depth for o in seen] == [targets.EMULATION_DEPTH] * 2
