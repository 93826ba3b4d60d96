"""Bad input on the command line ends in one line naming the input and the reason, exit 2,
never a traceback; names, formats and help behave as the errors and docs say.  Each test
here reproduced a defect of the CLI (malformed JSON types, deep JSON, directories as paths,
binary content quoted raw, the image format ignoring -o's name, disasm refusing bin images,
-s refusing the names its own error lists, --lanes range, help)."""
import json
import random
import subprocess
import sys

import pytest

from isa.imagefmt import FORMATS, detect
from tests.cli_util import cli, one_line_error, small_pcap
from tests.conftest import ROOT, SAMPLES, needs_kernel

XDP1 = SAMPLES / "xdp1.o"
TAIL = SAMPLES / "xdp_tailcall.o"
FIB_PROG = SAMPLES / "router_fib.o"
need_samples = pytest.mark.skipif(not (XDP1.exists() and TAIL.exists() and FIB_PROG.exists()),
                                  reason="sample_programs/*.o are not built")
pytestmark = need_samples
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def pcap(tmp_path):
    return small_pcap(SAMPLES / "pcaps" / "router_fib-normal.pcap", tmp_path / "small.pcap")


def _write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


# ---- item 8: every user JSON is type-checked -------------------------------------------------

ROUTE = {"prefix": "10.0.0.0/8", "ifindex": 2}
BAD_FIBS = [
    ({"routes": 5}, "routes"),
    ({"neighbours": "x"}, "neighbours"),
    ({"interfaces": {}}, "interfaces"),
    ({"routes": [{**ROUTE, "metric": [1]}]}, "metric"),
    ({"routes": [{**ROUTE, "table": "main"}]}, "table"),
    ({"routes": [{**ROUTE, "metric": 1 << 40}]}, "metric"),
    ({"routes": [{**ROUTE, "gw": "10.0.0.1"}]}, "gw"),
    ({"routez": []}, "routez"),
    ({"interfaces": [{"ifindex": 2, "mtu": "1500"}]}, "mtu"),
    ({"interfaces": [{"ifindex": 2, "ip": [5]}]}, "ip"),
    ({"neighbours": [{"ifindex": 2, "ip": "10.0.0.1", "mac": 5}]}, "mac"),
    ({"neighbours": [{"ifindex": 2, "ip": "10.0.0.1"}]}, "mac"),
    ([], "expected"),
    # found by tests/test_cli_fuzz.py: a list as route type raised TypeError (unhashable)
    ({"routes": [{"prefix": "10.1.0.0/16", "ifindex": 2, "type": [1]}]}, "type"),
]


@pytest.mark.parametrize("doc, needle", BAD_FIBS, ids=[str(i) for i in range(len(BAD_FIBS))])
def test_malformed_fib_is_one_line(tmp_path, pcap, doc, needle):
    fib = _write(tmp_path, "fib.json", doc)
    one_line_error(cli("emulate", FIB_PROG, "--pcap", pcap, "--fib", fib), fib, needle)


@pytest.mark.parametrize("option", ["--maps", "--ctx", "--fib"])
def test_deeply_nested_json_is_one_line(tmp_path, pcap, option):
    deep = _write(tmp_path, "deep.json", DEEP)
    one_line_error(cli("emulate", FIB_PROG, "--pcap", pcap, option, deep), deep, "nested too deeply")


@pytest.mark.parametrize("doc, needle", [
    ({"jmp_table": [{"key": "00000000", "value": ["xdp_ipv4"]}]}, "value"),
    ({"verdicts": [{"key": "00000000", "value": "00" * 8, "count": 1}]}, "count"),
    ({"verdicts": [{"value": "00" * 8}]}, "key"),
    ({"verdicts": [{"key": "00000000", "values": "00" * 8}]}, "values"),
    ({"verdicts": [{"key": "00000000", "value": "\x01" * 3000}]}, "not hex"),
])
def test_malformed_maps_are_one_line(tmp_path, doc, needle):
    maps = _write(tmp_path, "maps.json", doc)
    small = small_pcap(SAMPLES / "pcaps" / "xdp_tailcall-normal.pcap", tmp_path / "t.pcap")
    line = one_line_error(cli("emulate", TAIL, "--pcap", small, "--maps", maps), maps, needle)
    assert len(line) < 300 and line.isprintable()


def test_malformed_sidecar_and_json_image_are_one_line(tmp_path):
    img = tmp_path / "x.json"
    assert cli("compile", XDP1, "-o", img).exit_code == 0
    side = tmp_path / "x.json.mapcfg.json"
    side.write_text(DEEP)
    one_line_error(cli("disasm", img), side, "nested too deeply")
    cfg = {"format": "hxdp-mapcfg", "maps": [{"id": 0, "name": "m", "type": "hash", "key_size": 4,
                                               "value_size": 4, "max_entries": 1}], "bounds": []}
    side.write_text(json.dumps(cfg))
    one_line_error(cli("disasm", img), side, "type")
    side.unlink()
    doc = json.loads(img.read_text())
    doc["rows"][0][0] = 17
    img.write_text(json.dumps(doc))
    one_line_error(cli("disasm", img), img, "rows[0]")


