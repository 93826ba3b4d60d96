"""Assembler for both instruction syntaxes: llvm-objdump's (`r0 = 1`, `if r1 > r2 goto +3`)
and the bpf_conformance suite's (`mov %r0, 1`, `jgt %r1, %r2, +3`), detected per line.

isa/grammar.lark splits the text into labels and statements (flat token lists); each
statement is matched against the ISA table's templates (isa.disasm.templates), lexed by
the same grammar.  So the table is the only place where instructions are spelt, and
whatever isa.disasm prints, this module reads back.

Also read: llvm-objdump output (`   12:\\tr0 = 1`, `0000000000000078 <LBB0_3>:` become
labels, `<sym+0x10>` annotations and the header lines are skipped), `.section NAME`
(other directives are ignored), `#` and `//` comments, jump targets as `+N`/`-N` or
labels, and the suite's rule that the label `exit`, when not defined, is the first
`exit` instruction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

from lark import Lark, Tree
from lark.exceptions import UnexpectedInput

from isa.disasm import AMBIGUOUS_LLVM, SYNTAXES, conf_template, templates
from isa.insn import Insn, spec_or_none
from isa.opcodes import TABLE, Kind, OpSpec
from isa.program import Function, Program
from isa.errors import quote

GRAMMAR = Path(__file__).with_name("grammar.lark")


class AsmError(ValueError):
    """Bad assembly text; `line` is 1-based (0: not tied to a line)."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(), start=["start", "tokens"], parser="lalr",
                propagate_positions=True, maybe_placeholders=False)


Tok = tuple[str, str]          # ("word" | "number" | "punct", text)


def _toks(tree: Tree) -> list[Tok]:
    return [(c.data, str(c.children[0])) for c in tree.children]


def lex(text: str) -> list[Tok]:
    """Tokens of one statement (the grammar's `tokens` rule)."""
    try:
        return _toks(_parser().parse(text, start="tokens"))
    except UnexpectedInput as e:
        raise AsmError(0, f"unexpected character {quote(text[e.pos_in_stream:e.pos_in_stream + 1])}" if
                       getattr(e, "pos_in_stream", None) is not None else quote(str(e))) from None


# ---- templates compiled to token patterns ----

_PH = re.compile(r"([rw]?)\{(\w+)\}")


@dataclass(frozen=True)
class Pattern:
    spec: OpSpec
    syntax: str
    items: tuple        # ("lit", tok) | ("reg", prefix, placeholder) | ("val", placeholder)

    @property
    def key(self) -> tuple:
        return tuple(_item_key(i) for i in self.items[:2])


def _item_key(item) -> str:
    if item[0] == "lit":
        return item[1][1]
    if item[0] == "reg":
        return "%reg" + item[1]
    return "%val"


def _compile(template: str, spec: OpSpec, syntax: str) -> Pattern:
    items: list = []
    pos = 0
    for m in _PH.finditer(template):
        items += [("lit", t) for t in lex(template[pos:m.start()])]
        if m.group(1):
            items.append(("reg", m.group(1), m.group(2)))
        else:
            items.append(("val", m.group(2)))
        pos = m.end()
    items += [("lit", t) for t in lex(template[pos:])]
    return Pattern(spec, syntax, tuple(items))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, list[Pattern]]:
    out: dict[str, list[Pattern]] = {s: [] for s in SYNTAXES}
    for spec in TABLE:
        for syntax in SYNTAXES:
            tpls = templates(spec, syntax)
            if syntax == "llvm" and spec.kind == Kind.CALL_LOCAL:
                tpls = tpls + ["call {label}"]       # `call func` names a local function
            if syntax == "llvm" and spec.key in AMBIGUOUS_LLVM:
                tpls = tpls + [conf_template(spec)]  # format_insn(exact=True) spelling
            for t in tpls:
                out[syntax].append(_compile(t, spec, syntax))
    return out


