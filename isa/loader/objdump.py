"""``llvm-objdump -d`` text as input (contract: the hXDP artifact's bytecode/*.objdump).

Both layouts are read: old LLVM (``xdp_prog1:`` symbol lines, raw bytes followed by a space)
and LLVM 14 (``0000000000000000 <xdp_prog1>:``), with or without raw bytes, with ``;``
source lines, ``<LBB0_3>`` annotations and ``-r`` relocation lines.  With raw bytes the bytes
are decoded (they are the truth; the text is only llvm's rendering); without them each
instruction's text is assembled (isa.asm.parse_insn).  There are no map definitions: map
``lddw`` stay as in the file.  ``-r`` relocation lines naming a function of the dump are kept
(so BPF-to-BPF calls link); the others (maps, data) cannot be resolved and are dropped.
Without raw bytes, LLVM 14 prints a BPF-to-BPF call exactly like a helper call (``call N``):
such text gives a helper call unless a ``-r`` line (R_BPF_64_32) marks the call as local.
"""
from __future__ import annotations

import re
from pathlib import Path

from isa.errors import InputError, quote
from isa.loader.elf import R_BPF_64_32, R_BPF_64_64, CodeSection, FuncRange, Relocation, Symbol
from isa.insn import DecodeError, Insn, decode, slot_offsets

_SECTION = re.compile(r"^Disassembly of section\s+(.*):\s*$")
_HEADER = re.compile(r"^\S.*:\s+file format\s+\S+\s*$")
_SYM_NEW = re.compile(r"^[0-9a-fA-F]+\s+<(.+)>:\s*$")
_SYM_OLD = re.compile(r"^([^\s;:][^\s:]*):\s*$")
_INSN = re.compile(r"^\s*(\d+):\s*(.*)$")
_RAW = re.compile(r"^((?:[0-9a-f]{2} ){7}[0-9a-f]{2}(?: (?:[0-9a-f]{2} ){7}[0-9a-f]{2})?)(?:\s+(.*))?$")
_RELOC = re.compile(r"^\s+([0-9a-fA-F]+):\s+(R_BPF_\w+)\s+(\S+)")
_ANNOT = re.compile(r"\s*<[^<>]*>\s*$")
_LABEL = re.compile(r"^(LBB\d+_\d+|\.L.*|LBB.*)$")
_RELOC_TYPES = {"R_BPF_64_64": R_BPF_64_64, "R_BPF_64_32": R_BPF_64_32}


def looks_like_objdump(text: str) -> bool:
    """True for llvm-objdump -d output (header lines, or numbered lines with raw bytes)."""
    for line in text.splitlines()[:200]:
        if _SECTION.match(line) or _HEADER.match(line):
            return True
        m = _INSN.match(line)
        if m and _RAW.match(m.group(2)):
            return True
    return False


class _Sec:
    def __init__(self, name: str, lineno: int):
        self.name, self.lineno = name, lineno
        self.insns: list[Insn] = []
        self.slot = 0
        self.syms: list[tuple[str, int]] = []     # (name, insn index)
        self.relocs: list[tuple[int, str, str, int]] = []   # (byte offset, type, symbol, line)


def parse_objdump(path) -> list[CodeSection]:
    """Code sections of an objdump text file (section index = position + 1)."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(p, f"cannot read: {e.strerror or e}") from None
    return parse_objdump_text(text, p)


def parse_objdump_text(text: str, path: str = "<text>") -> list[CodeSection]:
    secs: list[_Sec] = []
    cur = None
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{path}: line {lineno}"
        if not line.strip() or line.lstrip().startswith(";") or _HEADER.match(line):
            continue
        m = _SECTION.match(line)
        if m:
            cur = _Sec(m.group(1).strip(), lineno)
            secs.append(cur)
            continue
        m = _SYM_NEW.match(line) or _SYM_OLD.match(line)
        if m:
            if cur is None:
                cur = _Sec("", lineno)
                secs.append(cur)
            cur.syms.append((m.group(1), len(cur.insns)))
            continue
        m = _RELOC.match(line)
        if m:
            if cur is not None:
                cur.relocs.append((int(m.group(1), 16), m.group(2), m.group(3), lineno))
            continue
        m = _INSN.match(line)
        if not m:
            raise InputError(where, f"not an llvm-objdump line: {quote(line.strip())}")
        if cur is None:
            cur = _Sec("", lineno)
            secs.append(cur)
        slot = int(m.group(1))
        if slot != cur.slot:
            raise InputError(where, f"instruction number {slot}, expected {cur.slot} (missing or extra lines)")
        insn = _insn(m.group(2), where)
        cur.insns.append(insn)
        cur.slot += insn.slots
    return [_finish(s, k + 1, secs, path) for k, s in enumerate(secs)]


def _insn(rest: str, where: str) -> Insn:
    raw = _RAW.match(rest.strip())
    if raw:
        try:
            got = decode(bytes.fromhex(raw.group(1).replace(" ", "")))
        except DecodeError as e:
            raise InputError(where, e.reason) from None
        if len(got) != 1:
            raise InputError(where, "raw bytes hold more than one instruction")
        return got[0]
    try:
        from isa.asm import AsmError, parse_insn
    except ImportError as e:   # the assembler is part of the package; this is a broken install
        raise InputError(where, f"no raw bytes and no assembler available ({e})") from None
    body = _ANNOT.sub("", rest).strip()
    try:
        return parse_insn(body)
    except (AsmError, ValueError) as e:
        raise InputError(where, f"cannot assemble {quote(body)}: {e}") from None


def _finish(s: _Sec, index: int, secs: list[_Sec], path: str) -> CodeSection:
    funcs_at = [(n, i) for k, (n, i) in enumerate(s.syms) if k == 0 or not _LABEL.match(n)]
    if not funcs_at and s.insns:   # no symbol line at all: one function named after the section/file
        funcs_at = [(s.name or Path(path).stem, 0)]
    starts = sorted({i for _, i in funcs_at})
    ranges = []
    for n, i in funcs_at:
        later = [x for x in starts if x > i]
        ranges.append(FuncRange(n, i, later[0] if later else len(s.insns)))
    slots = slot_offsets(s.insns)
    relocs = []
    for off, tname, symname, lineno in s.relocs:
        sym = _code_symbol(symname, secs)
        if sym is None or tname not in _RELOC_TYPES:
            continue        # a map or data reference: nothing to link it to in a text dump
        if off % 8 or off // 8 not in slots:
            raise InputError(f"{path}: line {lineno}", f"relocation at byte offset {off} is not at an instruction")
        k = slots.index(off // 8)
        if tname == "R_BPF_64_32" and s.insns[k].opcode == 0x85 and s.insns[k].src == 0:
            # llvm-objdump prints local and helper calls alike (`call N`); the relocation tells
            s.insns[k] = s.insns[k].with_(src=1)
        relocs.append(Relocation(off, k, _RELOC_TYPES[tname], sym))
    return CodeSection(name=s.name, insns=s.insns, symbols=[(f.name, f.start) for f in ranges],
                       relocations=relocs, index=index, labels=list(s.syms), functions=ranges)


def _code_symbol(name: str, secs: list[_Sec]):
    for k, s in enumerate(secs):
        if name == s.name and s.name:
            return Symbol(name, 0, 0, "SECTION", "LOCAL", k + 1, s.name)
        for n, i in s.syms:
            if n == name and not _LABEL.match(n):
                return Symbol(name, slot_offsets(s.insns)[i] * 8 if i < len(s.insns) else len(s.insns) * 8,
                              0, "FUNC", "GLOBAL", k + 1, s.name)
    return None
