"""Instruction-memory image files and the map-configuration sidecar (docs/compiler.md).

Every format stores the same thing: ``rows`` x ``lanes`` 64-bit words, each word
``imm << 32 | (off & 0xffff) << 16 | src << 12 | dst << 8 | opcode`` (isa.insn.encode_word;
as little-endian bytes this is exactly the eBPF encoding), an empty slot being 0.
- ``rom``: the artifact's text: 256 lines, one row each, 16 hex digits per lane, lane 3
  first and lane 0 last; 4 lanes x 256 rows only.
- ``bin``: a 16-byte header (``HXDPIMG\\0``, u16 version 1, u8 lanes, u8 0, u32 rows,
  little-endian) then the words as little-endian u64, row by row, lane 0 first.
- ``coe`` (Xilinx), ``mem`` ($readmemh), ``mif`` (Intel): one memory word per row, as wide
  as the row (lanes x 64 bits, highest lane in the most significant bits, like rom).
- ``json``: ``{"format": "hxdp-image", "lanes", "rows": [[word hex or null per lane]]}``
  plus the sidecar fields.
The sidecar ``OUT.mapcfg.json`` holds what the words cannot: maps (id = index, name, type,
sizes, flags, initial data), the hardware bounds checks, shape and helpers used.
``lddw``: lane k holds the first word (low half in imm), lane k+1 a word with opcode 0 and
the high half; in memory lane k's Insn carries the whole 64-bit constant.  A lddw word
without such a partner (the artifact's one-word form) loads its 32-bit imm, zero-extended.
"""
from __future__ import annotations

import dataclasses
import json
import re
import struct
from pathlib import Path
from typing import Optional

from isa.errors import InputError, expect_int, expect_list, expect_object, expect_str, quote
from isa.image import BoundsCheck, Image
from isa.insn import Insn, decode_word, encode_word
from isa.program import MapDef

FORMATS = ("rom", "bin", "coe", "mem", "mif", "json")
ROM_LANES, ROM_ROWS = 4, 256
BIN_MAGIC = b"HXDPIMG\0"
_BIN_HEAD = struct.Struct("<8sHBBI")
M32 = 0xFFFFFFFF


# ---- words <-> rows ----

def row_words(row, lanes: int) -> list[int]:
    """The lanes' 64-bit words (lane 0 first)."""
    out = []
    for lane in range(lanes):
        insn = row[lane] if lane < len(row) else None
        out.append(0 if insn is None else encode_word(insn))
    return out


def words_row(words: list[int]) -> tuple:
    """Decode one row's words (lane 0 first) into Insns; a lddw joins its partner word."""
    out: list[Optional[Insn]] = []
    n = 0
    while n < len(words):
        w = words[n]
        insn = None if w == 0 else decode_word(w)
        if insn is not None and insn.opcode == 0x18:
            lo = w >> 32
            if n + 1 < len(words) and words[n + 1] & 0xFFFFFFFF == 0:
                hi = words[n + 1] >> 32
                out.append(insn.with_(imm=lo | hi << 32))
                out.append(Insn(0, imm=hi - (1 << 32) if hi >> 31 else hi))
                n += 2
                continue
            insn = insn.with_(imm=lo)
        out.append(insn)
        n += 1
    return tuple(out)


def choose_format(out, fmt: Optional[str]) -> str:
    """The image format of output file `out`: `fmt` (--format) when given, else the one its
    extension names (fw.bin -> bin), else rom; InputError when the two contradict."""
    ext = Path(str(out)).suffix.lstrip(".").lower() if out else ""
    named = ext if ext in FORMATS else None
    if fmt is None:
        return named or "rom"
    if named is not None and named != fmt:
        raise InputError(str(out), f"the name says {named} but --format is {fmt} (drop --format "
                                   f"or name the file .{fmt})")
    return fmt


def sidecar_path(path) -> Path:
    return Path(str(path) + ".mapcfg.json")


# ---- the sidecar ----

def _map_json(m: MapDef, i: Optional[int]) -> dict:
    """Every MapDef field: bytes as hex, the inner template nested, dicts as [key, value]
    pairs (JSON keys would turn slot numbers into strings)."""
    d = {}
    for f in dataclasses.fields(m):
        v = getattr(m, f.name)
        if isinstance(v, (bytes, bytearray)):
            v = v.hex()
        elif isinstance(v, MapDef):
            v = _map_json(v, None)
        elif isinstance(v, dict):
            v = [[k, x] for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))]
        d[f.name] = v
    d["type_name"] = m.type_name
    return d if i is None else {"id": i, **d}


