"""Instruction text: llvm-objdump's syntax and the bpf_conformance suite's syntax.

Both come from the ISA table: ``OpSpec.llvm`` is the llvm template; the conformance
template is ``OpSpec.conf`` (the mnemonic) plus the operand layout of the row's kind
(``conf_template``).  ``isa.asm`` parses with the very same templates, so a change to the
table changes both directions at once.

Only the fields a template (or the variant) names are printed: an instruction whose
unused fields are non-zero prints like its canonical form (``canonical`` gives it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from isa.insn import Insn, slot_offsets, spec_or_none
from isa.opcodes import SRC_X, TABLE, Kind, OpSpec

SYNTAXES = ("llvm", "conf")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# which instruction field each placeholder prints
FIELD_OF = {"dst": "dst", "src": "src", "imm": "imm", "imm_target": "imm", "imm64": "imm",
            "imm64u": "imm", "imm64x": "imm", "off": "off", "offd": "off", "moff": "off",
            "coff": "off"}


def _imm3_is_reg(spec: OpSpec) -> bool:
    """Three-operand X forms keep their second source register in imm."""
    return spec.kind == Kind.ALU3 and bool(spec.opcode & SRC_X)


def conf_template(spec: OpSpec) -> str:
    """The bpf_conformance text of a row: its mnemonic and its kind's operand layout."""
    m, k = spec.conf, spec.kind
    rsrc = "%r{src}" if spec.reg_src else "{imm}"
    mem = "[%r{dst}{coff}]"
    if k in (Kind.ALU, Kind.MOV):
        return f"{m} %r{{dst}}, {rsrc}"
    if k == Kind.MOVSX:
        return f"{m} %r{{dst}}, %r{{src}}"
    if k in (Kind.NEG, Kind.END):
        return f"{m} %r{{dst}}"
    if k == Kind.ALU3:
        return f"{m} %r{{dst}}, %r{{src}}, " + ("%r{imm}" if _imm3_is_reg(spec) else "{imm}")
    if k == Kind.JA:
        return f"{m} " + ("{imm_target}" if spec.is_jmp32 else "{off}")
    if k == Kind.JCOND:
        return f"{m} %r{{dst}}, {rsrc}, {{off}}"
    if k == Kind.CALL_LOCAL:
        return f"{m} {{imm_target}}"
    if k in (Kind.CALL, Kind.CALL_KFUNC, Kind.PEXIT):
        return f"{m} {{imm}}"
    if k == Kind.CALLX:
        return "call %r{dst}"
    if k in (Kind.EXIT, Kind.NOP):
        return m
    if k == Kind.LDDW:
        return f"{m} %r{{dst}}, {{imm64x}}"
    if k in (Kind.LDX, Kind.LDXSX, Kind.LDX48):
        return f"{m} %r{{dst}}, [%r{{src}}{{coff}}]"
    if k == Kind.ST:
        return f"{m} {mem}, {{imm}}"
    if k in (Kind.STX, Kind.STX48, Kind.ATOMIC):
        return f"{m} {mem}, %r{{src}}"
    if k == Kind.BOUNDS:
        return f"{m} {{imm}}, {{offd}}"
    raise ValueError(f"no conformance syntax for {spec.key}")


def templates(spec: OpSpec, syntax: str) -> list[str]:
    """Templates the assembler accepts for a row (the first one is what we print)."""
    if syntax == "llvm":
        out = [spec.llvm]
        if spec.kind == Kind.ATOMIC and spec.size == 4:
            # LLVM 14 without alu32 prints `rN` where LLVM's alu32 syntax has `wN`
            out += [spec.llvm.replace("r{src}", "w{src}"), spec.llvm.replace("w{src}", "r{src}")]
        return list(dict.fromkeys(out))
    out = [conf_template(spec)]
    if spec.kind == Kind.CALLX:
        out.append("callx %r{dst}")
    if spec.kind == Kind.END and spec.op == "bswap":
        out.append(out[0].replace("bswap", "swap", 1))   # the suite's older spelling
    return out


def template_fields(template: str) -> set[str]:
    return {FIELD_OF[p] for p in PLACEHOLDER.findall(template)}


