"""Runner for the bpf_conformance suite's `.data` tests on any executor.

A `.data` file has sections: ``-- asm`` (the program, bpf_conformance syntax), ``-- mem``
(hex bytes: the memory block r1 points to, r2 holding its length), ``-- result`` (expected
r0), ``-- raw`` (expected encoding, one 64-bit word per slot), and sections this runner
ignores (``-- c``, ``-- no register offset`` and their text).

The runner takes its executors as `targets`: a dict target name -> factory(program) ->
Executor; the commands build it from the target registry (hxdpc.targets).
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from isa import layout
from emulator.runtime.env import Env, Executor, ProgramExit
from emulator.interp.interpreter import DEFAULT_BUDGET
from emulator.runtime.memory import Region
from isa.errors import InputError, quote
from isa.insn import Insn, encode
from isa.opcodes import ALU_OPS, CLS_ALU64, M64, SRC_K
from isa.program import Function, Program

UNWIND_HELPER = 5
IGNORED_SECTIONS = ("c", "no register offset")
KNOWN_SECTIONS = ("asm", "mem", "result", "raw") + IGNORED_SECTIONS

Factory = Callable[[Program], Executor]


@dataclass
class ConformanceTest:
    name: str
    asm: str
    result: int
    mem: bytes = b""
    raw: Optional[list[int]] = None
    path: str = ""


@dataclass
class Outcome:
    name: str
    failures: dict[str, str] = field(default_factory=dict)   # target -> reason

    @property
    def passed(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------- parsing

_SECTION = re.compile(r"^--\s*(.*?)\s*$")


def parse(text: str, where: str = "<test>") -> ConformanceTest:
    """Parse one `.data` file; InputError names the file and line of what is wrong."""
    sections: dict[str, list[str]] = {}
    current: Optional[str] = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _SECTION.match(line)
        if m:
            current = m.group(1)
            if current not in KNOWN_SECTIONS:
                raise InputError(f"{where}:{lineno}", f"unknown section '-- {current}'")
            if current in sections:
                raise InputError(f"{where}:{lineno}", f"section '-- {current}' appears twice")
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise InputError(f"{where}:{lineno}", "text before the first section")
    if "asm" not in sections:
        raise InputError(where, "no '-- asm' section")
    if "result" not in sections:
        raise InputError(where, "no '-- result' section")
    return ConformanceTest(
        name=Path(where).stem, asm="\n".join(sections["asm"]) + "\n",
        result=_parse_result(sections["result"], where), mem=_parse_mem(sections.get("mem", []), where),
        raw=_parse_raw(sections["raw"], where) if "raw" in sections else None, path=where)


def _words(lines: list[str]) -> list[str]:
    return [w for line in lines for w in line.split("#", 1)[0].split()]


def _parse_result(lines: list[str], where: str) -> int:
    words = _words(lines)
    if len(words) != 1:
        raise InputError(where, f"'-- result' must hold one number, found {quote(words)}")
    try:
        return int(words[0], 0) & M64
    except ValueError:
        raise InputError(where, f"'-- result' is not a number: {quote(words[0])}") from None


def _parse_mem(lines: list[str], where: str) -> bytes:
    try:
        return bytes(int(w, 16) for w in _words(lines))
    except ValueError as e:
        raise InputError(where, f"'-- mem' holds something that is not a hex byte ({e})") from None


def _parse_raw(lines: list[str], where: str) -> list[int]:
    try:
        return [int(w, 16) & M64 for w in _words(lines)]
    except ValueError as e:
        raise InputError(where, f"'-- raw' holds something that is not a hex word ({e})") from None


SUITE_RELATIVE = Path("..") / "shared" / "reference" / "bpf_conformance" / "tests"
PROJECT_ROOT = Path(__file__).resolve().parent.parent   # the checkout (site-packages when installed)


def default_dir_candidates(cwd: Optional[Path] = None) -> list[Path]:
    """Where `hxdpc conformance` without DIR looks, in order: beside the current directory
    (run from the project root) and beside the project (an editable install from any directory).
    A non-editable install has no project around its modules, so the current directory counts."""
    here = Path.cwd() if cwd is None else Path(cwd)
    out: list[Path] = []
    for base in (here, PROJECT_ROOT):
        p = (base / SUITE_RELATIVE).resolve()
        if p not in out:
            out.append(p)
    return out


def default_dir(cwd: Optional[Path] = None) -> Path:
    """The first existing candidate; InputError (exit 2) naming what was tried when none exists."""
    tried = default_dir_candidates(cwd)
    for p in tried:
        if p.is_dir():
            return p
    raise InputError(str(SUITE_RELATIVE), "bpf_conformance tests not found (looked in "
                     + ", ".join(str(p) for p in tried) + "); give DIR")


def load_dir(directory: Path) -> list[ConformanceTest]:
    """Every `*.data` test of a directory, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(str(directory), "not a directory")
    files = sorted(directory.glob("*.data"))
    if not files:
        raise InputError(str(directory), "no .data tests in this directory")
    out = []
    for f in files:
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(str(f), f"cannot read: {e}") from None
        out.append(parse(text, str(f)))
    return out