@lru_cache(maxsize=4)
def _index(syntax: Optional[str]) -> dict[tuple, list[Pattern]]:
    idx: dict[tuple, list[Pattern]] = {}
    for s in (SYNTAXES if syntax is None else (syntax,)):
        for p in _patterns()[s]:
            idx.setdefault(p.key, []).append(p)
    return idx


# ---- matching ----

_REG = re.compile(r"([rw])(\d+)$")


def _number(toks: list[Tok], i: int, signed: bool, sign_required: bool = False) -> Optional[tuple[int, int]]:
    """(value, next index) for `[+|-]NUMBER` at toks[i]."""
    neg = False
    if i < len(toks) and toks[i] in (("punct", "-"), ("punct", "+")):
        neg = toks[i][1] == "-"
        i += 1
    elif sign_required:
        return None
    if i >= len(toks) or toks[i][0] != "number" or (neg and not signed):
        return None
    v = int(toks[i][1], 0)
    return (-v if neg else v), i + 1


@dataclass
class Parsed:
    spec: OpSpec
    fields: dict            # field -> int
    label: Optional[tuple[str, str]] = None     # (field, label name) to resolve


def _match(p: Pattern, toks: list[Tok]) -> Optional[Parsed]:
    fields: dict[str, int] = {}
    label = None
    i = 0

    def put(f: str, v: int) -> bool:
        if f in fields and fields[f] != v:
            return False
        fields[f] = v
        return True

    for item in p.items:
        if item[0] == "lit":
            if i >= len(toks) or toks[i] != item[1]:
                return None
            i += 1
        elif item[0] == "reg":
            if i >= len(toks) or toks[i][0] != "word":
                return None
            m = _REG.match(toks[i][1])
            if not m or m.group(1) != item[1] or not put(_FIELD[item[2]], int(m.group(2))):
                return None
            i += 1
        else:
            name = item[1]
            f = _FIELD[name]
            if name in ("off", "imm_target", "label"):
                if i < len(toks) and toks[i][0] == "word" and not _REG.match(toks[i][1]):
                    label = (f, toks[i][1])
                    i += 1
                    continue
                if name == "label":
                    return None
                r = _number(toks, i, True)
            elif name == "moff":
                r = _number(toks, i, True, sign_required=True)
            elif name == "coff":
                r = _number(toks, i, True, sign_required=True) or (0, i)
            else:
                r = _number(toks, i, True)
            if r is None or not put(f, r[0]):
                return None
            i = r[1]
    if i != len(toks):
        return None
    return Parsed(p.spec, fields, label)


_FIELD = {"dst": "dst", "src": "src", "imm": "imm", "imm_target": "imm", "imm64": "imm",
          "imm64u": "imm", "imm64x": "imm", "off": "off", "offd": "off", "moff": "off",
          "coff": "off", "label": "imm"}


def _key_of(toks: list[Tok]) -> list[tuple]:
    """Index keys a token list may have (a number may start a value)."""
    def k(t: Tok) -> list[str]:
        if t[0] == "word":
            m = _REG.match(t[1])
            return [t[1], "%reg" + m.group(1)] if m else [t[1], "%val"]
        if t[0] == "number" or t[1] in "+-":
            return [t[1], "%val"]
        return [t[1]]
    a = k(toks[0])
    b = k(toks[1]) if len(toks) > 1 else []
    return [(x,) for x in a] + [(x, y) for x in a for y in b]


def parse_statement(toks: list[Tok], syntax: Optional[str] = None) -> Parsed:
    idx = _index(syntax)
    for key in _key_of(toks):
        for p in idx.get(key, ()):
            r = _match(p, toks)
            if r is not None:
                return r
    raise AsmError(0, "not an instruction" + (f" (no {syntax} syntax matches)" if syntax else ""))


