"""benchmarks/bench_x86.py (hXDP vs x86) and the x86 figures of `hxdpc compile --report`."""
import importlib.util
import json
import sys
import types
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from conftest import ROOT, KERNEL_REASON
from hxdpc.commands.compile import x86_static_figures
from isa.errors import InputError
from isa.loader import load

spec = importlib.util.spec_from_file_location("bench_x86", ROOT / "benchmarks" / "bench_x86.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_x86"] = bench          # its dataclasses look their module up by name
spec.loader.exec_module(bench)
X86_MISSING = bench.x86_reason()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bx") / "bx.json"
    svg = out.with_suffix(".svg")
    import io
    import contextlib
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = bench.main(["--quick", "--programs", "ubench_tx", "--json", str(out), "--svg", str(svg)])
    assert rc == 0
    return json.loads(out.read_text()), svg.read_text(), text.getvalue()


def test_quick_run_static_and_sephirot_figures(quick):
    data, _, text = quick
    (row,) = data["programs"]
    assert row["name"] == "ubench_tx" and row["ebpf_insns"] > 0 and row["rows"] > 0
    assert 1 <= row["static_ipc"] <= 4
    assert row["cycles_per_packet"] > 0
    assert row["hxdp_mpps"] == pytest.approx(bench.HXDP_MHZ / row["cycles_per_packet"], rel=1e-3)
    assert row["fast_pps"] > 0
    assert "| ubench_tx |" in text and data["meta"]["cpu_mhz"] > 0


@pytest.mark.skipif(bool(KERNEL_REASON), reason=f"kernel: {KERNEL_REASON}")
def test_quick_run_kernel_figures(quick):
    (row,) = quick[0]["programs"]
    assert row["kernel_ns"] > 0 and row["floor_ns"] > 0 and row["kernel_mpps"] == pytest.approx(1e3 / row["kernel_ns"], rel=1e-2)
    assert row["faster"] == ("hXDP" if row["hxdp_mpps"] > row["kernel_mpps"] else "x86")
    if quick[0]["meta"]["bpf_jit_enable"]:
        assert row["x86_static_kernel"] > 0 and row["xlated_insns"] > 0


def test_quick_run_x86_columns(quick):
    data, _, text = quick
    (row,) = data["programs"]
    assert not X86_MISSING, X86_MISSING
    assert row["x86_static_ours"] > 0 and row["x86_insns_per_packet"] > 0 and row["x86_pps"] > 0
    if row["kernel_ns"]:
        cycles = row["kernel_ns"] * data["meta"]["cpu_mhz"] / 1e3
        assert row["x86_ipc"] == pytest.approx(row["x86_insns_per_packet"] / cycles, rel=1e-2)


def test_svg_is_well_formed_with_one_bar_per_figure(quick):
    data, svg, _ = quick
    root = ET.fromstring(svg)
    (row,) = data["programs"]
    static = [k for _, k, _ in bench.STATIC_SERIES if row[k] is not None]
    timed = [k for _, k, _ in bench.MPPS_SERIES
             if (row["paper"].get(k[6:]) if k.startswith("paper:") else row[k]) is not None]
    assert "paper:hxdp_mpps" in timed                   # ubench_tx: the paper's XDP_TX figure
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert len(titles) == len(static) + len(timed)


def test_unknown_program_is_one_line_and_exit_2(capsys):
    assert bench.main(["--quick", "--programs", "no_such"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--programs: unknown no_such") and err.count("\n") == 1


def test_cpu_clock_is_what_cpuinfo_says():
    mhz, source = bench.cpu_clock(0)
    assert mhz > 0 and "CPU 0" in source


def fake_translator(monkeypatch, translate):
    mod = types.ModuleType("emulator.x86.translate")
    mod.translate = translate
    monkeypatch.setitem(sys.modules, "emulator.x86", types.ModuleType("emulator.x86"))
    monkeypatch.setitem(sys.modules, "emulator.x86.translate", mod)


def test_report_x86_fields_come_from_the_translator(monkeypatch):
    program = load(str(ROOT / "sample_programs" / "xdp1.o"))
    fake_translator(monkeypatch, lambda p: types.SimpleNamespace(code=b"\x90" * len(p.insns), static_insns=7))
    assert x86_static_figures(program) == {"x86_static_insns": 7, "x86_bytes": len(program.insns)}


def test_report_says_why_the_translator_refuses(monkeypatch):
    def refuse(p):
        raise InputError(p.name, "helper 99 has no x86 lowering")
    fake_translator(monkeypatch, refuse)
    assert x86_static_figures(load(str(ROOT / "sample_programs" / "xdp1.o"))) == \
        {"x86_error": "helper 99 has no x86 lowering"}


def test_report_has_x86_fields(tmp_path):
    from hxdpc.cli import main
    rep = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["compile", str(ROOT / "sample_programs" / "xdp1.o"),
                                    "-o", str(tmp_path / "x.bin"), "--report", str(rep)])
    assert res.exit_code == 0, res.output
    report = json.loads(rep.read_text())
    assert report["x86_static_insns"] > 0 and report["x86_bytes"] >= report["x86_static_insns"]


class StandInX86:
    """The reference interpreter as a stand-in x86 executor: it reports 3 "x86" instructions
    per eBPF instruction run, so the bench's x86 columns can be checked without the translator."""

    def __init__(self, program):
        from emulator.interp.interpreter import Interpreter
        self.inner, self.steps, self.packets = Interpreter(program), 0, 0

    def run(self, env, r1, budget=None):
        r = self.inner.run(env, r1, budget) if budget is not None else self.inner.run(env, r1)
        self.packets += 1
        self.steps += r.steps
        return r


def test_x86_columns_follow_the_target_and_the_translator(monkeypatch, capsys, tmp_path):
    from hxdpc import targets
    fake_translator(monkeypatch, lambda p: types.SimpleNamespace(code=b"\x90" * 40, static_insns=40))
    monkeypatch.setitem(targets.TARGETS, "x86", targets.Target(
        "x86", lambda program, options: StandInX86(program),
        figures=lambda ex: {"x86_insns_per_packet": 3 * ex.steps / max(ex.packets, 1)}))
    assert bench.x86_reason() == ""
    out = tmp_path / "bx.json"
    assert bench.main(["--quick", "--programs", "xdp1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["programs"]
    fast = bench.emulate_figures(bench.sample_inputs("xdp1"), "fast")
    assert row["x86_static_ours"] == 40 and row["x86_bytes_ours"] == 40
    assert row["x86_insns_per_packet"] == pytest.approx(3 * fast["insns_per_packet"], rel=1e-3)
    assert row["x86_pps"] > 0
    if row["kernel_ns"]:
        cycles = row["kernel_ns"] * data["meta"]["cpu_mhz"] / 1e3
        assert row["x86_ipc"] == pytest.approx(row["x86_insns_per_packet"] / cycles, rel=1e-2)
    assert "x86 translator columns n/a" not in capsys.readouterr().out
