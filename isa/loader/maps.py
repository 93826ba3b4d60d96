"""Map definitions of a BPF object, in libbpf's order, so map indices are stable per object.

Order (libbpf ``bpf_object__init_maps``): legacy ``maps`` section (symbols by offset), BTF
``.maps`` (variables by offset), then one single-entry ARRAY per global-data section in ELF
section order (``.data``, ``.data.*``, ``.rodata``, ``.rodata.*``, ``.bss``, ``.bss.*``).

Global data maps, as libbpf 1.1 (``bpf_object__init_internal_map``) defines them: key_size 4,
value_size = section size, max_entries 1; ``.rodata*`` get BPF_F_RDONLY_PROG (0x80); any of
them gets BPF_F_MMAPABLE (0x400) when the BTF DATASEC of the section holds at least one
non-static variable (``map_is_mmapable``: so a ``.rodata`` with only ``static const`` data, or
an object without BTF, has no 0x400) (checked against libbpf.so.1 in tests/test_loader.py).  Our name is the section name; ``libbpf_name`` is libbpf's
(``internal_map_name``: up to 8 characters of the object name, the file name up to its first
dot, before the section name, unless the section name has a second dot; characters outside
[A-Za-z0-9_.] become ``_``).

Legacy ``maps``: ``struct bpf_map_def { u32 type, key_size, value_size, max_entries,
map_flags; }`` optionally followed by more fields (samples/bpf: inner_map_idx, numa_node;
iproute2: id, pinning, inner_id, inner_idx); each map is section size / number of map symbols.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from isa.errors import InputError, quote
from isa.loader.btf import KIND_ARRAY, KIND_FUNC_PROTO, KIND_PTR, KIND_STRUCT, KIND_VAR, Btf
from isa.loader.elf import ElfObject
from isa.program import MapDef
from isa.uapi import MAP_TYPE_IDS, MAP_TYPES

BPF_F_RDONLY_PROG = 0x80
BPF_F_MMAPABLE = 0x400
BPF_MAP_TYPE_ARRAY = MAP_TYPE_IDS["array"]
MAP_IN_MAP = (MAP_TYPE_IDS["array_of_maps"], MAP_TYPE_IDS["hash_of_maps"])
PROG_ARRAY = MAP_TYPE_IDS["prog_array"]
# Types an XDP world cannot hold: no type, kernel-struct-ops tables, and storages owned by a
# cgroup/socket/inode/task (their helpers are not available to XDP programs).
UNSUPPORTED_MAP_TYPES = {MAP_TYPE_IDS[n] for n in (
    "unspec", "struct_ops", "cgroup_storage", "percpu_cgroup_storage", "sk_storage",
    "inode_storage", "task_storage")}
BTF_MAP_INT_FIELDS = ("type", "max_entries", "map_flags", "numa_node", "map_extra",
                      "key_size", "value_size", "pinning")


@dataclass
class MapTable:
    """The object's maps plus how relocations find them."""
    maps: list[MapDef] = field(default_factory=list)
    by_symbol: dict[tuple[int, int], int] = field(default_factory=dict)  # (shndx, offset) -> index
    by_section: dict[int, int] = field(default_factory=dict)             # global-data shndx -> index
    map_sections: set[int] = field(default_factory=set)                  # "maps" / ".maps" shndx


def object_name(path: str) -> str:
    """libbpf's object name: the file name up to its first dot."""
    return Path(path).name.split(".", 1)[0]


def libbpf_internal_name(obj_name: str, section: str) -> str:
    sfx_len = max(7, len(section))
    pfx_len = 0 if (sfx_len >= 16 or "." in section[1:]) else min(16 - sfx_len - 1, len(obj_name))
    name = (obj_name[:pfx_len] + section)[:15]
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def is_data_section(name: str) -> Optional[str]:
    """'data', 'rodata' or 'bss' for global-data sections (libbpf's rules), else None."""
    for kind in ("data", "rodata", "bss"):
        if name == "." + kind or name.startswith(f".{kind}."):
            return kind
    return None


def read_maps(obj: ElfObject) -> MapTable:
    table = MapTable()
    legacy = obj.section_index("maps")
    if legacy is not None:
        _legacy_maps(obj, legacy, table)
    btf_maps = obj.section_index(".maps")
    if btf_maps is not None:
        _btf_maps(obj, btf_maps, table)
    _data_maps(obj, table)
    for m in table.maps:
        _check_type(obj.path, m)
    return table


def _check_type(path: str, m: MapDef) -> None:
    for d in (m, m.inner) if m.inner else (m,):
        if d.type not in MAP_TYPES or d.type in UNSUPPORTED_MAP_TYPES:
            what = MAP_TYPES.get(d.type, "unknown")
            raise InputError(path, f"map {quote(d.name)}: unsupported map type {d.type} ({what})")


