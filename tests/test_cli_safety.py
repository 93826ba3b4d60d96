"""Data safety and running behaviour of the CLI: an output never overwrites an input, an
OSError on an output is one line and exit 2, bad --clock-mhz values are refused, programs
whose maps are not defined are refused at load, emulate ends with a summary on stderr, a
program too deep for the real instruction memory is reported, progress shows packets, rate
and time left.  (Signals: tests/test_cli_signals.py.)"""
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hxdpc.cli import main
from tests.conftest import ROOT, SAMPLES

XDP1 = SAMPLES / "xdp1.o"
PCAP = SAMPLES / "pcaps" / "xdp1-normal.pcap"


def hxdpc(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(r, *needles):
    """Exit 2, one line on stderr naming the needles, no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def capture(tmp_path):
    p = tmp_path / "same.pcap"
    shutil.copy(PCAP, p)
    return p


# -- 5: an output never overwrites an input ----------------------------------------------

@pytest.mark.parametrize("option", ["--results", "--dump-maps", "--events", "--stats-json"])
def test_emulate_output_that_is_the_capture_is_refused(capture, option):
    before = capture.read_bytes()
    refused(hxdpc("emulate", XDP1, "--pcap", capture, option, capture), option, "--pcap")
    assert capture.read_bytes() == before


def test_emulate_output_that_is_a_hard_link_of_an_input_is_refused(capture, tmp_path):
    link = tmp_path / "link.jsonl"
    os.link(capture, link)
    before = capture.read_bytes()
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--results", link), link)
    assert capture.read_bytes() == before


def test_emulate_output_through_a_symlink_or_dots_is_refused(capture, tmp_path):
    (tmp_path / "sub").mkdir()
    os.symlink(capture, tmp_path / "sym.json")
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--dump-maps", tmp_path / "sym.json"), "--dump-maps")
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--results", tmp_path / "sub" / ".." / "same.pcap"),
            "--results")


def test_emulate_dump_over_the_maps_preset_or_the_program_is_refused(capture, tmp_path):
    preset = tmp_path / "m.json"
    preset.write_text("{}")
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--maps", preset, "--dump-maps", preset), "--maps")
    prog = tmp_path / "p.o"
    shutil.copy(XDP1, prog)
    refused(hxdpc("emulate", prog, "--pcap", capture, "--results", prog), "PROG")
    assert prog.read_bytes() == XDP1.read_bytes()


def test_emulate_out_dir_holding_the_capture_under_an_output_name_is_refused(tmp_path):
    inp = tmp_path / "XDP_DROP.pcap"
    shutil.copy(PCAP, inp)
    refused(hxdpc("emulate", XDP1, "--pcap", inp, "--out-dir", tmp_path), "--out-dir")
    assert inp.read_bytes() == PCAP.read_bytes()


def test_emulate_two_outputs_that_are_one_file_are_refused(capture, tmp_path):
    out = tmp_path / "o.json"
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--results", out, "--dump-maps", out), "--results")
    assert not out.exists()


def test_compile_over_its_input_is_refused(tmp_path):
    prog = tmp_path / "same.o"
    shutil.copy(XDP1, prog)
    refused(hxdpc("compile", prog, "-o", prog), "-o", "PROG")
    assert prog.read_bytes() == XDP1.read_bytes()
    refused(hxdpc("compile", prog, "-o", tmp_path / "x.rom", "--report", prog), "--report")
    assert not (tmp_path / "x.rom").exists()


def test_compile_whose_mapcfg_sidecar_is_the_input_is_refused(tmp_path):
    prog = tmp_path / "img.mapcfg.json"          # an ELF object (recognised by content)
    shutil.copy(XDP1, prog)
    refused(hxdpc("compile", prog, "-o", tmp_path / "img"), "mapcfg")
    assert prog.read_bytes() == XDP1.read_bytes() and not (tmp_path / "img").exists()


def test_compile_to_a_new_path_still_works(tmp_path):
    r = hxdpc("compile", XDP1, "-o", tmp_path / "x.rom")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "x.rom").exists() and (tmp_path / "x.rom.mapcfg.json").exists()


def test_asm_over_its_input_is_refused(tmp_path):
    src = tmp_path / "p.s"
    src.write_text("r0 = 2\nexit\n")
    refused(hxdpc("asm", src, "-o", src), "-o", "FILE")
    assert src.read_text() == "r0 = 2\nexit\n"


# -- 9: OSError on an output, --clock-mhz ------------------------------------------------

def test_output_on_a_full_device_is_one_line(capture):
    for option in ("--results", "--dump-maps", "--stats-json"):      # (no events: nothing to write)
        refused(hxdpc("emulate", XDP1, "--pcap", capture, option, "/dev/full"), "/dev/full", "No space")


def test_out_dir_where_files_cannot_be_created_is_one_line(capture):
    # sysfs directories exist, but no file can be created in them, even by root
    refused(hxdpc("emulate", XDP1, "--pcap", capture, "--out-dir", "/sys/kernel"), "/sys/kernel")


def test_out_dir_on_a_read_only_file_system_is_one_line(capture, tmp_path):
    """A read-only tmpfs in a private mount namespace (the host's mounts are untouched)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a private mount namespace")
    code = "import sys; from hxdpc.cli import main; sys.argv[0] = 'hxdpc'; sys.exit(main())"
    script = (f"mount -t tmpfs -o ro none {ro} || exit 99; exec {sys.executable} -c \"{code}\" "
              f"emulate {XDP1} --pcap {capture} --out-dir {ro}")     # the directory exists, read-only
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    if p.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Read-only file system" in lines[0] and str(ro) in lines[0], p.stderr


@pytest.mark.parametrize("mhz", ["0", "-1", "nan", "inf", "-inf", "0.0"])
def test_clock_mhz_must_be_finite_and_positive(capture, mhz):
    r = hxdpc("emulate", XDP1, "--pcap", capture, "--target", "sephirot", "--clock-mhz", mhz, "--stats")
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "--clock-mhz" in r.stderr and "Mpps" not in r.output


def test_clock_mhz_positive_value_gives_positive_mpps(capture, tmp_path):
    r = hxdpc("emulate", XDP1, "--pcap", capture, "--target", "sephirot", "--clock-mhz", "200",
              "--stats-json", tmp_path / "s.json")
    assert r.exit_code == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["clock_mhz"] == 200.0 and s["mpps"] > 0


# -- 7: programs that cannot work are refused; the summary line ---------------------------

def _roundtrip(tmp_path):
    """disasm of the ELF, assembled back: the same code, no map definitions."""
    d = hxdpc("disasm", XDP1)
    assert d.exit_code == 0, d.stderr
    text = tmp_path / "xdp1.s"
    text.write_text(d.stdout)
    r = hxdpc("asm", text, "-o", tmp_path / "rt.o")
    assert r.exit_code == 0, r.stderr
    return tmp_path / "rt.o"


def _first_map_call() -> int:
    """Slot of xdp1's first bpf_map_lookup_elem call (its map comes from the lddw before it)."""
    from isa.loader import load
    p = load(str(XDP1))
    return next(s for ins, s in zip(p.insns, p.slots()) if ins.opcode == 0x85 and ins.src == 0 and ins.imm == 1)


def test_program_without_its_map_definitions_is_refused_at_load(tmp_path, capture):
    rt = _roundtrip(tmp_path)
    r = hxdpc("emulate", rt, "--pcap", capture, "--results", tmp_path / "r.jsonl")
    refused(r, rt, f"instruction {_first_map_call()}:", "bpf_map_lookup_elem", "(r1)", "ELF object")
    assert not (tmp_path / "r.jsonl").exists()


def test_a_maps_preset_does_not_supply_definitions(tmp_path, capture):
    rt = _roundtrip(tmp_path)
    preset = tmp_path / "m.json"
    preset.write_text(json.dumps({"rxcnt": []}))
    refused(hxdpc("emulate", rt, "--pcap", capture, "--maps", preset), f"instruction {_first_map_call()}:")


def test_constant_used_as_global_data_is_refused(tmp_path, capture):
    src = tmp_path / "g.s"
    src.write_text("r1 = 0 ll\nr0 = *(u32 *)(r1 + 4)\nexit\n")
    assert hxdpc("asm", src, "-o", tmp_path / "g.o").exit_code == 0
    refused(hxdpc("emulate", tmp_path / "g.o", "--pcap", capture), "instruction 2", "global data")


def test_map_index_beyond_the_definitions_is_refused():
    from emulator.runtime.maprefs import unresolved_map_refs
    from isa.loader import load
    from isa.opcodes import LDDW_MAP_IDX
    p = load(str(XDP1))
    assert unresolved_map_refs(p) == []
    i = next(k for k, ins in enumerate(p.insns) if ins.src == LDDW_MAP_IDX)
    p.insns[i] = p.insns[i].with_(imm=len(p.maps))
    found = unresolved_map_refs(p)
    assert found and found[0].index == i and f"map #{len(p.maps)}" in found[0].reason


def test_every_sample_program_passes_the_map_check():
    from emulator.runtime.maprefs import unresolved_map_refs
    from isa.loader import load_all
    objs = sorted(SAMPLES.glob("*.o"))
    assert objs
    for o in objs:
        for p in load_all(str(o)):
            assert unresolved_map_refs(p) == [], (o.name, p.name)


def test_emulate_always_ends_with_a_summary_on_stderr(capture):
    r = hxdpc("emulate", XDP1, "--pcap", capture)
    assert r.exit_code == 0, r.stderr
    n = sum(1 for _ in __import__("emulator.runtime.pcapio", fromlist=["x"]).read_packets(str(capture)))
    assert r.stderr.strip().splitlines()[-1] == f"emulate: {n} packets (XDP_DROP {n}), 0 ended by an error"


def test_summary_names_the_first_error(tmp_path, capture):
    src = tmp_path / "f.s"
    src.write_text("r2 = 0\nr0 = *(u32 *)(r2 + 0)\nexit\n")     # a load from address 0: a Fault
    assert hxdpc("asm", src, "-o", tmp_path / "f.o").exit_code == 0
    r = hxdpc("emulate", tmp_path / "f.o", "--pcap", capture, "--results", tmp_path / "r.jsonl")
    assert r.exit_code == 0, r.stderr
    first = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("emulate: ") and "ended by an error; first, packet 0: " in last
    assert last.endswith(first["error"]) and "XDP_ABORTED" in last


# -- 16: deeper than the real instruction memory ------------------------------------------

def test_sephirot_says_when_a_program_needs_more_than_256_rows(tmp_path, capture):
    src = tmp_path / "deep.s"
    src.write_text("r0 = *(u32 *)(r1 + 0)\n" + "r0 *= 3\nr0 ^= 5\n" * 150 + "r0 &= 3\nexit\n")
    assert hxdpc("asm", src, "-o", tmp_path / "deep.o").exit_code == 0
    r = hxdpc("emulate", tmp_path / "deep.o", "--pcap", capture, "--target", "sephirot")
    assert r.exit_code == 0, r.stderr
    warn = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert len(warn) == 1 and "302 rows" in warn[0] and "256-row" in warn[0], r.stderr
    r = hxdpc("emulate", XDP1, "--pcap", capture, "--target", "sephirot")
    assert r.exit_code == 0 and "warning" not in r.stderr


# -- 18: progress -------------------------------------------------------------------------

def _render(bar) -> str:
    from rich.console import Console
    out = io.StringIO()
    Console(file=out, width=160, force_terminal=False).print(bar.make_tasks_table(bar.tasks))
    return out.getvalue()


def test_progress_shows_packets_rate_and_time_left():
    from rich.console import Console
    from hxdpc.commands.progress import packet_progress
    bar = packet_progress(Console(file=io.StringIO(), force_terminal=True))
    task = bar.add_task("emulate", total=1000)
    bar.advance(task, 250)
    text = _render(bar)
    assert "250 of 1,000 packets" in text and "packets/s" in text
    assert any(c.__class__.__name__ == "TimeRemainingColumn" for c in bar.columns)


def test_emulate_progress_counts_every_packet_of_the_capture(capture):
    from rich.console import Console
    from emulator.runtime import pcapio
    from hxdpc.commands.emulate import run_emulate
    from hxdpc.commands.progress import packet_progress
    n = sum(1 for _ in pcapio.read_packets(str(capture)))
    bar = packet_progress(Console(file=io.StringIO(), force_terminal=True))
    run_emulate(str(XDP1), str(capture), progress=bar)
    (task,) = bar.tasks
    assert task.total == n and task.completed == n
    assert f"{n} of {n} packets" in _render(bar)


def test_output_pcap_records_are_written_whole(tmp_path):
    """One write per record: header and data together (a stop between writes cannot split them)."""
    from emulator.runtime.pcapio import PcapWriter

    class Recorder(io.BytesIO):
        writes = []

        def write(self, b):
            Recorder.writes.append(bytes(b))
            return super().write(b)
    w = PcapWriter(str(tmp_path / "x.pcap"))
    w.f.close()
    w.f = Recorder()
    w.write(b"\x01" * 60, 5)
    assert len(Recorder.writes) == 1 and len(Recorder.writes[0]) == 16 + 60
    assert struct.unpack("<IIII", Recorder.writes[0][:16])[2] == 60


def test_compile_outputs_that_cannot_be_written_are_one_line(tmp_path):
    refused(hxdpc("compile", XDP1, "-o", "/sys/kernel/x.rom"), "/sys/kernel/x.rom")
    refused(hxdpc("compile", XDP1, "-o", tmp_path / "x.rom", "--report", "/dev/full"), "/dev/full")
    refused(hxdpc("compile", XDP1, "-o", tmp_path / "y.rom", "--schedule-html", "/sys/kernel/s.html"),
            "/sys/kernel/s.html")


def test_a_signal_while_the_maps_are_dumped_waits_and_keeps_the_figures(tmp_path, capture, monkeypatch):
    """SIGTERM while the outputs are being closed: the dump is finished whole first, then the
    run stops with 143 and the summary still counts every packet."""
    import signal
    from emulator.runtime.session import Session
    from hxdpc.commands.emulate import run_emulate
    from hxdpc.commands.interrupt import Interrupted, StopSignals
    real = Session.dump_maps

    def dump_with_signal(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self)
    monkeypatch.setattr(Session, "dump_maps", dump_with_signal)
    with pytest.raises(Interrupted) as e, StopSignals() as stop:
        run_emulate(str(XDP1), str(capture), dump_maps=str(tmp_path / "m.json"), stop=stop)
    assert e.value.exit_code == 143 and e.value.stats.packets == 120
    assert json.loads((tmp_path / "m.json").read_text())["rxcnt"]
