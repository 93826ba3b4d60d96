"""Image file formats: every format decodes to exactly the Image written; the artifact's
roms read leniently; the sidecar carries maps and bounds checks."""
from __future__ import annotations

import json

import pytest

from conftest import ARTIFACTS, needs_shared
from isa.errors import InputError
from isa.image import BoundsCheck, Image
from isa.imagefmt import FORMATS, decode_image, detect, encode_image, read_image, sidecar_path, write_image
from isa.insn import Insn
from isa.program import MapDef

ROMS = ARTIFACTS / "roms"


def sample_image(lanes=4, rows=256) -> Image:
    r = [(None,) * lanes for _ in range(rows)]
    row0 = [None] * lanes
    row0[0] = Insn(0x18, dst=1, src=5, imm=0)            # lddw map 0: two lanes
    row0[1] = Insn(0, imm=0)
    if lanes > 2:
        row0[2] = Insn(0xE7, dst=3, src=1, off=0x00, imm=-14)   # r3 = r1 + -14 (three-operand)
    r[0] = tuple(row0)
    row1 = [None] * lanes
    row1[lanes - 2] = Insn(0x18, dst=4, imm=0x1234_5678_9ABC_DEF0)
    row1[lanes - 1] = Insn(0, imm=0x12345678)
    r[1] = tuple(row1)
    r[2] = (Insn(0x2D, dst=3, src=2, off=-3),) + (None,) * (lanes - 1)
    r[3] = (Insn(0x96, imm=2),) + (None,) * (lanes - 1)
    maps = [MapDef("rxcnt", 6, 4, 8, 256), MapDef(".data", 2, 4, 16, 1, initial=bytes(range(16)), section=".data"),
            MapDef("outer", 12, 4, 4, 8, inner=MapDef("inner", 2, 4, 4, 1)),
            MapDef("jmp", 3, 4, 4, 4, section=".maps", init_slots={0: "prog_a", 2: "prog_b"})]
    return Image(rows=r, lanes=lanes, maps=maps, bounds=[BoundsCheck(2, 14, 1), BoundsCheck(3, 34, 2)],
                 name="prog")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(tmp_path, fmt):
    img = sample_image()
    path = write_image(img, tmp_path / f"x.{fmt}", fmt)
    assert sidecar_path(path).exists()
    assert detect(path.read_bytes()) == fmt
    assert read_image(path) == img


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "rom"])
@pytest.mark.parametrize("lanes,rows", [(2, 40), (8, 300), (3, 1)])
def test_round_trip_other_shapes(tmp_path, fmt, lanes, rows):
    img = sample_image(lanes, max(rows, 4))
    assert read_image(write_image(img, tmp_path / "y", fmt)) == img


def test_rom_shape_errors():
    with pytest.raises(InputError, match="4 lanes"):
        encode_image(sample_image(2, 256), "rom")
    with pytest.raises(InputError, match="256 rows"):
        big = sample_image(4, 300)
        big.rows[299] = (Insn(0x95),) + (None,) * 3
        encode_image(big, "rom")


def test_rom_text_layout():
    text = encode_image(sample_image(), "rom").decode()
    lines = text.split("\n")
    assert len(lines) == 257 and lines[-1] == "" and all(len(l) == 64 for l in lines[:256])
    assert text == text.lower()
    # lane 0 is the last 16 digits
    assert lines[3][48:] == "0000000200000096"


@needs_shared
@pytest.mark.parametrize("name,rows", [("nec_udp_firewall.bin.out", 36), ("xdp1.bin.out", 42),
                                       ("xdp2.bin.out", 48), ("xdp_redirect_map_kern.bin.out", 14),
                                       ("xdp_router_ipv4.bin.out", 58), ("xdp_rxq_info.bin.out", 42)])
def test_artifact_roms_rows(name, rows):
    img = read_image(ROMS / name)
    assert img.lanes == 4 and len(img.rows) == 256 and img.used_rows == rows


@needs_shared
def test_artifact_rom_variants():
    drop = read_image(ROMS / "XDP_DROP.bin")            # uppercase digits
    assert drop.rows[0][:2] == (Insn(0x95), Insn(0xB7, imm=1)) and drop.used_rows == 1
    early = read_image(ROMS / "XDP_DROP_early_exit.bin")   # one word on a line: lane 0
    assert early.rows[0][0] == Insn(0x96, imm=1)
    delay = read_image(ROMS / "XDP_DROP_delay.bin")     # 258 lines: the first 256 count
    assert len(delay.rows) == 256
    # the artifact's one-word lddw (xdp1 row 35 lane 1) followed by an empty lane
    x1 = read_image(ROMS / "xdp1.bin.out")
    assert x1.rows[35][1].opcode == 0x18 and x1.rows[35][1].dst == 1


def test_lenient_rom_without_final_newline_and_uppercase():
    text = encode_image(sample_image(), "rom").decode().upper().rstrip("\n")
    assert decode_image(text.encode()).rows == sample_image().rows


def test_bad_inputs(tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(b"\x7fELF not an image")
    with pytest.raises(InputError):
        read_image(p)
    p.write_text("xyz\n")
    with pytest.raises(InputError):
        read_image(p)
    q = write_image(sample_image(), tmp_path / "z.bin", "bin")
    q.write_bytes(q.read_bytes()[:-3])
    with pytest.raises(InputError, match="bytes"):
        read_image(q)
    r = write_image(sample_image(), tmp_path / "w.rom", "rom")
    sidecar_path(r).write_text(json.dumps({"format": "nope"}))
    with pytest.raises(InputError, match="map configuration"):
        read_image(r)


@pytest.mark.parametrize("fmt", FORMATS)
def test_compiled_samples_round_trip(tmp_path, fmt):
    from conftest import SAMPLES
    from hxdpc.compiler import CompileOptions, compile_program
    from isa.loader import load
    for name in ("xdp1", "xdp_adjust_tail", "simple_firewall", "xdp_tailcall"):
        src = SAMPLES / f"{name}.o"
        if not src.exists():
            continue
        img = compile_program(load(str(src))).image
        assert read_image(write_image(img, tmp_path / f"{name}.{fmt}", fmt)) == img