# rows whose llvm text LLVM 14 shares with another row (call by src): `exact` prints
# the conformance spelling for them so the text stays unambiguous
_LLVM_COUNT: dict[str, int] = {}
for _s in TABLE:
    _LLVM_COUNT[_s.llvm] = _LLVM_COUNT.get(_s.llvm, 0) + 1
AMBIGUOUS_LLVM = frozenset(s.key for s in TABLE if _LLVM_COUNT[s.llvm] > 1 and s.kind != Kind.CALL)


# What Debian 12's llvm-objdump (LLVM 14, default features: no alu32) does with each row;
# tests/test_asm_disasm.py checks these lists against the real tool.
# Rows it does not know (prints `<unknown>`): our text follows newer LLVM or docs/isa.md.
LLVM14_UNKNOWN = frozenset({
    *(f"{op}{w}_{s}" for op in ("mod", "smod") for w in (64, 32) for s in "kx"),
    *(f"jset{w}_{s}" for w in (64, 32) for s in "kx"),
    "bswap16", "bswap32", "bswap64", "ja32", "stb", "sth", "stw", "stdw", "ldxsb", "ldxsh", "ldxsw",
    *(f"lock_{f}{op}32" for op in ("or", "and", "xor") for f in ("", "fetch_")),
    "lock_xchg32", "lock_cmpxchg32",
})
# Rows LLVM 14 reads as another row (it ignores the field that tells them apart).
LLVM14_MISREAD = {
    "sdiv64_k": "div64_k", "sdiv64_x": "div64_x", "sdiv32_k": "div32_k", "sdiv32_x": "div32_x",
    "movsx864": "mov64_x", "movsx1664": "mov64_x", "movsx3264": "mov64_x",
    "movsx832": "mov32_x", "movsx1632": "mov32_x", "lock_fetch_add32": "lock_add32",
}


def llvm14_status(spec: OpSpec) -> str:
    if spec.extension:
        return "hXDP extension"
    if spec.key in LLVM14_UNKNOWN:
        return "unknown to LLVM 14"
    if spec.key in LLVM14_MISREAD:
        return f"LLVM 14 prints it as {LLVM14_MISREAD[spec.key]}"
    if spec.kind == Kind.CALLX:
        return "LLVM 14 reads the register from imm"
    if spec.kind == Kind.LDDW and spec.variant:
        return "LLVM 14 prints the low 32 bits only"
    return "LLVM 14"


def table_markdown() -> str:
    """The instruction listing of docs/isa.md, generated from the table."""
    out = ["| row | opcode | variant | llvm syntax | conformance syntax | text source |",
           "|---|---|---|---|---|---|"]
    for s in TABLE:
        var = f"{s.variant_field}={s.variant}" if s.variant_field else ""
        llvm = s.llvm.replace("\t", " ").replace("|", "\\|")
        conf = conf_template(s).replace("|", "\\|")
        out.append(f"| {s.key} | 0x{s.opcode:02x} | {var} | `{llvm}` | `{conf}` | {llvm14_status(s)} |")
    return "\n".join(out) + "\n"


def canonical(insn: Insn) -> Insn:
    """The instruction with every field its text does not show set to zero."""
    spec = insn.spec
    used = template_fields(spec.llvm) | template_fields(conf_template(spec))
    if spec.variant_field:
        used.add(spec.variant_field)
    kw = {f: (getattr(insn, f) if f in used else 0) for f in ("dst", "src", "off", "imm")}
    return Insn(insn.opcode, **kw)


def _signed(v: int) -> str:
    return f"+{v}" if v >= 0 else f"-{-v}"


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _value(name: str, insn: Insn) -> str:
    if name in ("dst", "src"):
        return str(getattr(insn, name))
    if name == "imm":
        return str(_s32(insn.imm))
    if name == "imm_target":
        return _signed(_s32(insn.imm))
    if name == "off":
        return _signed(insn.off)
    if name == "offd":
        return str(insn.off)
    if name == "moff":
        return f" + {insn.off}" if insn.off >= 0 else f" - {-insn.off}"
    if name == "coff":
        return "" if insn.off == 0 else _signed(insn.off)
    v = insn.imm & 0xFFFFFFFFFFFFFFFF
    if name == "imm64":
        return str(v - (1 << 64) if v >> 63 else v)
    if name == "imm64u":
        return str(v)
    if name == "imm64x":
        return hex(v)
    raise KeyError(name)