_MAP_INTS = ("type", "key_size", "value_size", "max_entries", "flags")
_MAP_STRS = ("name", "section", "libbpf_name")
_MAP_FIELDS = tuple(f.name for f in dataclasses.fields(MapDef)) + ("id", "type_name")


def _map_from(d, where: str = "map") -> MapDef:
    """A MapDef from its sidecar JSON, every field's type checked (InputError naming it)."""
    expect_object(where, d, _MAP_FIELDS, required=("name", "type", "key_size", "value_size", "max_entries"))
    kw = {}
    for name in _MAP_INTS:
        if name in d:
            kw[name] = expect_int(f"{where}.{name}", d[name])
    for name in _MAP_STRS:
        if name in d:
            kw[name] = expect_str(f"{where}.{name}", d[name])
    if d.get("initial") is not None:
        try:
            kw["initial"] = bytes.fromhex(expect_str(f"{where}.initial", d["initial"]))
        except ValueError:
            raise InputError(f"{where}.initial", f"not hex: {quote(d['initial'])}") from None
    if d.get("inner") is not None:
        kw["inner"] = _map_from(d["inner"], f"{where}.inner")
    if "init_slots" in d:
        slots = {}
        for i, pair in enumerate(expect_list(f"{where}.init_slots", d["init_slots"])):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
                raise InputError(f"{where}.init_slots[{i}]", "expected [slot, name]")
            slots[expect_int(f"{where}.init_slots[{i}]", pair[0])] = pair[1]
        kw["init_slots"] = slots
    return MapDef(**kw)


def helpers_used(image: Image) -> list[int]:
    out = set()
    for row in image.rows:
        for insn in row:
            if insn is not None and insn.opcode == 0x85 and insn.src == 0:
                out.add(insn.imm)
    return sorted(out)


def mapcfg(image: Image) -> dict:
    return {"format": "hxdp-mapcfg", "version": 1, "name": image.name, "lanes": image.lanes,
            "rows": len(image.rows), "used_rows": image.used_rows,
            "maps": [_map_json(m, i) for i, m in enumerate(image.maps)],
            "bounds": [{"row": b.row, "length": b.length, "action": b.action} for b in image.bounds],
            "helpers": helpers_used(image)}


def apply_mapcfg(image: Image, cfg: dict, where: str) -> Image:
    expect_object(where, cfg)
    if cfg.get("format") != "hxdp-mapcfg":
        raise InputError(where, 'not a map configuration (no "format": "hxdp-mapcfg")')
    maps_json = expect_list(f"{where}: maps", cfg.get("maps", []))
    ids = [expect_int(f"{where}: maps[{i}].id", expect_object(f"{where}: maps[{i}]", d).get("id"))
           for i, d in enumerate(maps_json)]
    if sorted(ids) != list(range(len(ids))):
        raise InputError(f"{where}: maps", f"map ids {ids} are not 0..{len(ids) - 1}")
    maps = [_map_from(d, f"{where}: maps[{i}]") for i, d in sorted(enumerate(maps_json), key=lambda x: ids[x[0]])]
    bounds = []
    for i, b in enumerate(expect_list(f"{where}: bounds", cfg.get("bounds", []))):
        w = f"{where}: bounds[{i}]"
        expect_object(w, b, ("row", "length", "action"), required=("row", "length", "action"))
        bounds.append(BoundsCheck(*(expect_int(f"{w}.{k}", b[k]) for k in ("row", "length", "action"))))
    lanes = expect_int(f"{where}: lanes", cfg.get("lanes", image.lanes), 1, 8)
    if lanes != image.lanes:
        raise InputError(where, f"says {lanes} lanes, the image has {image.lanes}")
    return Image(rows=image.rows, lanes=image.lanes, maps=maps, bounds=bounds, name=cfg.get("name", ""))


# ---- writers ----

def _hexrow(row, lanes: int) -> str:
    return "".join(f"{w:016x}" for w in reversed(row_words(row, lanes)))


