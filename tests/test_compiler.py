"""The compiler end to end: the artifact's inputs, the samples (equivalence with the
interpreter on Sephirot), the row targets, the command line and its report."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from compiler_util import assert_equivalent  # noqa: E402
from conftest import ARTIFACTS, SAMPLES, needs_shared  # noqa: E402

from hxdpc.cli import main
from hxdpc.compiler import CompileOptions, compile_program
from isa.loader import load
from hxdpc.passes.check import check_schedule
from isa.imagefmt import read_image

BYTECODE = ARTIFACTS / "bytecode"
ORIGINAL_ROWS = {"nec_udp_firewall": 36, "xdp1": 42, "xdp2": 48, "xdp_redirect_map_kern": 14,
                 "xdp_router_ipv4": 58, "xdp_rxq_info": 42}
REPORT_KEYS = {"insns_in", "rows", "static_ipc", "removed_bounds_checks", "removed_zeroing", "three_operand",
               "load48", "store48", "param_exit", "lanes", "version"}
OPTION_FLAGS = ["bounds_removal", "zero_removal", "three_operand", "load48", "param_exit", "code_motion"]


@needs_shared
@pytest.mark.parametrize("path", sorted(BYTECODE.glob("*.objdump")), ids=lambda p: p.stem)
def test_every_artifact_input_compiles(path):
    res = compile_program(load(str(path)), CompileOptions(depth=1024))
    assert check_schedule(res.image) == []
    assert res.report["rows"] < res.report["insns_in"]


@needs_shared
def test_rows_beat_the_original_compiler_by_15_percent():
    ours = {n: compile_program(load(str(BYTECODE / f"{n}.objdump"))).report["rows"] for n in ORIGINAL_ROWS}
    assert sum(ours.values()) <= 204, ours
    assert sum(ORIGINAL_ROWS.values()) == 240


@needs_shared
@pytest.mark.parametrize("flag", OPTION_FLAGS)
def test_each_optimisation_can_be_disabled(flag):
    p = load(str(BYTECODE / "nec_udp_firewall.objdump"))
    full = compile_program(p).report
    off = compile_program(p, dataclasses.replace(CompileOptions(), **{flag: False})).report
    assert check_schedule(compile_program(p, dataclasses.replace(CompileOptions(), **{flag: False})).image) == []
    assert off["rows"] >= full["rows"] - 1     # disabling never helps much (heuristics may wobble by one)


def _packets(name: str, limit: int) -> list[bytes]:
    from emulator.runtime.pcapio import read_packets
    out = []
    for pc in sorted((SAMPLES / "pcaps").glob(f"{name}-*")):
        out += [p.data for p in read_packets(str(pc))][:limit]
    return out


def _maps(name: str):
    f = SAMPLES / f"{name}.maps.json"
    return json.loads(f.read_text()) if f.exists() else None


def _session_kw(name: str) -> dict:
    """The object's other programs (tail-call targets) and the sample's FIB."""
    from isa.loader import load_all
    kw = {"programs": {p.name: p for p in load_all(str(SAMPLES / f"{name}.o"))}}
    fib = SAMPLES / f"{name}.fib.json"
    if fib.exists():
        from emulator.runtime.fib import load_fib
        kw["fib"] = load_fib(str(fib))
    return kw


SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.o")) if SAMPLES.exists() else []


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_samples_equivalent_on_sephirot(name):
    prog = load(str(SAMPLES / f"{name}.o"))
    assert_equivalent(prog, _packets(name, 25), CompileOptions(depth=4096), _maps(name), **_session_kw(name))


@pytest.mark.parametrize("flag", OPTION_FLAGS)
def test_samples_equivalent_with_each_optimisation_off(flag):
    for name in ("simple_firewall", "xdp2"):
        if name not in SAMPLE_NAMES:
            pytest.skip(f"{name}.o not built")
        prog = load(str(SAMPLES / f"{name}.o"))
        opts = dataclasses.replace(CompileOptions(depth=4096), **{flag: False})
        assert_equivalent(prog, _packets(name, 12), opts, _maps(name), **_session_kw(name))


@needs_shared
def test_cli_compile_writes_image_sidecar_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = str(BYTECODE / "xdp1.objdump")
    r = CliRunner().invoke(main, ["compile", src, "--report", "r.json", "--schedule-html", "s.html"])
    assert r.exit_code == 0, r.output
    rom = tmp_path / "xdp1.rom"
    assert rom.exists() and (tmp_path / "xdp1.rom.mapcfg.json").exists()
    rep = json.loads((tmp_path / "r.json").read_text())
    assert REPORT_KEYS <= set(rep) and rep["insns_in"] == 61 and rep["lanes"] == 4
    assert rep["static_ipc"] == round(sum(1 for row in read_image(rom).rows for x in row if x) / rep["rows"], 3)
    assert "<svg" in (tmp_path / "s.html").read_text()
    first = rom.read_bytes()
    assert CliRunner().invoke(main, ["compile", src]).exit_code == 0
    assert rom.read_bytes() == first               # deterministic
    r = CliRunner().invoke(main, ["compile", src, "--format", "json", "--lanes", "2", "--depth", "512",
                                  "-o", "x.json", "--no-code-motion", "--no-bounds-removal"])
    assert r.exit_code == 0, r.output
    img = read_image(tmp_path / "x.json")
    assert img.lanes == 2 and len(img.rows) == 512 and check_schedule(img) == []


@needs_shared
def test_cli_errors_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = str(BYTECODE / "xdp1.objdump")
    for args in (["--lanes", "2"], ["--depth", "8", "--format", "bin"], ["--lanes", "9", "--format", "bin"]):
        r = CliRunner().invoke(main, ["compile", src] + args)
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "missing.o")])
    assert r.exit_code == 2
