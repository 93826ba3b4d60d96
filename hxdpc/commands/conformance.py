"""`hxdpc conformance [DIR] [--target interp|fast|sephirot|all]`: run the bpf_conformance suite."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from emulator import conformance
from hxdpc import targets as T

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = Path("..") / "shared" / "reference" / "bpf_conformance" / "tests"


def default_dir() -> Path:
    """The suite beside the checkout (../shared/...), relative to the project root."""
    return (ROOT / DEFAULT_DIR).resolve()


@click.command("conformance", epilog="\b\nExamples:\n  hxdpc conformance\n  hxdpc conformance --target all")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", default="interp", show_default=True,
              type=T.TargetChoice(conformance=True, extra=("all",)),
              help="executor to run the tests on; with 'all' a test passes only if it passes on every one")
@click.option("--budget", default=conformance.DEFAULT_BUDGET, show_default=True, type=click.IntRange(1),
              help="instructions a test may execute before it fails")
def command(directory, target, budget):
    """Run the bpf_conformance `.data` tests in DIRECTORY.

    DIRECTORY defaults to ../shared/reference/bpf_conformance/tests beside the project.
    Prints each failing test with its reason and a last line `N passed, M failed`; exit
    status 1 when a test failed, 2 for a bad DIRECTORY."""
    directory = directory if directory is not None else conformance.default_dir()
    tests = conformance.load_dir(directory)
    targets = T.conformance_factories(target)
    passed = failed = 0
    for t in tests:
        out = conformance.run_test(t, targets, budget)
        if out.passed:
            passed += 1
            continue
        failed += 1
        reasons = "; ".join(f"[{name}] {reason}" for name, reason in out.failures.items())
        click.echo(f"FAIL {t.name}: {reasons}")
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

