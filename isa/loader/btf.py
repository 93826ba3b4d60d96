"""A reader for the ``.BTF`` section (kernel Documentation/bpf/btf.rst), enough for maps.

BTF-defined maps (``SEC(".maps")``) are variables of an anonymous struct whose members encode
the definition: ``__uint(name, N)`` is ``int (*name)[N]`` (a PTR to an ARRAY with N elements)
and ``__type(name, T)`` is ``T *name`` (a PTR to T, whose size is the key/value size).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

from isa.errors import InputError, quote

BTF_MAGIC = 0xEB9F
(KIND_UNKN, KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD,
 KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR,
 KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(20)
KIND_NAMES = ["UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "VOLATILE",
              "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG",
              "TYPE_TAG", "ENUM64"]
MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
# bytes of kind-specific data after the 12-byte common header: (fixed, per vlen item)
_EXTRA = {KIND_INT: (4, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12),
          KIND_ENUM: (0, 8), KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12),
          KIND_DECL_TAG: (4, 0), KIND_ENUM64: (0, 12)}


@dataclass
class Member:
    name: str
    type: int
    offset: int = 0     # bits for struct members, bytes for DATASEC entries
    size: int = 0       # DATASEC entries only


@dataclass
class BtfType:
    id: int
    kind: int
    name: str
    size_or_type: int       # size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, type id otherwise
    vlen: int = 0
    members: list[Member] = field(default_factory=list)
    array: Optional[tuple[int, int, int]] = None   # (elem type, index type, nelems)
    linkage: int = 0        # VAR: 0 static, 1 global, 2 extern

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind] if self.kind < len(KIND_NAMES) else f"kind{self.kind}"


class Btf:
    """The types of one ``.BTF`` section; type 0 is void."""

    def __init__(self, data: bytes, where: str = ".BTF"):
        self.where = where
        self.types: list[BtfType] = [BtfType(0, KIND_UNKN, "void", 0)]
        self._parse(data)

    def _err(self, reason: str) -> InputError:
        return InputError(self.where, reason)

    def _parse(self, data: bytes) -> None:
        if len(data) < 24:
            raise self._err(f"truncated header ({len(data)} bytes)")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise self._err(f"bad magic 0x{magic:04x} (big-endian BTF is not supported)" if magic == 0x9FEB
                            else f"bad magic 0x{magic:04x}")
        if version != 1:
            raise self._err(f"unsupported BTF version {version}")
        if hdr_len < 24 or hdr_len > len(data):
            raise self._err(f"bad header length {hdr_len}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        base = hdr_len
        if base + type_off + type_len > len(data) or base + str_off + str_len > len(data):
            raise self._err("truncated: type or string section extends past the end of .BTF")
        self._strings = data[base + str_off: base + str_off + str_len]
        tdata = data[base + type_off: base + type_off + type_len]
        pos = 0
        while pos < len(tdata):
            if pos + 12 > len(tdata):
                raise self._err(f"truncated type {len(self.types)} at type offset {pos}")
            name_off, info, st = struct.unpack_from("<III", tdata, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            pos += 12
            if kind == KIND_UNKN or kind > KIND_ENUM64:
                raise self._err(f"type {len(self.types)}: unknown kind {kind} at type offset {pos - 12}")
            fixed, per = _EXTRA.get(kind, (0, 0))
            need = fixed + per * vlen
            if pos + need > len(tdata):
                raise self._err(f"truncated type {len(self.types)} ({KIND_NAMES[kind]})")
            t = BtfType(len(self.types), kind, self._str(name_off), st, vlen)
            if kind == KIND_ARRAY:
                t.array = struct.unpack_from("<III", tdata, pos)
            elif kind == KIND_VAR:
                t.linkage = struct.unpack_from("<I", tdata, pos)[0]
            elif kind in (KIND_STRUCT, KIND_UNION):
                for k in range(vlen):
                    n, ty, off = struct.unpack_from("<III", tdata, pos + 12 * k)
                    t.members.append(Member(self._str(n), ty, off))
            elif kind == KIND_DATASEC:
                for k in range(vlen):
                    ty, off, sz = struct.unpack_from("<III", tdata, pos + 12 * k)
                    t.members.append(Member("", ty, off, sz))
            elif kind == KIND_FUNC_PROTO:
                for k in range(vlen):
                    n, ty = struct.unpack_from("<II", tdata, pos + 8 * k)
                    t.members.append(Member(self._str(n), ty))
            pos += need
            self.types.append(t)

    def _str(self, off: int) -> str:
        if off >= len(self._strings) and off:
            raise self._err(f"string offset {off} past the string section ({len(self._strings)} bytes)")
        end = self._strings.find(b"\0", off)
        return self._strings[off: end if end >= 0 else len(self._strings)].decode("utf-8", "replace")

    # ---- queries ----
    def type(self, tid: int) -> BtfType:
        if not 0 <= tid < len(self.types):
            raise self._err(f"type id {tid} out of range ({len(self.types)} types)")
        return self.types[tid]

    def skip_mods(self, tid: int) -> BtfType:
        """The type behind typedefs and const/volatile/restrict/type-tag modifiers."""
        t = self.type(tid)
        for _ in range(len(self.types) + 1):
            if t.kind not in MODIFIERS:
                return t
            t = self.type(t.size_or_type)
        raise self._err(f"type {tid}: modifier loop")

    def resolve_size(self, tid: int, _depth: int = 0) -> int:
        """sizeof(type), as libbpf's btf__resolve_size computes it."""
        if _depth > 64:
            raise self._err(f"type {tid}: type chain too deep")
        t = self.type(tid)
        if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT):
            return t.size_or_type
        if t.kind == KIND_PTR:
            return 8
        if t.kind in MODIFIERS or t.kind == KIND_VAR:
            return self.resolve_size(t.size_or_type, _depth + 1)
        if t.kind == KIND_ARRAY:
            return t.array[2] * self.resolve_size(t.array[0], _depth + 1)
        raise self._err(f"type {tid} ({t.kind_name} {quote(t.name)}) has no size")

    def datasec(self, name: str) -> Optional[BtfType]:
        for t in self.types:
            if t.kind == KIND_DATASEC and t.name == name:
                return t
        return None