def _legacy_maps(obj: ElfObject, shndx: int, table: MapTable) -> None:
    where = f"{obj.path}: section maps"
    data = obj.section_data(shndx)
    syms = sorted((s for s in obj.symbols_in(shndx) if s.type not in ("SECTION", "FILE") and s.name),
                  key=lambda s: s.value)
    if not syms:
        if data:
            raise InputError(where, "map definitions without map symbols")
        return
    size = len(data) // len(syms)
    if size < 4 or size * len(syms) != len(data) or size % 4:
        raise InputError(where, f"size {len(data)} is not {len(syms)} map definitions of equal size")
    defs = []
    for s in syms:
        if s.value % size or s.value + size > len(data):
            raise InputError(where, f"map {quote(s.name)} at offset {s.value} is not at a multiple of {size}")
        raw = data[s.value: s.value + size] + bytes(max(0, 20 - size))
        typ, ks, vs, me, fl = struct.unpack_from("<5I", raw, 0)
        extra = raw[20:size]
        inner_idx = struct.unpack_from("<I", raw, 20)[0] if size >= 24 else None
        m = MapDef(name=s.name, type=typ, key_size=ks, value_size=vs, max_entries=me, flags=fl,
                   section="maps", libbpf_name=s.name)
        defs.append((m, inner_idx, extra))
        table.by_symbol[(shndx, s.value)] = len(table.maps)
        table.maps.append(m)
    for m, inner_idx, _ in defs:   # samples/bpf: inner_map_idx names the template of map-in-map
        if m.type in MAP_IN_MAP and inner_idx is not None and inner_idx < len(defs):
            m.inner = defs[inner_idx][0]
    table.map_sections.add(shndx)


def _btf_maps(obj: ElfObject, shndx: int, table: MapTable) -> None:
    bi = obj.section_index(".BTF")
    if bi is None:
        raise InputError(f"{obj.path}: section .maps", "BTF-defined maps need a .BTF section")
    btf = Btf(obj.section_data(bi), f"{obj.path}: section .BTF")
    sec = btf.datasec(".maps")
    if sec is None:
        raise InputError(f"{obj.path}: section .BTF", "no DATASEC '.maps' describing section .maps")
    syms = {s.name: s for s in obj.symbols_in(shndx) if s.name and s.type != "SECTION"}
    found = []
    layout: dict[int, tuple[MapDef, int, int]] = {}   # map offset -> (def, size, 'values' offset)
    for entry in sec.members:
        var = btf.type(entry.type)
        if var.kind != KIND_VAR:
            raise InputError(f"{obj.path}: section .BTF", f"DATASEC .maps entry {entry.type} is not a VAR")
        sym = syms.get(var.name)
        if sym is None:
            raise InputError(f"{obj.path}: section .maps", f"map {quote(var.name)} has no ELF symbol")
        found.append((sym.value, var, sym.size))
    for off, var, size in sorted(found, key=lambda t: t[0]):
        where = f"{obj.path}: map {quote(var.name)}"
        m = _btf_map_def(btf, var.name, var.size_or_type, where, inner=False)
        table.by_symbol[(shndx, off)] = len(table.maps)
        table.maps.append(m)
        st = btf.skip_mods(var.size_or_type)
        last = st.members[-1] if st.members else None
        values_off = last.offset // 8 if last is not None and last.name == "values" else -1
        layout[off] = (m, max(size, btf.resolve_size(var.size_or_type)), values_off)
    table.map_sections.add(shndx)
    _init_slots(obj, shndx, layout)


def _init_slots(obj: ElfObject, shndx: int, layout: dict) -> None:
    """Static initialisers of prog_array and map-in-map ``values`` (libbpf's
    bpf_object__collect_map_relos): relocations in ``.rel.maps`` at slot i of the ``values``
    array of a map name the program or map stored there."""
    for off, _typ, sym, _add in obj.relocations_for(shndx):
        where = f"{obj.path}: section .maps, relocation at offset {off}"
        hit = [(base, v) for base, v in layout.items() if base <= off < base + v[1]]
        if not hit:
            raise InputError(where, f"no map at this offset (symbol {quote(sym.name)})")
        base, (m, _size, values_off) = hit[0]
        if values_off < 0 or off - base < values_off or (off - base - values_off) % 8:
            raise InputError(where, f"map {quote(m.name)}: relocation outside its 'values' slots")
        slot = (off - base - values_off) // 8
        if m.type in MAP_IN_MAP:
            if sym.shndx != shndx:
                raise InputError(where, f"map {quote(m.name)}: slot {slot} holds {quote(sym.name)}, which is not a map")
        elif m.type == PROG_ARRAY:
            if sym.type != "FUNC" or not obj.is_code(sym.shndx) or obj.section_name(sym.shndx) == ".text":
                raise InputError(where, f"map {quote(m.name)}: slot {slot} holds {quote(sym.name)}, which is not a program")
        else:
            raise InputError(where, f"map {quote(m.name)}: static values need prog_array or map-in-map")
        m.init_slots[slot] = sym.name


