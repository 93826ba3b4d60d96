"""Row syntax: an `Image` as text, one instruction-memory row per line, lane 0 first.

    # hxdpc image
    .name xdp_prog
    .lanes 4
    .rows 256
    .map {"name": "rxcnt", "type": 6, "key_size": 4, "value_size": 8, "max_entries": 256, ...}
    .bounds 0 34 1
       0: { r2 = *(u32 *)(r1 + 4) ; r1 = *(u32 *)(r1 + 0) ; nop ; nop }
       1: { r1 = 4660 ll ; lddw.hi 0x0 ; r0 = 1 ; exit }

- A lane is an instruction in llvm syntax (isa.disasm.format_insn with exact=True), or
  `nop` for an empty slot (None), `lddw.hi IMM` for the second word of a two-lane `lddw`
  (opcode 0, high 32 bits in imm), `.word 0xHEX` for any other word whose text would not
  give it back exactly (the hXDP word value, isa.insn.encode_word).  Branch offsets count
  rows (isa/image.py), so there are no labels.
- `N:` before a row is optional; when present it must be the row's index.
- `.rows N` pads the image with empty rows up to N (rows after the last non-empty one are
  not written).  `.map` is one MapDef as JSON (bytes as hex), in map-id order;
  `.bounds ROW LENGTH ACTION` is one `BoundsCheck`.  `#` starts a comment.
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Optional

from isa.asm import AsmError, parse_insn
from isa.disasm import canonical, format_insn
from isa.image import BoundsCheck, Image
from isa.insn import Insn, decode_word, encode_word, spec_or_none
from isa.opcodes import BY_KEY
from isa.program import MapDef
from isa.errors import quote

LDDW_OPCODE = BY_KEY["lddw"].opcode
HEADER = "# hxdpc image (row syntax: docs/isa.md)"
_ROW = re.compile(r"^\s*(?:(\d+)\s*:\s*)?\{(.*)\}\s*$")


def is_row_text(text: str) -> bool:
    """Whether a text is in row syntax (some line is a `{ ... }` row or a `.lanes` line)."""
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip()
        if _ROW.match(s) or s.startswith(".lanes"):
            return True
    return False


# ---- lanes ----

def format_lane(insn: Optional[Insn], after_lddw: bool = False) -> str:
    """Text of one lane; `after_lddw`: the lane before holds a lddw (this may be its
    second word)."""
    if insn is None:
        return "nop"
    if insn.opcode == 0 and (insn.imm or after_lddw) and not (insn.dst or insn.src or insn.off):
        return f"lddw.hi 0x{insn.imm & 0xFFFFFFFF:x}"
    spec = spec_or_none(insn)
    if spec is not None and insn.dst <= 10 and insn.src <= 10 and canonical(insn) == insn \
            and not (insn.opcode == 0 and insn == Insn(0)):
        text = format_insn(insn, exact=True).replace("\t", " ")
        try:
            if parse_insn(text) == insn:
                return text
        except AsmError:
            pass
    return f".word 0x{encode_word(insn):016x}"


def parse_lane(text: str) -> Optional[Insn]:
    t = text.strip()
    if t == "nop":
        return None
    m = re.fullmatch(r"lddw\.hi\s+(\S+)", t)
    if m:
        v = int(m.group(1), 0)
        if not 0 <= v < 1 << 32:
            raise AsmError(0, f"lddw.hi value {m.group(1)} does not fit in 32 bits")
        return Insn(0, imm=v - (1 << 32) if v >> 31 else v)
    m = re.fullmatch(r"\.word\s+(0x[0-9a-fA-F]{1,16})", t)
    if m:
        return decode_word(int(m.group(1), 16))
    return parse_insn(t)


# ---- maps ----

def _to_json(m: MapDef) -> dict:
    out = {}
    for f in dataclasses.fields(m):
        v = getattr(m, f.name)
        if isinstance(v, bytes):
            v = {"hex": v.hex()}
        elif isinstance(v, MapDef):
            v = _to_json(v)
        out[f.name] = v
    return out


_MAP_TYPES = {f.name: f.type for f in dataclasses.fields(MapDef)}
_INT_FIELDS = ("type", "key_size", "value_size", "max_entries", "flags")


def _from_json(d) -> MapDef:
    """A MapDef from a `.map` line's JSON; AsmError on a wrong field or a wrong type."""
    if not isinstance(d, dict):
        raise AsmError(0, "a .map line holds one JSON object")
    kw = {}
    for k, v in d.items():
        if k not in _MAP_TYPES:
            raise AsmError(0, f"unknown map field {quote(k)}")
        if isinstance(v, dict) and set(v) == {"hex"} and isinstance(v["hex"], str):
            try:
                v = bytes.fromhex(v["hex"])
            except ValueError:
                raise AsmError(0, f"map field {k}: not hex: {quote(v['hex'])}") from None
        elif k == "inner" and isinstance(v, dict):
            v = _from_json(v)
        ok = (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF if k in _INT_FIELDS
              else isinstance(v, str) if k in ("name", "section", "libbpf_name")
              else isinstance(v, dict) if k == "init_slots" else True)
        if not ok:
            raise AsmError(0, f"map field {k}: wrong type or range ({quote(v)})")
        kw[k] = v
    try:
        return MapDef(**kw)
    except TypeError as e:
        raise AsmError(0, f"bad map definition: {quote(str(e))}") from None