def fill(template: str, insn: Insn) -> str:
    return PLACEHOLDER.sub(lambda m: _value(m.group(1), insn), template)


def format_insn(insn: Insn, syntax: str = "llvm", *, exact: bool = False) -> str:
    """Text of one instruction.  llvm: llvm-objdump 14's text (documented syntax for what
    LLVM 14 does not know); conf: the bpf_conformance syntax.  With `exact`, the few llvm
    texts LLVM 14 shares between rows (local/kfunc calls print as `call N`) are written
    in the conformance spelling, which the assembler also reads."""
    spec = spec_or_none(insn)
    if spec is None:
        return "<unknown>"
    if syntax == "llvm":
        if exact and spec.key in AMBIGUOUS_LLVM:
            return fill(conf_template(spec), insn)
        return fill(spec.llvm, insn)
    if syntax == "conf":
        return fill(conf_template(spec), insn)
    raise ValueError(f"unknown syntax {syntax!r} (one of {SYNTAXES})")


def insn_text(insn: Insn) -> str:
    """One-line, lossless llvm-syntax text (schedules, reports, row syntax)."""
    return format_insn(insn, exact=True).replace("\t", " ")


# ---- llvm-objdump's layout ----

@dataclass(frozen=True)
class Symbol:
    name: str
    index: int      # instruction index in the section


def _targets(insns: Sequence[Insn], slots: list[int]) -> dict[int, int]:
    """Instruction index -> target slot of each branch (llvm-objdump annotates those)."""
    out = {}
    for n, i in enumerate(insns):
        spec = spec_or_none(i)
        if spec is None or not spec.is_branch:
            continue
        rel = _s32(i.imm) if (spec.kind == Kind.JA and spec.is_jmp32) else i.off
        out[n] = slots[n] + 1 + rel
    return out


def _annotation(slot: int, sym_slots: list[tuple[int, str]]) -> str:
    """llvm-objdump's `<sym>` / `<sym+0xN>` for a branch target (nearest symbol before)."""
    addr = (slot * 8) & 0xFFFFFFFFFFFFFFFF     # llvm wraps targets before the section start
    best: Optional[tuple[int, str]] = None
    for s, name in sym_slots:
        if s * 8 <= addr and (best is None or s >= best[0]):
            best = (s, name)
    if best is None:
        return ""
    delta = addr - best[0] * 8
    return f" <{best[1]}>" if delta == 0 else f" <{best[1]}+0x{delta:x}>"


def disassemble_section(insns: Sequence[Insn], symbols: Iterable, section_name: str) -> str:
    """llvm-objdump -d --no-show-raw-insn layout of one section: header, a
    `0000000000000000 <name>:` line per symbol (after a blank line), `N:\\tTEXT` lines
    (N the slot number, right-aligned in 8 columns) and `<sym+0xN>` branch annotations.
    `symbols` holds (name, instruction index) pairs or Symbol objects."""
    syms = [s if isinstance(s, Symbol) else Symbol(s[0], s[1]) for s in symbols]
    slots = slot_offsets(list(insns))
    end = slots[-1] + insns[-1].slots if insns else 0
    slot_of = lambda idx: slots[idx] if idx < len(slots) else end  # noqa: E731
    by_index: dict[int, list[str]] = {}
    for s in syms:
        by_index.setdefault(s.index, []).append(s.name)
    sym_slots = [(slot_of(s.index), s.name) for s in syms]
    targets = _targets(insns, slots)
    out = [f"Disassembly of section {section_name}:"]
    for n, insn in enumerate(insns):
        for name in by_index.get(n, []):
            out += ["", f"{slots[n] * 8:016x} <{name}>:"]
        text = format_insn(insn)
        if n in targets:
            text += _annotation(targets[n], sym_slots)
        out.append(f"{slots[n]:>8}:\t{text}")
    return "\n".join(out) + "\n"


def disassemble_file(path: str, sections: Iterable[tuple[str, Sequence[Insn], Iterable]]) -> str:
    """The whole llvm-objdump output for (section name, insns, symbols) triples."""
    parts = [f"\n{path}:\tfile format elf64-bpf\n"]
    for name, insns, symbols in sections:
        parts.append(disassemble_section(insns, symbols, name))
    return "\n".join(parts)
