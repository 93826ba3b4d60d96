"""THE target registry: every executor the toolchain runs programs on, in one table.

Like the kernel's `bpf_prog_select_runtime`, one place picks the executor: `--target`
choices, `hxdpc emulate`, `verify` and `conformance` read `TARGETS`, build an executor with
`build(name, program)` and hand that object to the runtime's Session (which knows no target
by name).  A new executor is one module plus one `register(Target(...))` here.

This is the only module that joins the compiler and the emulators: Sephirot runs an Image,
so its builder compiles the program and injects `compile_fn` for tail-call targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import click

from emulator.runtime.env import Executor
from isa.errors import InputError
from isa.image import Image
from isa.program import Program

EMULATION_DEPTH = 4096     # Sephirot's instruction memory in the emulator
HARDWARE_DEPTH = 256       # rows of Sephirot's instruction memory (CompileOptions().depth)


@dataclass(frozen=True)
class BuildOptions:
    """What a command may tell a builder; None keeps the executor's own default."""
    clock_mhz: Optional[float] = None     # Sephirot's clock (its timing table's by default)
    warn: Optional[Callable[[str], None]] = None   # told of programs too big for the hardware


@dataclass(frozen=True)
class Target:
    """One executor: how to build it and what it offers beyond r0 and the packet.

    `build(program, options)` makes the executor for a loaded Program; `build_image`, when
    set, makes it for an instruction-memory Image file given as PROG.  `figures(executor)`
    is a dict of stream figures merged into `emulate --stats-json` and `figures_text` their
    `--stats` lines.  `conformance` says whether bpf_conformance tests can run on it (they
    run a Program on a bare memory block); `trace` whether it has `trace_packets` and
    `format_trace(n)` for `emulate --trace`."""
    name: str
    build: Callable[[Program, BuildOptions], Executor]
    build_image: Optional[Callable[[Image, BuildOptions], Executor]] = None
    figures: Optional[Callable[[Executor], dict]] = None
    figures_text: Optional[Callable[[Executor], str]] = None
    conformance: bool = True
    trace: bool = False


TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    """Add a target (its name becomes a `--target` choice of every command)."""
    TARGETS[target.name] = target
    return target


def names(*, conformance: bool = False) -> list[str]:
    """Target names in registration order (only those conformance can run, if asked)."""
    return [n for n, t in TARGETS.items() if t.conformance or not conformance]


def get(name: str) -> Target:
    t = TARGETS.get(name)
    if t is None:
        raise InputError("--target", f"unknown target {name!r} ({', '.join(TARGETS)})")
    return t


def build(name: str, program: Program, options: BuildOptions = BuildOptions()) -> Executor:
    """The executor of target `name` for `program`."""
    return get(name).build(program, options)


def conformance_factories(name: str) -> dict[str, Callable[[Program], Executor]]:
    """`emulator.conformance.run_test`'s targets: the one named, or every one for 'all'."""
    chosen = names(conformance=True) if name == "all" else [name]
    for n in chosen:
        if n not in TARGETS or not TARGETS[n].conformance:
            raise InputError("--target", f"unknown target {n!r} (one of "
                                         f"{', '.join(names(conformance=True))}, all)")
    return {n: _factory(TARGETS[n]) for n in chosen}


class TargetChoice(click.Choice):
    """`--target`'s choices, read from the registry when the command line is parsed (so a
    target registered after the command module was imported is a choice too)."""

    def __init__(self, *, conformance: bool = False, extra: tuple[str, ...] = ()):
        self._conformance, self._extra = conformance, tuple(extra)
        super().__init__(self.choices)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(names(conformance=self._conformance)) + self._extra

    @choices.setter
    def choices(self, _value) -> None:
        """click.Choice sets its list once; ours is the registry's."""


def _factory(target: Target) -> Callable[[Program], Executor]:
    return lambda program: target.build(program, BuildOptions())


# ---------------------------------------------------------------- the targets

def _interp(program: Program, options: BuildOptions) -> Executor:
    from emulator.interp.interpreter import Interpreter
    return Interpreter(program)


def _fast(program: Program, options: BuildOptions) -> Executor:
    from emulator.interp.fastpath import FastPath
    return FastPath(program)


def depth_note(program: Program, rows: int) -> str:
    """What to tell the user when `program` needs more rows than the hardware has ('' if not)."""
    if rows <= HARDWARE_DEPTH:
        return ""
    return (f"{program.name} needs {rows} rows, more than Sephirot's {HARDWARE_DEPTH}-row instruction "
            f"memory: emulated on a {EMULATION_DEPTH}-row memory (hxdpc compile refuses it)")


def make_sephirot_executor(program: Program, options=None,
                           warn: Optional[Callable[[str], None]] = None, **kw):
    """`emulator.sephirot.Sephirot` running `program` compiled with `options` (a
    CompileOptions; default: every optimisation, and an instruction memory of
    EMULATION_DEPTH rows so that large programs such as Katran still run in the emulator;
    `hxdpc compile` keeps the real 256-row limit); tail-call targets are compiled with the
    same options through the injected `compile_fn`.  `warn` is told (depth_note) of each
    program, entry or tail-call target, that would not fit the real memory."""
    from emulator.sephirot import Sephirot
    from hxdpc.compiler import CompileOptions, compile_program
    opts = options or CompileOptions(depth=EMULATION_DEPTH)

    def compile_image(p: Program) -> Image:
        res = compile_program(p, opts)
        note = depth_note(p, res.report["rows"])
        if note and warn is not None:
            warn(note)
        return res.image
    return Sephirot(compile_image(program), compile_fn=compile_image, **kw)


def _sephirot(program: Program, options: BuildOptions) -> Executor:
    return make_sephirot_executor(program, warn=options.warn, clock_mhz=options.clock_mhz)


def _sephirot_image(image: Image, options: BuildOptions) -> Executor:
    from emulator.sephirot import Sephirot
    return Sephirot(image, clock_mhz=options.clock_mhz)


def _sephirot_text(executor) -> str:
    from emulator.sephirot import format_stats
    return format_stats(executor.stats)


register(Target("interp", _interp))
register(Target("fast", _fast))
register(Target("sephirot", _sephirot, build_image=_sephirot_image,
                figures=lambda executor: executor.stats.to_json(), figures_text=_sephirot_text,
                trace=True))


def _x86(program: Program, options: BuildOptions) -> Executor:
    from emulator.x86.executor import X86
    return X86(program)


register(Target("x86", _x86, figures=lambda executor: executor.figures(),
                figures_text=lambda executor: executor.figures_text()))