# ---- images ----

def format_rows(image: Image) -> str:
    """The row-syntax text of an image (parse_rows gives the same Image back)."""
    out = [HEADER]
    if image.name:
        out.append(f".name {image.name}")
    out += [f".lanes {image.lanes}", f".rows {len(image.rows)}"]
    out += [".map " + json.dumps(_to_json(m), sort_keys=True) for m in image.maps]
    out += [f".bounds {b.row} {b.length} {b.action}" for b in image.bounds]
    for n, row in enumerate(image.rows[:image.used_rows]):
        lanes = [format_lane(i, k > 0 and row[k - 1] is not None and row[k - 1].opcode == LDDW_OPCODE)
                 for k, i in enumerate(row)]
        out.append(f"{n:>4}: {{ " + " ; ".join(lanes) + " }")
    return "\n".join(out) + "\n"


def parse_rows(text: str) -> Image:
    """An Image from row syntax; AsmError(line, reason) on bad input."""
    name, lanes, nrows = "", None, None
    maps: list[MapDef] = []
    bounds: list[BoundsCheck] = []
    rows: list[tuple] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(".map") else raw.strip()
        if not line:
            continue
        try:
            if line.startswith("."):
                word, _, rest = line.partition(" ")
                rest = rest.strip()
                if word == ".name":
                    name = rest
                elif word == ".lanes":
                    lanes = _int(rest, "lane count", 1)
                elif word == ".rows":
                    nrows = _int(rest, "row count", 0)
                elif word == ".map":
                    try:
                        maps.append(_from_json(json.loads(rest)))
                    except json.JSONDecodeError as e:
                        raise AsmError(0, f"bad map JSON: {e.msg}") from None
                    except (RecursionError, ValueError):
                        raise AsmError(0, "bad map JSON: nested too deeply or a number too long") from None
                elif word == ".bounds":
                    parts = rest.split()
                    if len(parts) != 3:
                        raise AsmError(0, ".bounds needs ROW LENGTH ACTION")
                    bounds.append(BoundsCheck(*(_int(p, "bounds field", 0) for p in parts)))
                else:
                    raise AsmError(0, f"unknown directive {word}")
                continue
            m = _ROW.match(line)
            if not m:
                raise AsmError(0, f"not a row: {quote(line)}")
            if m.group(1) is not None and int(m.group(1)) != len(rows):
                raise AsmError(0, f"row number {m.group(1)} where row {len(rows)} was expected")
            row = tuple(parse_lane(t) for t in m.group(2).split(";"))
            if lanes is None:
                lanes = len(row)
            if len(row) != lanes:
                raise AsmError(0, f"row has {len(row)} lanes, the image has {lanes}")
            rows.append(row)
        except AsmError as e:
            raise AsmError(lineno, e.reason) from None
    lanes = lanes or 4
    if nrows is not None:
        if nrows < len(rows):
            raise AsmError(0, f".rows {nrows} but {len(rows)} rows are written")
        rows += [(None,) * lanes] * (nrows - len(rows))
    return Image(rows=rows, lanes=lanes, maps=maps, bounds=bounds, name=name)


def _int(text: str, what: str, low: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise AsmError(0, f"bad {what} {quote(text)}") from None
    if v < low:
        raise AsmError(0, f"bad {what} {v}")
    return v