# ---- item 10: a directory where a file is expected -----------------------------------------

def _dir_cases():
    pc = "sample_programs/pcaps/xdp1-normal.pcap"
    x, d = str(XDP1), "DIR"
    return [
        ["compile", d], ["compile", x, "-o", d], ["compile", x, "--report", d],
        ["compile", x, "--schedule-html", d],
        ["disasm", d], ["disasm", x, "-o", d], ["asm", d], ["asm", x, "-o", d],
        ["emulate", d, "--pcap", pc], ["emulate", x, "--pcap", d], ["emulate", x, "--pcap", pc, "--maps", d],
        ["emulate", x, "--pcap", pc, "--results", d], ["emulate", x, "--pcap", pc, "--ctx", d],
        ["emulate", x, "--pcap", pc, "--fib", d], ["emulate", x, "--pcap", pc, "--dump-maps", d],
        ["emulate", x, "--pcap", pc, "--events", d], ["emulate", x, "--pcap", pc, "--stats-json", d],
        ["verify", d, "--pcap", pc], ["verify", x, "--pcap", pc, "--maps", d],
    ]


@pytest.mark.parametrize("args", _dir_cases(), ids=lambda a: "-".join(a[:1] + [w for w in a if w.startswith("-")]))
def test_a_directory_as_a_file_is_one_line(tmp_path, args):
    d = tmp_path / "adir"
    d.mkdir()
    args = [str(d) if a == "DIR" else str(ROOT / a) if a.startswith("sample_programs") else a for a in args]
    one_line_error(cli(*args), d, "is a directory")


def test_a_file_as_the_conformance_directory_is_one_line(tmp_path):
    f = tmp_path / "afile"
    f.write_text("")
    one_line_error(cli("conformance", f), f, "is a file")


def test_other_usage_errors_are_one_line():
    one_line_error(cli("emulate", XDP1), "--pcap")
    one_line_error(cli("nosuch"), "nosuch")
    one_line_error(cli("compile", XDP1, "--bogus"), "--bogus")


# ---- item 11: quoted content is short and printable ------------------------------------------

def test_quote_is_short_escaped_and_one_line():
    from isa.errors import quote
    assert quote("r0 = 1") == "'r0 = 1'"
    assert quote("it's") == "'it\\'s'"
    blob = bytes(range(256)) * 16
    for q in (quote(blob), quote(blob.decode("latin-1"))):
        assert len(q) <= 70 and q.isprintable() and q.endswith("...'")
    q = quote([[["x" * 500]] * 50])
    assert len(q) <= 70 and q.isprintable()
    assert quote(b"\x00ab\n") == "'\\x00ab\\n'"


def _garbage(seed: int, n: int = 3600) -> bytes:
    """Seeded random bytes of one line (no NUL, no newline): the worst case for a quote."""
    return random.Random(seed).randbytes(n).replace(b"\0", b"\1").replace(b"\n", b"\2")


@pytest.mark.parametrize("command", ["compile", "asm", "disasm"])
@pytest.mark.parametrize("prefix", [b"", b"r0 = 1\n", b"# hxdpc image\n   0: { nop }\n   1: { "])
def test_binary_content_is_not_dumped(tmp_path, command, prefix):
    f = tmp_path / "garbage.s"
    f.write_bytes(prefix + _garbage(len(prefix)))
    line = one_line_error(cli(command, f, "-o", tmp_path / "out.o"), f)
    assert len(line) < len(str(f)) + 200 and line.isprintable(), line


def test_binary_rows_of_an_image_are_not_dumped(tmp_path):
    f = tmp_path / "bad.mem"
    f.write_bytes(b"// hxdp-image lanes=4 rows=2 width=256\n" + b"0" * 64 + b"\n" + _garbage(1, 900) + b"\n")
    r = cli("disasm", f)
    line = one_line_error(r, f)
    assert len(line) < len(str(f)) + 200 and line.isprintable(), line


# ---- item 12: the image format follows -o's name -------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_format_follows_the_extension(tmp_path, fmt):
    out = tmp_path / f"fw.{fmt}"
    r = cli("compile", XDP1, "-o", out)
    assert r.exit_code == 0, r.output
    assert detect(out.read_bytes()) == fmt


def test_compile_format_default_and_contradiction(tmp_path):
    out = tmp_path / "fw.bin.out"
    assert cli("compile", XDP1, "-o", out).exit_code == 0
    assert detect(out.read_bytes()) == "rom"
    bad = tmp_path / "fw.bin"
    one_line_error(cli("compile", XDP1, "-o", bad, "--format", "rom"), bad, "bin")
    assert not bad.exists()
    assert cli("compile", XDP1, "-o", bad, "--format", "bin").exit_code == 0


# ---- item 13: compile -> disasm -> asm gives the same image, every format -----------------------

