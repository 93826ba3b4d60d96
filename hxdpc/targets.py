"""Glue between the compiler and the emulators: compile a program for a target.

The emulator never imports compiler passes (docs/DEVELOPING.md); this module does both:
it compiles and hands Sephirot the Image plus a compile function for tail-call targets.
"""
from __future__ import annotations

from typing import Optional

from hxdpc.compiler import CompileOptions, compile_program
from isa.program import Program


EMULATION_DEPTH = 4096


def make_sephirot_executor(program: Program, options: Optional[CompileOptions] = None, **kw):
    """`emulator.sephirot.Sephirot` running `program` compiled with `options` (default:
    every optimisation, and an instruction memory of EMULATION_DEPTH rows so that large
    programs such as Katran still run in the emulator; `hxdpc compile` keeps the real
    256-row limit); tail-call targets are compiled with the same options."""
    from emulator.sephirot import Sephirot
    opts = options or CompileOptions(depth=EMULATION_DEPTH)
    image = compile_program(program, opts).image
    return Sephirot(image, compile_fn=lambda p: compile_program(p, opts).image, **kw)