def encode_image(image: Image, fmt: str) -> bytes:
    """The bytes of an image file (without its sidecar)."""
    lanes, rows = image.lanes, image.rows
    if fmt == "rom":
        if lanes != ROM_LANES:
            raise InputError("--format rom", f"the rom format holds 4 lanes, this image has {lanes} "
                                             f"(use bin, coe, mem, mif or json)")
        if len(rows) > ROM_ROWS and any(any(x is not None for x in r) for r in rows[ROM_ROWS:]):
            raise InputError("--format rom", f"the rom format holds 256 rows, this image needs "
                                             f"{image.used_rows} (use another format with --depth)")
        lines = [_hexrow(rows[i], 4) if i < len(rows) else "0" * 64 for i in range(ROM_ROWS)]
        return ("\n".join(lines) + "\n").encode()
    if fmt == "bin":
        out = bytearray(_BIN_HEAD.pack(BIN_MAGIC, 1, lanes, 0, len(rows)))
        for r in rows:
            for w in row_words(r, lanes):
                out += struct.pack("<Q", w)
        return bytes(out)
    head = f"hxdp-image lanes={lanes} rows={len(rows)} width={64 * lanes}"
    if fmt == "mem":
        return ("// " + head + "\n" + "".join(_hexrow(r, lanes) + "\n" for r in rows)).encode()
    if fmt == "coe":
        body = ",\n".join(_hexrow(r, lanes) for r in rows)
        return (f"; {head}\nmemory_initialization_radix=16;\nmemory_initialization_vector=\n{body};\n").encode()
    if fmt == "mif":
        body = "".join(f"\t{i} : {_hexrow(r, lanes)};\n" for i, r in enumerate(rows))
        return (f"-- {head}\nWIDTH={64 * lanes};\nDEPTH={len(rows)};\nADDRESS_RADIX=UNS;\n"
                f"DATA_RADIX=HEX;\nCONTENT BEGIN\n{body}END;\n").encode()
    if fmt == "json":
        doc = {"format": "hxdp-image", "version": 1, "lanes": lanes,
               "rows": [[None if w == 0 else f"{w:016x}" for w in row_words(r, lanes)] for r in rows],
               **{k: v for k, v in mapcfg(image).items() if k not in ("format", "version", "lanes", "rows")}}
        return (json.dumps(doc, indent=1) + "\n").encode()
    raise InputError("--format", f"unknown image format {fmt!r} ({', '.join(FORMATS)})")


def write_image(image: Image, path, fmt: str = "rom", sidecar: bool = True) -> Path:
    """Write the image and (by default) its `.mapcfg.json` beside it; returns the path."""
    data = encode_image(image, fmt)
    p = Path(path)
    p.write_bytes(data)
    if sidecar:
        sidecar_path(p).write_text(json.dumps(mapcfg(image), indent=1) + "\n")
    return p


# ---- readers ----

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _split_words(hexrow: str, lanes: int, where: str) -> list[int]:
    if len(hexrow) != 16 * lanes or not _HEX.match(hexrow):
        raise InputError(where, f"row {quote(hexrow)} is not {lanes} words of 16 hex digits")
    words = [int(hexrow[16 * i:16 * i + 16], 16) for i in range(lanes)]
    return list(reversed(words))


def _rows_from_hex(lines: list[str], lanes: int, where: str) -> list[tuple]:
    return [words_row(_split_words(l, lanes, f"{where} row {i}")) for i, l in enumerate(lines)]


def detect(data: bytes) -> Optional[str]:
    """The format of an image file's bytes, or None."""
    if data.startswith(BIN_MAGIC):
        return "bin"
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    s = text.lstrip()
    if s.startswith("{") and '"hxdp-image"' in s[:200]:
        return "json"
    if "memory_initialization_vector" in text:
        return "coe"
    if re.search(r"^\s*CONTENT\s+BEGIN", text, re.M | re.I) and "WIDTH" in text.upper():
        return "mif"
    if s.startswith("//") or s.startswith("@"):
        return "mem"
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if lines and all(_HEX.match(l) and len(l) in (16, 64) for l in lines):
        return "rom"
    if lines and all(_HEX.match(l) for l in lines):
        return "mem"
    return None


