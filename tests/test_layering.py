"""The layering rule isa <- emulator <- hxdpc, enforced by import-linter's contracts in
pyproject.toml (isa imports neither emulator nor hxdpc; emulator does not import hxdpc)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("isa", "emulator", "hxdpc")

pytest.importorskip("importlinter", reason="import-linter is in the test extra (pip install -e .[test])")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the tree at `root` (its pyproject.toml, its packages first on the path)."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def copy_tree(dest: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_tree_keeps_the_layers():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize("module, bad_import", [
    ("isa/insn.py", "import emulator.interpreter"),
    ("isa/opcodes.py", "from hxdpc import compiler"),
    ("emulator/runtime/session.py", "from hxdpc.compiler import compile_program"),
])
def test_an_upward_import_breaks_a_contract(tmp_path, module, bad_import):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{bad_import}  # upward: must break the layering\n")
    r = lint_imports(tree)
    assert r.returncode != 0, r.stdout
    assert "BROKEN" in r.stdout or "broken" in r.stdout
    assert bad_import.split()[1].split(".")[0] in r.stdout
