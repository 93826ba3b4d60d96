"""The x86 target: its translation (Linux JIT model) run in unicorn gives the interpreter's
results on every sample program, pcap and preset, on the conformance suite, and on each
tricky variant (division by zero, masked shifts, sign extensions, byte swaps, atomics,
bpf_loop callbacks, tail calls, faults, the budget)."""
from __future__ import annotations

from functools import lru_cache

import pytest
from click.testing import CliRunner

from conftest import CONFORMANCE_DIR, needs_shared
from test_equivalence import PCAPS, _kwargs, _program, _view, pcaps_of, sample_names
from emulator import conformance
from emulator.conformance import ConformanceEnv, assemble
from emulator.interp.interpreter import Interpreter
from emulator.runtime.pcapio import read_packets
from emulator.runtime.session import Session
from emulator.x86.executor import X86
from emulator.x86.translate import translate
from hxdpc import targets
from hxdpc.cli import main
from isa.program import Program

CASES = [(n, p.name) for n in sample_names() for p in pcaps_of(n)]


@lru_cache(maxsize=None)
def _packets(pcap: str):
    return list(read_packets(str(PCAPS / pcap)))


def _stream(name: str, pcap: str, executor):
    s = Session(_program(name), executor=executor, **_kwargs(name))
    res = [s.run(p) for p in _packets(pcap)]
    return [_view(r) for r in res], [r.error for r in res], s.dump_maps()


@pytest.mark.parametrize("name,pcap", CASES)
def test_samples_equal_the_interpreter(name, pcap):
    want, want_err, want_maps = _stream(name, pcap, Interpreter)
    got, got_err, got_maps = _stream(name, pcap, X86)
    for k, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"{name} on {pcap}, packet {k}: interpreter {w}, x86 {g} ({got_err[k]})"
    assert got_err == want_err
    assert got_maps == want_maps
