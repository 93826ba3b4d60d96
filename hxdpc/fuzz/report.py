"""A mismatch's reproducer directory, and the run's counters.

DIR/prog.s      the linked program in llvm-objdump syntax (`hxdpc asm` reads it back; map
                references as `ld_pseudo rN, 5, INDEX`, the maps listed in comments)
DIR/prog.o      the object the kernel and the target ran (maps in a legacy `maps` section)
DIR/packets.pcap, DIR/packets.hex (one frame per line), DIR/MAPS.json (the preset)
DIR/DIFF.txt    what differed (verify's lines: what the kernel and the target gave)
DIR/REPRODUCE   the one-line command that shows the mismatch again
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hxdpc.fuzz.oracle import Case, TargetResult, write_case

CLI = "python3 -c 'import sys; from hxdpc.cli import main; sys.exit(main())'"


def reproduce_command(directory: str, target: str) -> str:
    d = os.path.abspath(directory)
    return f"{CLI} verify {d}/prog.o --pcap {d}/packets.pcap --maps {d}/MAPS.json --target {target}"


def listing(prog_path: str, command: str) -> str:
    """The linked program (what the kernel and the targets ran) in llvm-objdump syntax, one
    section, map references as `ld_pseudo rN, 5, INDEX` with the maps listed in comments,
    local calls spelt unambiguously: `hxdpc asm` reads it back."""
    from isa.loader import load
    from isa.disasm import disassemble_section, format_insn
    from isa.opcodes import Kind
    from isa.program import MAP_TYPES
    prog = load(prog_path)
    head = [f"# {command}", "# maps (lddw src 5, imm = index):"]
    head += [f"#   {k}: {m.name} {MAP_TYPES.get(m.type, m.type)} key {m.key_size} value {m.value_size} "
             f"max_entries {m.max_entries}" for k, m in enumerate(prog.maps)]
    text = disassemble_section(prog.insns, [(f.name, f.start) for f in prog.functions], prog.section or "xdp")
    slots = prog.slots()
    for n, insn in enumerate(prog.insns):
        if insn.spec.kind == Kind.CALL_LOCAL:
            text = text.replace(f"{slots[n]:>8}:\t{format_insn(insn)}\n",
                                f"{slots[n]:>8}:\t{format_insn(insn, exact=True)}\n")
    return "\n".join(head) + "\n\n" + text


def write_reproducer(case: Case, result: TargetResult, directory: str) -> str:
    """Writes the reproducer files; returns the directory."""
    paths = write_case(case, directory)
    Path(directory, "prog.s").write_text(listing(paths["prog"], reproduce_command(directory, result.target)))
    Path(directory, "packets.hex").write_text("".join(p.hex() + "\n" for p in case.packets))
    lines = [f"target: {result.target}"] + result.diffs + ([result.crash] if result.crash else [])
    Path(directory, "DIFF.txt").write_text("\n".join(lines) + "\n")
    Path(directory, "REPRODUCE").write_text(reproduce_command(directory, result.target) + "\n")
    return directory


@dataclass
class Stats:
    """Counters of a fuzzing run (what benchmarks/fuzz_kernel.py prints)."""
    started: float = field(default_factory=time.monotonic)
    generated: int = 0
    accepted: int = 0
    packets: int = 0
    mismatches: Counter = field(default_factory=Counter)       # target -> programs that mismatched
    rejects: Counter = field(default_factory=Counter)          # last line of the verifier's reason
    reproducers: list[str] = field(default_factory=list)
    coverage: set = field(default_factory=set)                 # table rows of the accepted programs

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def per_program_ms(self) -> float:
        return 1000 * self.elapsed / max(self.generated, 1)

    def acceptance(self) -> float:
        return self.accepted / max(self.generated, 1)

    def progress_line(self, total: int | None, seconds: float | None) -> str:
        rate = self.generated / max(self.elapsed, 1e-9)
        left = []
        if total:
            left.append((total - self.generated) / max(rate, 1e-9))
        if seconds:
            left.append(seconds - self.elapsed)
        eta = f", ETA {max(min(left), 0):.0f} s" if left else ""
        of = f"/{total}" if total else ""
        return (f"{self.generated}{of} programs, {self.accepted} accepted, "
                f"{sum(self.mismatches.values())} mismatching, {rate:.1f} programs/s{eta}")

    def summary(self, targets) -> list[str]:
        out = [f"programs generated: {self.generated}",
               f"accepted by the kernel: {self.accepted} ({100 * self.acceptance():.1f}%)",
               f"packets: {self.packets}",
               f"time per program: {self.per_program_ms():.0f} ms ({self.elapsed:.1f} s in all)"]
        from hxdpc.fuzz.progen import generated_rows
        rows = {r.key for r in generated_rows()}
        out.append(f"table rows covered by accepted programs: {len(self.coverage & rows)} of {len(rows)}")
        out += [f"mismatches on {t}: {self.mismatches[t]}" for t in targets]
        for reason, n in self.rejects.most_common(5):
            out.append(f"rejected x{n}: {reason}")
        out += [f"reproducer: {d}" for d in self.reproducers]
        return out
