"""The bpf_conformance suite on the interpreter and the fast path, and the runner itself."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CONFORMANCE_DIR, needs_shared
from emulator import conformance
from isa import layout
from emulator.conformance import ConformanceEnv, ConformanceTest, parse, run_test
from emulator.runtime.env import ProgramExit
from emulator.interp.fastpath import FastPath
from emulator.interp.interpreter import Interpreter
from hxdpc import targets
from hxdpc.cli import main
from isa.errors import InputError


def _tests():
    if not CONFORMANCE_DIR.is_dir():
        return []
    return conformance.load_dir(CONFORMANCE_DIR)


@needs_shared
def test_suite_is_all_there():
    assert len(_tests()) == 313


@needs_shared
@pytest.mark.parametrize("target", ["interp", "fast"])
def test_whole_suite(target):
    failures = {}
    for t in _tests():
        out = run_test(t, targets.conformance_factories(target))
        if not out.passed:
            failures[t.name] = out.failures[target]
    assert failures == {}


@needs_shared
def test_cli_prints_summary_and_exit_status():
    res = CliRunner().invoke(main, ["conformance", str(CONFORMANCE_DIR), "--target", "fast"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "313 passed, 0 failed"


@needs_shared
def test_cli_default_directory():
    res = CliRunner().invoke(main, ["conformance"])
    assert res.output.splitlines()[-1] == "313 passed, 0 failed"


def test_cli_failures_and_bad_directory(tmp_path: Path, monkeypatch):
    monkeypatch.delitem(targets.TARGETS, "sephirot")   # 'all' = interp + fast here
    monkeypatch.delitem(targets.TARGETS, "x86")
    (tmp_path / "good.data").write_text("-- asm\nmov %r0, 3\nexit\n-- result\n0x3\n")
    (tmp_path / "bad.data").write_text("-- asm\nmov %r0, 3\nexit\n-- result\n0x4\n")
    (tmp_path / "loops.data").write_text("-- asm\nja -1\n-- result\n0x0\n")
    res = CliRunner().invoke(main, ["conformance", str(tmp_path), "--target", "all", "--budget", "1000"])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[-1] == "1 passed, 2 failed"
    assert "FAIL bad: [interp] r0 = 0x3, expected 0x4; [fast] r0 = 0x3, expected 0x4" in lines
    assert any(line.startswith("FAIL loops: [interp] error: instruction budget of 1000 exhausted")
               for line in lines)
    assert len(lines) == 3      # one line per failing test
    res = CliRunner().invoke(main, ["conformance", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a directory" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert CliRunner().invoke(main, ["conformance", str(empty)]).exit_code == 2


def test_parse_sections():
    t = parse("# comment\n-- asm\nmov %r0, %r2\nexit\n-- mem\n00 01\n02 ff\n-- c\nint x;\n"
              "-- no register offset\n-- raw\n0xbf20000000000000\n0x0000000000000095\n-- result\n0x4\n",
              "x.data")
    assert t.name == "x" and t.mem == b"\x00\x01\x02\xff" and t.result == 4
    assert t.raw == [0xBF20000000000000, 0x95]
    assert "int x" not in t.asm


@pytest.mark.parametrize("text,word", [
    ("-- asm\nexit\n", "no '-- result'"),
    ("-- result\n0x1\n", "no '-- asm'"),
    ("-- asm\nexit\n-- result\nzz\n", "not a number"),
    ("-- asm\nexit\n-- result\n0x1\n-- mem\n0g\n", "hex byte"),
    ("-- asm\nexit\n-- result\n0x1\n-- bogus\n", "unknown section"),
    ("junk\n-- asm\nexit\n-- result\n0x1\n", "before the first section"),
])
def test_parse_errors(text, word):
    with pytest.raises(InputError) as e:
        parse(text, "f.data")
    assert word in str(e.value) and "f.data" in str(e.value)


def _targets():
    return {"interp": Interpreter, "fast": FastPath}


def test_raw_encoding_is_checked():
    good = ConformanceTest("t", "mov %r0, 1\nexit\n", 1, raw=[0x00000001000000B7, 0x95])
    assert run_test(good, _targets()).passed
    bad = ConformanceTest("t", "mov %r0, 1\nexit\n", 1, raw=[0x00000002000000B7, 0x95])
    out = run_test(bad, _targets())
    assert set(out.failures) == {"interp", "fast"} and "slot 0" in out.failures["fast"]


def test_memory_block_and_r2():
    t = ConformanceTest("t", "ldxb %r0, [%r1+2]\nadd %r0, %r2\nexit\n", 0x33 + 4, mem=b"\x11\x22\x33\x44")
    assert run_test(t, _targets()).passed
    t = ConformanceTest("t", "mov %r0, %r1\nadd %r0, %r2\nexit\n", 0)   # no mem: r1 = r2 = 0
    assert run_test(t, _targets()).passed


def test_unwind_helper():
    env = ConformanceEnv(b"\x01")
    assert env.r1 == layout.MEM_BASE and env.r2 == 1 and env.has_helper(5) and not env.has_helper(1)
    assert env.helper(5, (7, 0, 0, 0, 0), None) == 7
    with pytest.raises(ProgramExit):
        env.helper(5, (0, 0, 0, 0, 0), None)
    t = ConformanceTest("t", "mov %r1, 0\ncall 5\nmov %r0, 9\nexit\n", 0)
    assert run_test(t, _targets()).passed
    t = ConformanceTest("t", "call 1\nexit\n", 0)
    assert "unknown helper 1" in run_test(t, _targets()).failures["interp"]


def test_assembler_errors_fail_the_test():
    out = run_test(ConformanceTest("t", "frobnicate %r0\n", 0), _targets())
    assert not out.passed and out.failures["interp"].startswith("assembler:")


def test_unavailable_target_fails_with_reason():
    def broken(program):
        raise RuntimeError("no such executor")
    out = run_test(ConformanceTest("t", "mov %r0, 0\nexit\n", 0), {"broken": broken})
    assert out.failures == {"broken": "executor raised RuntimeError: no such executor"}


def test_default_directory_is_found_from_the_current_directory(tmp_path: Path, monkeypatch):
    """A non-editable install has no checkout around its modules: the suite beside the
    current directory must still be found (and the project's own as the fallback)."""
    suite = tmp_path / "shared" / "reference" / "bpf_conformance" / "tests"
    suite.mkdir(parents=True)
    (tmp_path / "proj").mkdir()
    monkeypatch.setattr(conformance, "PROJECT_ROOT", tmp_path / "site" / "packages")
    assert conformance.default_dir(tmp_path / "proj") == suite.resolve()


def test_default_directory_missing_is_one_clean_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(conformance, "PROJECT_ROOT", tmp_path / "site" / "packages")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["conformance"])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "bpf_conformance tests not found" in lines[0] and "give DIR" in lines[0]