ROUND_TRIPS = [(XDP1, 4, "xdp1"), (TAIL, 4, "tailcall"), (FIB_PROG, 4, "router_fib"),
               (FIB_PROG, 2, "router_fib-2"), (TAIL, 8, "tailcall-8")]


@pytest.mark.parametrize("fmt, prog, lanes", [
    pytest.param(fmt, prog, lanes, id=f"{name}-{fmt}") for prog, lanes, name in ROUND_TRIPS for fmt in FORMATS
    if fmt != "rom" or lanes == 4])          # the rom format holds 4 lanes only
def test_every_image_format_round_trips(tmp_path, fmt, prog, lanes):
    first, rows, again = tmp_path / f"a.{fmt}", tmp_path / "a.rows.s", tmp_path / f"b.{fmt}"
    r = cli("compile", prog, "-o", first, "--format", fmt, "--lanes", lanes, "--depth", 256)
    assert r.exit_code == 0, r.output
    assert detect(first.read_bytes()) == fmt
    r = cli("disasm", first, "-o", rows)
    assert r.exit_code == 0, r.output
    r = cli("asm", rows, "-o", again, "--format", fmt)
    assert r.exit_code == 0, r.output
    assert again.read_bytes() == first.read_bytes()
    assert (tmp_path / f"b.{fmt}.mapcfg.json").read_text() == (tmp_path / f"a.{fmt}.mapcfg.json").read_text()


def test_damaged_bin_image_is_one_line(tmp_path):
    img = tmp_path / "x.bin"
    assert cli("compile", XDP1, "-o", img).exit_code == 0
    img.write_bytes(img.read_bytes()[:40])
    one_line_error(cli("disasm", img), img, "bin image")


# ---- item 14: -s takes the names its error lists -------------------------------------------

def test_section_takes_the_listed_names(tmp_path):
    line = one_line_error(cli("compile", TAIL, "-s", "nosuch", "-o", tmp_path / "x.rom"), "programs:")
    names = line.split("programs: ")[1].split(", ")
    assert "xdp/xdp_ipv4" in names
    for name in names:
        r = cli("compile", TAIL, "-s", name, "-o", tmp_path / "x.rom", "--report", tmp_path / "r.json")
        assert r.exit_code == 0, (name, r.output)
    small = small_pcap(SAMPLES / "pcaps" / "xdp_tailcall-normal.pcap", tmp_path / "t.pcap")
    r = cli("emulate", TAIL, "-s", "xdp/xdp_ipv6", "--pcap", small,
            "--maps", SAMPLES / "xdp_tailcall.maps.json", "--stats")
    assert r.exit_code == 0, r.output


# ---- item 15: --lanes says its range ---------------------------------------------------------

@pytest.mark.parametrize("lanes", ["0", "9", "-1"])
def test_lanes_out_of_range_says_the_range(tmp_path, lanes):
    one_line_error(cli("compile", XDP1, "--lanes", lanes, "-o", tmp_path / "x.bin"), "--lanes", "1<=x<=8")


# ---- item 17: help ------------------------------------------------------------------------

def test_bare_hxdpc_prints_help():
    r = cli()
    assert r.exit_code == 0 and "Usage:" in r.output and "compile" in r.output and "emulate" in r.output


@pytest.mark.parametrize("command", ["compile", "disasm", "asm", "emulate", "verify", "conformance"])
def test_every_command_has_short_help_with_an_example(command):
    r = cli(command, "-h")
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and "Example" in r.output and f"hxdpc {command}" in r.output


def test_python_dash_m_hxdpc():
    r = subprocess.run([sys.executable, "-m", "hxdpc", "-h"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Usage: hxdpc" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "hxdpc", "compile", str(ROOT)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ---- verify: the same checks before the kernel sees the inputs -----------------------------

@needs_kernel
def test_verify_checks_the_maps_preset_before_the_kernel(tmp_path):
    maps = _write(tmp_path, "maps.json", {"jmp_table": [{"key": "00000000", "value": ["xdp_ipv4"]}]})
    small = small_pcap(SAMPLES / "pcaps" / "xdp_tailcall-normal.pcap", tmp_path / "t.pcap")
    one_line_error(cli("verify", TAIL, "--pcap", small, "--maps", maps), maps, "jmp_table[0].value")


@needs_kernel
def test_verify_takes_section_slash_function(tmp_path):
    small = small_pcap(SAMPLES / "pcaps" / "xdp_tailcall-normal.pcap", tmp_path / "t.pcap")
    r = cli("verify", TAIL, "-s", "xdp/xdp_ipv4", "--pcap", small, "--maps", SAMPLES / "xdp_tailcall.maps.json")
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].endswith("0 failed, 0 skipped")


@needs_kernel
def test_check_kernel_takes_section_slash_function(tmp_path):
    r = cli("compile", TAIL, "-s", "xdp/xdp_ipv6", "--check-kernel", "-o", tmp_path / "x.rom")
    assert r.exit_code == 0, r.output
