"""Helpers shared by the compiler tests: run a program on the reference interpreter and,
compiled, on Sephirot (strict: schedule violations raise), packet by packet."""
from __future__ import annotations

from emulator.runtime.results import PacketInput
from emulator.interp.interpreter import Interpreter
from emulator.runtime.session import Session
from hxdpc.compiler import CompileOptions
from hxdpc.targets import make_sephirot_executor


def outcomes(program, packets, options: CompileOptions = CompileOptions(), maps=None, **session_kw):
    """[(interpreter result, sephirot result)] as (action, data bytes, error?) per packet,
    plus the two map dumps.  `session_kw` go to both Sessions (programs=, fib=)."""
    a = Session(program, executor=Interpreter, maps=maps, **session_kw)
    b = Session(program, executor=make_sephirot_executor(program, options, strict=True), maps=maps, **session_kw)
    out = []
    for n, data in enumerate(packets):
        pkt = PacketInput(n, bytes(data), len(data))
        ra, rb = a.run(pkt), b.run(pkt)
        out.append(((ra.action, ra.data, ra.error is None, ra.redirect),
                    (rb.action, rb.data, rb.error is None, rb.redirect)))
    return out, a.dump_maps(), b.dump_maps()


def assert_equivalent(program, packets, options: CompileOptions = CompileOptions(), maps=None, **session_kw):
    res, ma, mb = outcomes(program, packets, options, maps, **session_kw)
    for n, (x, y) in enumerate(res):
        assert x == y, f"packet {n} ({len(packets[n])} bytes): interpreter {x[:3]} sephirot {y[:3]}"
    assert ma == mb