def decode_image(data: bytes, where: str = "image") -> Image:
    fmt = detect(data)
    if fmt is None:
        raise InputError(where, "not an instruction-memory image (rom, bin, coe, mem, mif or json)")
    if fmt == "bin":
        if len(data) < _BIN_HEAD.size:
            raise InputError(where, "truncated bin header")
        magic, ver, lanes, _, nrows = _BIN_HEAD.unpack_from(data)
        if ver != 1 or not 1 <= lanes <= 8:
            raise InputError(where, f"unsupported bin image (version {ver}, {lanes} lanes)")
        body = data[_BIN_HEAD.size:]
        if len(body) != nrows * lanes * 8:
            raise InputError(where, f"bin image says {nrows} rows of {lanes} lanes but holds {len(body)} bytes")
        ws = struct.unpack(f"<{nrows * lanes}Q", body)
        rows = [words_row(list(ws[r * lanes:(r + 1) * lanes])) for r in range(nrows)]
        return Image(rows=rows, lanes=lanes)
    text = data.decode("ascii")
    if fmt == "rom":
        lines = text.splitlines()[:ROM_ROWS]
        rows = []
        for i, l in enumerate(lines):
            l = l.strip()
            if len(l) == 16:          # a one-word line (XDP_DROP_early_exit.bin): lane 0
                l = "0" * 48 + l
            rows.append(words_row(_split_words(l, 4, f"{where} line {i + 1}")))
        rows += [(None,) * 4] * (ROM_ROWS - len(rows))
        return Image(rows=rows, lanes=4)
    if fmt == "json":
        doc = _json(text, where, "json image")
        expect_object(where, doc, required=("lanes", "rows"))
        lanes = expect_int(f"{where}: lanes", doc["lanes"], 1, 8)
        rows = [words_row(_json_words(r, lanes, f"{where}: rows[{i}]"))
                for i, r in enumerate(expect_list(f"{where}: rows", doc["rows"]))]
        img = Image(rows=rows, lanes=lanes)
        if "maps" in doc:
            img = apply_mapcfg(img, {**doc, "format": "hxdp-mapcfg", "lanes": lanes}, where)
        return img
    lanes = _lanes_from_header(text)
    if fmt == "mem":
        hexes = []
        for l in text.splitlines():
            l = l.split("//")[0].strip()
            if not l:
                continue
            if l.startswith("@"):
                raise InputError(where, "address jumps (@) in a mem image are not supported")
            hexes.extend(l.split())
    elif fmt == "coe":
        body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith(";"))
        vec = body.split("memory_initialization_vector", 1)[1].split("=", 1)[1].split(";")[0]
        hexes = [h for h in re.split(r"[,\s]+", vec) if h]
    else:  # mif
        body = re.split(r"CONTENT\s+BEGIN", text, flags=re.I)[1]
        body = re.split(r"^\s*END\s*;", body, flags=re.M | re.I)[0]
        hexes = []
        for l in body.splitlines():
            l = l.split("--")[0].strip()
            if ":" in l:
                hexes.append(l.split(":", 1)[1].strip().rstrip(";").strip())
    if lanes is None:
        lanes = len(hexes[0]) // 16 if hexes else 4
    return Image(rows=_rows_from_hex(hexes, lanes, where), lanes=lanes)


def _json(text: str, where: str, what: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(where, f"{what} is nested too deeply") from None
    except ValueError as e:
        raise InputError(where, f"{what} is not valid JSON ({quote(str(e))})") from None


def _json_words(row, lanes: int, where: str) -> list[int]:
    """One json-image row: `lanes` words, each 16 hex digits or null (an empty slot)."""
    expect_list(where, row)
    if len(row) != lanes:
        raise InputError(where, f"{len(row)} words where the image has {lanes} lanes")
    out = []
    for w in row:
        if w is not None and not (isinstance(w, str) and len(w) == 16 and _HEX.match(w)):
            raise InputError(where, f"word {quote(w)} is not 16 hex digits or null")
        out.append(0 if w is None else int(w, 16))
    return out


def _lanes_from_header(text: str) -> Optional[int]:
    m = re.search(r"hxdp-image lanes=(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.search(r"WIDTH\s*=\s*(\d+)", text)
    return int(m.group(1)) // 64 if m else None


def read_image(path, sidecar: bool = True) -> Image:
    """Read an image file (format recognised by content) and its sidecar when present."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(str(path), e.strerror or str(e)) from None
    img = decode_image(data, str(path))
    sc = sidecar_path(p)
    if sidecar and sc.exists():
        try:
            text = sc.read_text(encoding="utf-8")
        except (ValueError, OSError) as e:
            raise InputError(str(sc), f"cannot read the map configuration ({quote(str(e))})") from None
        cfg = _json(text, str(sc), "the map configuration")
        img = apply_mapcfg(img, cfg, str(sc))
    return img


def is_image(path) -> bool:
    """Does the file look like an instruction-memory image (not an ELF or program text)?"""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return detect(head if len(head) < 4096 else head[:head.rfind(b"\n") + 1] or head) is not None