# ---------------------------------------------------------------- the environment

class ConformanceEnv(Env):
    """The suite's world: the `-- mem` block at MEM_BASE and one helper, 5 = unwind."""

    def __init__(self, mem: bytes = b""):
        super().__init__()
        self.block: Optional[Region] = None
        if mem:
            self.block = self.mem.add(Region("mem", layout.MEM_BASE, bytearray(mem), True, "mem"))

    @property
    def r1(self) -> int:
        return layout.MEM_BASE if self.block is not None else 0

    @property
    def r2(self) -> int:
        return len(self.block.data) if self.block is not None else 0

    def has_helper(self, num: int) -> bool:
        return num == UNWIND_HELPER

    def helper(self, num, args, caller) -> int:
        if num != UNWIND_HELPER:
            return super().helper(num, args, caller)
        # unwind: returns its argument; a zero argument unwinds the whole program with r0 = 0
        if args[0] == 0:
            raise ProgramExit(0)
        return args[0]


# ---------------------------------------------------------------- running

def assemble(text: str) -> list[Insn]:
    """The project's assembler (isa.asm), as a list of instructions."""
    from isa import asm
    out = asm.assemble(text)
    if isinstance(out, Program):
        return list(out.insns)
    return list(out)


def with_r2(insns: list[Insn], r2: int) -> Program:
    """The program with `r2 = len(mem)` in front: the Executor interface passes only r1 (the
    XDP context), so the harness sets the suite's second argument with an instruction.
    Relative jumps and calls are unaffected by an instruction in front."""
    if not r2:
        return Program("conformance", list(insns), functions=[Function("main", 0)])
    mov = Insn(CLS_ALU64 | SRC_K | ALU_OPS["mov"], dst=2, imm=r2)
    return Program("conformance", [mov] + list(insns), functions=[Function("main", 0)])


def check_raw(test: ConformanceTest, insns: list[Insn]) -> str:
    """'' when the encoder gives the `-- raw` words, else what differs."""
    data = encode(insns)
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]
    if words == test.raw:
        return ""
    for k, (got, want) in enumerate(zip(words, test.raw)):
        if got != want:
            return f"encoding differs at slot {k}: 0x{got:016x}, expected 0x{want:016x}"
    return f"encoding has {len(words)} words, expected {len(test.raw)}"


def run_test(test: ConformanceTest, targets: dict[str, Factory], budget: int = DEFAULT_BUDGET) -> Outcome:
    """Run one test on every target; a failure on one target records its reason."""
    out = Outcome(test.name)
    try:
        insns = assemble(test.asm)
    except Exception as e:   # the assembler's own error type, or a missing assembler
        reason = f"assembler: {e}"
        return Outcome(test.name, {t: reason for t in targets})
    if test.raw is not None:
        reason = check_raw(test, insns)
        if reason:
            return Outcome(test.name, {t: reason for t in targets})
    for name, factory in targets.items():
        reason = _run_on(factory, test, insns, budget)
        if reason:
            out.failures[name] = reason
    return out


def _run_on(factory: Factory, test: ConformanceTest, insns: list[Insn], budget: int) -> str:
    env = ConformanceEnv(test.mem)
    program = with_r2(insns, env.r2)
    try:
        executor = factory(program)
        res = executor.run(env, env.r1, **_budget_kw(executor, budget))
    except Exception as e:    # an executor must not raise; report it as this test's failure
        return f"executor raised {type(e).__name__}: {e}"
    if res.error:
        return f"error: {res.error}"
    if res.r0 & M64 != test.result:
        return f"r0 = 0x{res.r0 & M64:x}, expected 0x{test.result:x}"
    return ""


def _budget_kw(executor: Executor, budget: int) -> dict:
    """`budget=` for executors whose run() takes it (the Executor protocol needs only env, r1)."""
    try:
        params = inspect.signature(executor.run).parameters
    except (TypeError, ValueError):
        return {}
    return {"budget": budget} if "budget" in params else {}


def run_all(tests: list[ConformanceTest], targets: dict[str, Factory],
            budget: int = DEFAULT_BUDGET) -> list[Outcome]:
    return [run_test(t, targets, budget) for t in tests]