def _check_range(parsed: Parsed) -> None:
    f = parsed.fields
    for r in ("dst", "src"):
        if not 0 <= f.get(r, 0) <= 10:
            raise AsmError(0, f"register r{f[r]} out of range (r0-r10)")
    if not -0x8000 <= f.get("off", 0) <= 0x7FFF:
        raise AsmError(0, f"offset {f['off']} does not fit in 16 bits")
    imm = f.get("imm", 0)
    if parsed.spec.kind == Kind.LDDW:
        if not -(1 << 63) <= imm < (1 << 64):
            raise AsmError(0, f"constant {imm} does not fit in 64 bits")
    elif parsed.spec.kind == Kind.ALU3 and parsed.spec.opcode & 0x08:
        if not 0 <= imm <= 10:
            raise AsmError(0, f"register r{imm} out of range (r0-r10)")
    elif not -(1 << 31) <= imm < (1 << 32):
        raise AsmError(0, f"immediate {imm} does not fit in 32 bits")


def _build(parsed: Parsed) -> Insn:
    _check_range(parsed)
    spec, f = parsed.spec, dict(parsed.fields)
    if spec.variant_field:
        f[spec.variant_field] = spec.variant
    imm = f.get("imm", 0)
    if spec.kind == Kind.LDDW:
        imm &= (1 << 64) - 1
    else:
        imm &= 0xFFFFFFFF
        imm = imm - (1 << 32) if imm >> 31 else imm
    insn = Insn(spec.opcode, f.get("dst", 0), f.get("src", 0), f.get("off", 0), imm)
    assert spec_or_none(insn) is spec, (insn, spec.key)
    return insn


def parse_insn(text: str, syntax: Optional[str] = None) -> Insn:
    """One instruction from its text (no labels: jump targets must be +N/-N)."""
    toks = lex(text)
    if not toks:
        raise AsmError(0, "empty instruction")
    try:
        parsed = parse_statement(toks, syntax)
    except AsmError as e:
        raise AsmError(0, f"{e.reason}: {quote(text.strip())}") from None
    if parsed.label is not None:
        raise AsmError(0, f"label {quote(parsed.label[1])} where a number is needed")
    return _build(parsed)


# ---- whole files ----

_OBJDUMP_INSN = re.compile(r"^\s*\d+:\s+(?:(?:[0-9a-f]{2} ){7}[0-9a-f]{2}(?: (?:[0-9a-f]{2} ){7}[0-9a-f]{2})?\s+)?")
_OBJDUMP_SYM = re.compile(r"^\s*[0-9a-fA-F]{8,16}\s+<([^<>\s]+)>:\s*$")
_ANNOT = re.compile(r"\s*<[^<>\s]+>\s*$")
_SECTION = re.compile(r"^\s*(?:Disassembly of section\s+(\S+):|\.section\s+\"?([^\s\",]+))")
_HEADER = re.compile(r"^\s*\S.*:\s+file format\s")
_DIRECTIVE = re.compile(r"^\s*(\.[A-Za-z_]\w*)(\s.*)?$")
# directives that carry nothing an instruction list needs
IGNORED_DIRECTIVES = {".text", ".globl", ".global", ".type", ".size", ".p2align", ".align",
                      ".file", ".ident", ".addrsig", ".local", ".weak", ".hidden"}


def _normalise(line: str) -> tuple[str, Optional[str]]:
    """One source line as the grammar reads it, and the section it names (if any)."""
    m = _SECTION.match(line)
    if m:
        return "", m.group(1) or m.group(2)
    m = _OBJDUMP_SYM.match(line)
    if m:
        return m.group(1) + ":", None
    if _HEADER.match(line):
        return "", None
    m = _DIRECTIVE.match(line.split("#", 1)[0])
    if m and not line.rstrip().endswith(":"):
        if m.group(1) not in IGNORED_DIRECTIVES:
            raise _Directive(m.group(1))
        return "", None
    line = _OBJDUMP_INSN.sub("", line, count=1)
    return _ANNOT.sub("", line.split("#", 1)[0].split("//", 1)[0]), None


class _Directive(Exception):
    pass


@dataclass
class Listing:
    """An assembled text: instructions, label -> instruction index, section name."""
    insns: list[Insn]
    labels: dict[str, int] = field(default_factory=dict)
    section: str = ""
    local_calls: list[int] = field(default_factory=list)   # indices of call_local targets
    lines: list[int] = field(default_factory=list)         # source line of each insn


