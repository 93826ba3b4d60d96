"""The kernel-differential fuzzer (hxdpc.fuzz): generator coverage of the ISA table, the
object files it writes, and a bounded run against the kernel on every target."""
import dataclasses
import random


from conftest import needs_kernel
from hxdpc.fuzz.build import Jump, Label, resolve
from hxdpc.fuzz.campaign import Settings, run, verify_targets
from hxdpc.fuzz.minimise import Budget, minimise
from hxdpc.fuzz.objfile import elf_with_maps
from hxdpc.fuzz.oracle import Case, run_case
from hxdpc.fuzz.packets import random_packets
from hxdpc.fuzz.progen import NOT_GENERATED, TABLE, Generator, generated_rows, insn_of
from isa.opcodes import BY_KEY

SEED = 20261202
PROGRAMS = 30


def test_every_table_row_is_generated_or_excused():
    rows = {s.key for s in TABLE}
    assert set(NOT_GENERATED) <= rows
    assert {s.key for s in generated_rows()} == rows - set(NOT_GENERATED)


def test_a_few_dozen_programs_cover_every_generated_row():
    gen = Generator(random.Random(SEED))
    covered = set()
    for _ in range(PROGRAMS):
        covered |= gen.program().keys()
    missing = {s.key for s in generated_rows()} - covered
    assert not missing, f"not generated in {PROGRAMS} programs: {sorted(missing)}"


def test_labels_resolve_to_slot_offsets_across_lddw():
    lddw = BY_KEY["lddw"]
    items = [Jump(insn_of(BY_KEY["jeq64_k"], 1, imm=0), "end"),
             insn_of(lddw, 2, imm=5), insn_of(BY_KEY["mov64_k"], 3, imm=1), Label("end"),
             insn_of(BY_KEY["exit"])]
    code = resolve(items)
    assert code.insns[0].off == 3                     # lddw takes two slots
    assert code.labels == {"end": 3}


def test_objects_load_with_their_maps_and_subprograms(tmp_path):
    from isa.loader import load
    gen = Generator(random.Random(SEED))
    prog = next(p for p in (gen.program() for _ in range(50)) if any(
        type(it).__name__ == "CallLocal" for b in p.blocks for it in b))
    path = tmp_path / "p.o"
    path.write_bytes(elf_with_maps(prog.object_code()))
    loaded = load(str(path))
    assert [m.name for m in loaded.maps] == [m.name for m in prog.maps]
    assert [(m.type, m.key_size, m.value_size) for m in loaded.maps] == \
        [(m.type, m.key_size, m.value_size) for m in prog.maps]
    assert len(loaded.functions) >= 2                 # the entry and a called subprogram


@needs_kernel
def test_bounded_run_finds_no_mismatch_on_any_target(tmp_path):
    # No bpf_trace_printk here: it would write into the host's trace buffer (tests leave the
    # host as they found it); tests/test_printk.py compares it with the kernel.
    settings = Settings(seed=SEED, programs=40, packets=3, targets=verify_targets(),
                        out=str(tmp_path / "repro"), minimise_seconds=20, printk=False)
    stats = run(settings)
    summary = "\n".join(stats.summary(settings.targets))
    print(summary)
    assert not sum(stats.mismatches.values()), f"mismatches; reproducers: {stats.reproducers}\n{summary}"
    assert stats.accepted >= 0.9 * stats.generated, summary
    missing = {s.key for s in generated_rows()} - stats.coverage
    assert not missing, f"rows the accepted programs do not use: {sorted(missing)}"


class _FlipsPass:
    """A deliberately wrong target: the interpreter, but XDP_PASS becomes XDP_DROP."""

    def __init__(self, program):
        from emulator.interp.interpreter import Interpreter
        self.inner = Interpreter(program)

    def run(self, env, r1, **kw):
        r = self.inner.run(env, r1, **kw)
        return dataclasses.replace(r, r0=1) if r.error is None and r.r0 == 2 else r


@needs_kernel
def test_a_wrong_target_is_caught_minimised_and_reproduced(tmp_path, monkeypatch):
    from hxdpc import targets
    monkeypatch.setitem(targets.TARGETS, "flips-pass",
                        targets.Target("flips-pass", lambda program, options: _FlipsPass(program)))
    rng = random.Random(SEED)
    prog = Generator(rng, printk=False).program()
    epilogue = prog.blocks[-1]
    last_label = max(k for k, it in enumerate(epilogue) if isinstance(it, Label))
    prog.blocks[-1] = epilogue[:last_label + 1] + [insn_of(BY_KEY["mov64_k"], 0, imm=2),
                                                   insn_of(BY_KEY["exit"])]   # XDP_PASS
    case = Case(prog, [p for p in random_packets(rng, 6) if len(p) >= 14][:3] or [bytes(60)])
    result = run_case(case, str(tmp_path / "case"), ["flips-pass"])
    assert result.accepted, result.reject_reason
    [tr] = result.targets
    assert any("action: kernel XDP_PASS (2), target XDP_DROP (1)" in d for d in tr.diffs)
    small, sr = minimise(case, tr, str(tmp_path / "min"), Budget(30))
    assert sr.mismatch and len(small.packets) == 1
    assert len(small.program.items()) < len(case.program.items())
    from hxdpc.fuzz.report import write_reproducer
    d = write_reproducer(small, sr, str(tmp_path / "repro"))
    for f in ("prog.s", "prog.o", "packets.pcap", "packets.hex", "MAPS.json", "DIFF.txt", "REPRODUCE"):
        assert (tmp_path / "repro" / f).stat().st_size > 0, f
    assert "verify" in (tmp_path / "repro" / "REPRODUCE").read_text() and d
    from click.testing import CliRunner
    from hxdpc.cli import main
    from isa.loader import load
    r = CliRunner().invoke(main, ["asm", str(tmp_path / "repro" / "prog.s"), "-o", str(tmp_path / "re.o")])
    assert r.exit_code == 0, r.output
    assert load(str(tmp_path / "re.o")).insns == load(str(tmp_path / "repro" / "prog.o")).insns
