"""Glue between the compiler and the emulators: compile a program for a target.

The emulator never imports compiler passes (docs/DEVELOPING.md); this module does both:
it compiles and hands Sephirot the Image plus a compile function for tail-call targets.
"""
from __future__ import annotations

from typing import Callable, Optional

from hxdpc.compiler import CompileOptions, compile_program
from isa.program import Program


EMULATION_DEPTH = 4096
HARDWARE_DEPTH = CompileOptions().depth        # rows of Sephirot's instruction memory (256)


def depth_note(program: Program, rows: int) -> str:
    """What to tell the user when `program` needs more rows than the hardware has ('' if not)."""
    if rows <= HARDWARE_DEPTH:
        return ""
    return (f"{program.name} needs {rows} rows, more than Sephirot's {HARDWARE_DEPTH}-row instruction "
            f"memory: emulated on a {EMULATION_DEPTH}-row memory (hxdpc compile refuses it)")


def make_sephirot_executor(program: Program, options: Optional[CompileOptions] = None,
                           warn: Optional[Callable[[str], None]] = None, **kw):
    """`emulator.sephirot.Sephirot` running `program` compiled with `options` (default:
    every optimisation, and an instruction memory of EMULATION_DEPTH rows so that large
    programs still run in the emulator; `hxdpc compile` keeps the real 256-row limit);
    tail-call targets are compiled with the same options.  `warn` is told (depth_note) of
    each program, entry or tail-call target, that would not fit the real memory."""
    from emulator.sephirot import Sephirot
    opts = options or CompileOptions(depth=EMULATION_DEPTH)

    def compile_image(p: Program):
        res = compile_program(p, opts)
        note = depth_note(p, res.report["rows"])
        if note and warn is not None:
            warn(note)
        return res.image
    return Sephirot(compile_image(program), compile_fn=compile_image, **kw)