def assemble_listing(text: str, syntax: Optional[str] = None) -> Listing:
    if syntax is not None and syntax not in SYNTAXES:
        raise ValueError(f"unknown syntax {syntax!r}")
    src_lines = text.split("\n")
    section = ""
    norm = []
    for lineno, line in enumerate(src_lines, 1):
        try:
            n, sec = _normalise(line)
        except _Directive as e:
            raise AsmError(lineno, f"unsupported directive {e.args[0]}") from None
        if sec and section and sec != section and line.lstrip().startswith("Disassembly"):
            raise AsmError(lineno, f"a second section ({sec}): one section per assembly text")
        if sec and not section:
            section = sec
        norm.append(n)
    try:
        tree = _parser().parse("\n".join(norm) + "\n", start="start")
    except UnexpectedInput as e:
        raise AsmError(e.line, f"syntax error near {quote(src_lines[e.line - 1].strip())}") from None
    parsed: list[tuple[Parsed, int]] = []
    labels: dict[str, int] = {}
    for line in tree.children:
        lineno = line.meta.line
        for child in line.children:
            if child.data == "label":
                name = str(child.children[0])
                if name in labels:
                    raise AsmError(lineno, f"label {quote(name)} defined twice")
                labels[name] = len(parsed)
            else:
                try:
                    parsed.append((parse_statement(_toks(child), syntax), lineno))
                except AsmError as e:
                    raise AsmError(lineno, f"{e.reason}: {quote(src_lines[lineno - 1].strip())}") from None
    return _resolve(parsed, labels, section)


def _resolve(parsed: list[tuple[Parsed, int]], labels: dict[str, int], section: str) -> Listing:
    # slot of each statement (lddw = 2), for relative targets
    sizes = [p.spec.slots for p, _ in parsed]
    slots = [0]
    for s in sizes:
        slots.append(slots[-1] + s)
    first_exit = next((n for n, (p, _) in enumerate(parsed) if p.spec.kind == Kind.EXIT), None)
    insns, calls, lines = [], [], []
    for n, (p, lineno) in enumerate(parsed):
        if p.label is not None:
            fld, name = p.label
            target = labels.get(name)
            if target is None and name == "exit":
                target = first_exit
            if target is None:
                raise AsmError(lineno, f"undefined label {quote(name)}")
            p.fields[fld] = slots[target] - (slots[n] + 1)
            if p.spec.kind == Kind.CALL_LOCAL:
                calls.append(target)
        elif p.spec.kind == Kind.CALL_LOCAL:
            t = slots[n] + 1 + p.fields.get("imm", 0)
            if t in slots[:-1]:
                calls.append(slots.index(t))
        try:
            insns.append(_build(p))
        except AsmError as e:
            raise AsmError(lineno, e.reason) from None
        lines.append(lineno)
    return Listing(insns, labels, section, calls, lines)


def assemble(text: str, syntax: Optional[str] = None) -> list[Insn]:
    """Instructions of an assembly text (syntax None: each line in either syntax)."""
    return assemble_listing(text, syntax).insns


def assemble_program(text: str, name: str = "xdp", syntax: Optional[str] = None) -> Program:
    """A Program: the entry function at 0 (named by a label there, else `name`) plus one
    function per local-call target (named by its label)."""
    return program_of(assemble_listing(text, syntax), name)


def program_of(lst: Listing, name: str = "xdp") -> Program:
    """The Program of an assembled listing (see assemble_program)."""
    by_index: dict[int, str] = {}
    for label, idx in lst.labels.items():
        by_index.setdefault(idx, label)
    section = lst.section or "xdp"
    entry = by_index.get(0, name)
    functions = [Function(entry, 0, section)]
    for idx in sorted(set(lst.local_calls)):
        if idx != 0:
            functions.append(Function(by_index.get(idx, f"func_{idx}"), idx, section))
    return Program(name=entry, insns=lst.insns, functions=functions, section=section)
