"""docs/formats.md stays true: its examples are read by the code they describe."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from conftest import ROOT
from emulator.runtime import pcapio
from emulator.runtime.fib import parse_fib
from emulator.runtime.results import PacketResult, result_object
from hxdpc.cli import main
from isa import imagefmt
from isa.insn import Insn

DOC = (ROOT / "docs" / "formats.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", DOC, re.S)
PASS_ROW = (Insn(0x96, imm=2), None, None, None)      # r0 = 2; exit, compiled: exit_pass


def _section(title: str) -> str:
    return DOC.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _json_blocks(title: str) -> list:
    return [json.loads(b) for lang, b in re.findall(r"```(\w*)\n(.*?)```", _section(title), re.S)
            if lang == "json" and "..." not in b]


def test_readme_links_the_format_and_cli_pages():
    readme = (ROOT / "README.md").read_text()
    assert "docs/formats.md" in readme and "docs/cli.md" in readme
    assert (ROOT / "docs" / "cli.md").exists()


def test_ctx_and_fib_examples_are_accepted():
    (ctx,) = _json_blocks("`CTX.json`")
    pcapio.check_ctx(ctx, "doc")
    pkt = pcapio.apply_ctx(pcapio.PacketInput(17, b""), ctx)
    assert (pkt.ingress_ifindex, pkt.rx_queue_index) == (3, 0)
    (fib,) = _json_blocks("`FIB.json`")
    f = parse_fib(fib, "doc")
    assert len(f.routes) == 2 and 2 in f.interfaces


def test_maps_example_preloads_the_sample_it_names(tmp_path):
    (maps,) = _json_blocks("`MAPS.json`")
    (tmp_path / "m.json").write_text(json.dumps({"tx_port": maps["tx_port"]}))
    r = CliRunner().invoke(main, ["emulate", str(ROOT / "sample_programs" / "redirect_map.o"), "--pcap",
                                  str(ROOT / "sample_programs" / "pcaps" / "redirect_map-normal.pcap"),
                                  "--maps", str(tmp_path / "m.json"), "--dump-maps", str(tmp_path / "d.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "d.json").read_text())["tx_port"] == maps["tx_port"]


def test_results_example_has_the_code_key_order():
    line = re.search(r'\{"pkt":0,"action":4.*\}', _section("Results JSONL")).group(0)
    doc = json.loads(line.replace("...", ""))
    ours = result_object(PacketResult(0, 4, b"", redirect={"map": "tx_port", "key": 0}))
    assert list(doc) == list(ours) and doc["redirect"] == ours["redirect"]


def test_compile_report_example_has_every_key_the_compiler_writes(tmp_path):
    (rep,) = _json_blocks("Compile report")
    src = tmp_path / "p.s"
    src.write_text("r0 = 2\nexit\n")
    assert CliRunner().invoke(main, ["asm", str(src), "-o", str(tmp_path / "p.o")]).exit_code == 0
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "p.o"), "-o", str(tmp_path / "p.rom"),
                                  "--report", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert set(rep) == set(json.loads((tmp_path / "r.json").read_text()))


@pytest.mark.parametrize("fmt", ["coe", "mem", "mif", "json"])
def test_image_examples_decode_to_the_row_they_describe(fmt):
    sec = _section("Instruction-memory images")
    texts = [b for _, b in re.findall(r"```(\w*)\n(.*?)```", sec, re.S)]
    text = {"coe": texts[2], "mem": texts[3], "mif": texts[4], "json": texts[5]}[fmt]
    body = "\n".join(line[2:] if line.startswith("  ") else line for line in text.splitlines()) + "\n"
    assert imagefmt.detect(body.encode()) == fmt
    img = imagefmt.decode_image(body.encode(), "doc")
    assert img.lanes == 4 and tuple(img.rows[0]) == PASS_ROW and len(img.rows) == 2
    again = imagefmt.encode_image(img, fmt).decode()
    if fmt == "json":
        assert json.loads(again) == json.loads(body)
    else:
        assert again.split() == body.split()


def test_bin_and_rom_examples_match_the_writer():
    from isa.image import Image
    img = Image(rows=[PASS_ROW, (None,) * 4], lanes=4)
    head = imagefmt.encode_image(img, "bin")[:32]
    dump = " ".join(head[i:i + 2].hex() for i in range(0, 32, 2))
    sec = _section("Instruction-memory images")
    doc_hex = " ".join(line.split(":")[1].split("  ")[0].strip()
                       for line in sec.splitlines() if re.match(r"\s*000000[01]0:", line))
    assert doc_hex == dump
    rom = imagefmt.encode_image(img, "rom").decode().splitlines()
    assert rom[0] in sec and len(rom) == 256