def _ptr_array_len(btf: Btf, tid: int, where: str, member: str) -> int:
    t = btf.skip_mods(tid)
    if t.kind != KIND_PTR:
        raise InputError(where, f"'{member}' is not a __uint() (expected a pointer to an array, got {t.kind_name})")
    arr = btf.type(t.size_or_type)
    if arr.kind != KIND_ARRAY:
        raise InputError(where, f"'{member}' is not a __uint() (pointer to {arr.kind_name}, not to an array)")
    return arr.array[2]


def _btf_map_def(btf: Btf, name: str, tid: int, where: str, inner: bool) -> MapDef:
    """libbpf's parse_btf_map_def: the members of the anonymous struct of one map."""
    st = btf.skip_mods(tid)
    if st.kind != KIND_STRUCT:
        raise InputError(where, f"map definition is a {st.kind_name}, not a struct")
    vals: dict[str, int] = {}
    inner_def: Optional[MapDef] = None
    for k, mem in enumerate(st.members):
        if not mem.name:
            raise InputError(where, f"member {k} has no name")
        if mem.name in BTF_MAP_INT_FIELDS:
            vals[mem.name] = _ptr_array_len(btf, mem.type, where, mem.name)
        elif mem.name in ("key", "value"):
            t = btf.skip_mods(mem.type)
            if t.kind != KIND_PTR:
                raise InputError(where, f"'{mem.name}' is not a __type() (got {t.kind_name})")
            size = btf.resolve_size(t.size_or_type)
            prev = vals.get(f"{mem.name}_size")
            if prev is not None and prev != size:
                raise InputError(where, f"conflicting {mem.name} size {prev} != {size}")
            vals[f"{mem.name}_size"] = size
        elif mem.name == "values":
            mtype = vals.get("type", 0)
            if inner:
                raise InputError(where, "multi-level inner maps are not supported")
            if k != len(st.members) - 1:
                raise InputError(where, "'values' must be the last member")
            if mtype not in MAP_IN_MAP and mtype != PROG_ARRAY:
                raise InputError(where, "'values' needs a map-in-map or prog_array type")
            if vals.get("value_size", 4) != 4:
                raise InputError(where, f"conflicting value size {vals['value_size']} != 4")
            vals["value_size"] = 4
            arr = btf.skip_mods(mem.type)
            if arr.kind != KIND_ARRAY or arr.array[2]:
                raise InputError(where, "'values' must be an array with zero elements")
            ptr = btf.skip_mods(arr.array[0])
            if ptr.kind != KIND_PTR:
                raise InputError(where, "'values' must be an array of pointers")
            target = btf.skip_mods(ptr.size_or_type)
            if mtype == PROG_ARRAY:
                if target.kind != KIND_FUNC_PROTO:
                    raise InputError(where, "prog_array 'values' must point to functions")
                continue
            if target.kind != KIND_STRUCT:
                raise InputError(where, "map-in-map 'values' must point to a map definition struct")
            inner_def = _btf_map_def(btf, f"{name}.inner", target.id, where + " (inner)", inner=True)
        # libbpf ignores unknown members when not strict; so do we
    if "pinning" in vals and vals["pinning"] not in (0, 1):
        raise InputError(where, f"unsupported pinning {vals['pinning']}")
    if inner_def is None and vals.get("type", 0) in MAP_IN_MAP and not inner:
        raise InputError(where, "map-in-map without an inner map definition ('values')")
    return MapDef(name=name, type=vals.get("type", 0), key_size=vals.get("key_size", 0),
                  value_size=vals.get("value_size", 0), max_entries=vals.get("max_entries", 0),
                  flags=vals.get("map_flags", 0), inner=inner_def, section=".maps", libbpf_name=name)


def _mmapable(btf: Optional[Btf], section: str) -> bool:
    sec = btf.datasec(section) if btf is not None else None
    if sec is None:
        return False
    return any(btf.type(e.type).kind == KIND_VAR and btf.type(e.type).linkage != 0 for e in sec.members)


def _data_maps(obj: ElfObject, table: MapTable) -> None:
    oname = object_name(obj.path)
    bi = obj.section_index(".BTF")
    btf = Btf(obj.section_data(bi), f"{obj.path}: section .BTF") if bi is not None else None
    for i, name in enumerate(obj.section_names):
        kind = is_data_section(name)
        if kind is None:
            continue
        sh = obj.section_header(i)
        nobits = sh["sh_type"] == "SHT_NOBITS"
        if (kind == "bss") != nobits or (not nobits and sh["sh_type"] != "SHT_PROGBITS"):
            continue
        if sh["sh_size"] == 0 or sh["sh_flags"] & 0x4:
            continue
        flags = (BPF_F_RDONLY_PROG if kind == "rodata" else 0) | (BPF_F_MMAPABLE if _mmapable(btf, name) else 0)
        table.by_section[i] = len(table.maps)
        table.maps.append(MapDef(name=name, type=BPF_MAP_TYPE_ARRAY, key_size=4, value_size=sh["sh_size"],
                                 max_entries=1, flags=flags, initial=obj.section_data(i), section=name,
                                 libbpf_name=libbpf_internal_name(oname, name)))
