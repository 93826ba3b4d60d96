"""The compiler figure (benchmarks/bench_compiler.py): small multiples with labelled axes."""
import importlib.util
import re

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_compiler", ROOT / "benchmarks" / "bench_compiler.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_relative_rows_and_median():
    assert bench.relative_rows(["-", 10, 8, 5, 5, 5, 5, 5]) == [None, 1.0, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5]
    lanes = {"a": [20, 10, 8, 6, 6, 6, 6, 6], "b": ["-", 10, 9, 9, 9, 9, 9, 9], "c": [30, 10, 7, 7, 7, 7, 7, 7]}
    assert bench.median_curve(lanes)[:4] == [3.0, 1.0, 0.8, 0.7]


def test_one_panel_per_program_with_labelled_axes():
    lanes = {f"p{i}": [20, 10, 8, 7, 7, 7, 7, 7] for i in range(23)}
    red = {"x": {f: 1 for f in bench.FLAGS}, "y": {f: 2 for f in bench.FLAGS}}
    out = bench.svg(lanes, red)
    titles = re.findall(r'font-weight="bold">([^<]+)</text>', out)
    assert titles == ["median of all"] + [f"p{i} (10)" for i in range(23)]
    assert out.count(">lanes</text>") == bench.PANEL_COLS           # the bottom row of panels
    assert out.count(">rows / rows at 2</text>") == 4                  # the left column, 24 panels
    assert ">rows saved</text>" in out and ">sample program</text>" in out
    width = float(re.search(r'<svg[^>]* width="(\d+)"', out).group(1))
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)"', out)]
    assert max(xs) < width
