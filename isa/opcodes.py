"""The one instruction table of the eBPF ISA (RFC 9669) plus the hXDP extensions.

Every other part (encoder, decoder, assembler, disassembler, interpreter, compiler
passes, Sephirot) reads this table instead of keeping opcode sets of its own.

An instruction is identified by its opcode byte and, for a few opcodes, by a second
field (the *variant*): ``off`` for sdiv/smod/movsx and sign-extending loads, ``imm`` for
atomics and byte swaps, ``src`` for calls and ``lddw``.  ``spec_of(insn)`` finds the row.

Text templates use ``{dst}``, ``{src}``, ``{imm}`` (signed decimal; after ``r``/``w`` a
register number), ``{off}`` (jump offset ``+N``/``-N``), ``{imm_target}`` (the same for a
jump offset held in imm), ``{offd}`` (off as signed decimal), ``{moff}`` (memory offset
`` + N``/`` - N``), ``{imm64}`` (signed 64-bit) and ``{imm64u}`` (unsigned).  ``llvm`` is
the text of Debian 12's llvm-objdump (LLVM 14) where LLVM 14 knows the instruction, else
the syntax of newer LLVM or our own (docs/isa.md); ``conf`` is the bpf_conformance
suite's mnemonic.  isa.disasm and isa.asm are both driven by these templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

# ---- field constants (RFC 9669 section 3/4/5) ----
CLS_LD, CLS_LDX, CLS_ST, CLS_STX, CLS_ALU, CLS_JMP, CLS_JMP32, CLS_ALU64 = range(8)
SRC_K, SRC_X = 0x00, 0x08
SIZE_W, SIZE_H, SIZE_B, SIZE_DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {SIZE_W: 4, SIZE_H: 2, SIZE_B: 1, SIZE_DW: 8}
SIZE_NAME = {1: "b", 2: "h", 4: "w", 8: "dw"}
MODE_IMM, MODE_ABS, MODE_IND, MODE_MEM, MODE_MEMSX, MODE_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0

ALU_OPS = {  # name -> op nibble (already shifted)
    "add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50,
    "lsh": 0x60, "rsh": 0x70, "neg": 0x80, "mod": 0x90, "xor": 0xA0, "mov": 0xB0,
    "arsh": 0xC0, "end": 0xD0,
}
ALU_OP_NAME = {v: k for k, v in ALU_OPS.items()}
JMP_OPS = {
    "ja": 0x00, "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50,
    "jsgt": 0x60, "jsge": 0x70, "call": 0x80, "exit": 0x90, "jlt": 0xA0, "jle": 0xB0,
    "jslt": 0xC0, "jsle": 0xD0,
}
# llvm-objdump operator text of each ALU op and each conditional jump
ALU_SYM = {"add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "or": "|=", "and": "&=",
           "lsh": "<<=", "rsh": ">>=", "mod": "%=", "xor": "^=", "arsh": "s>>=", "mov": "="}
ALU3_SYM = {k: v[:-1] if v != "=" else "" for k, v in ALU_SYM.items()}  # "+", "-", ... for dst = src OP x
JMP_SYM = {"jeq": "==", "jgt": ">", "jge": ">=", "jset": "&", "jne": "!=", "jsgt": "s>",
           "jsge": "s>=", "jlt": "<", "jle": "<=", "jslt": "s<", "jsle": "s<="}

# atomic operations: imm field values
ATOMIC_FETCH = 0x01
ATOMIC_XCHG = 0xE0 | ATOMIC_FETCH
ATOMIC_CMPXCHG = 0xF0 | ATOMIC_FETCH
ATOMIC_OPS = {"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xA0}

# lddw source values (RFC 9669 5.4)
LDDW_IMM64, LDDW_MAP_FD, LDDW_MAP_VALUE, LDDW_BTF_ID, LDDW_FUNC, LDDW_MAP_IDX, LDDW_MAP_IDX_VALUE = range(7)
LDDW_SRC_NAME = {1: "map_fd", 2: "map_value", 3: "btf_id", 4: "func", 5: "map_idx", 6: "map_idx_value"}
# call source values
CALL_HELPER, CALL_LOCAL, CALL_KFUNC = 0, 1, 2

# ---- hXDP extension opcodes (see docs/isa.md) ----
OP_NOP = 0x00          # empty VLIW slot (an all-zero word)
OP_LDX48 = 0x59        # dst = *(u48 *)(src + off)        (artifact encoding, unused by RFC 9669)
OP_STX48 = 0x5A        # *(u48 *)(dst + off) = src        (artifact encoding, unused by RFC 9669)
OP_PEXIT = 0x96        # exit with r0 = imm (XDP action)  (artifact encoding, JMP32|EXIT is invalid in RFC 9669)
OP_ALU3_64_K = 0xE7    # dst = src OP imm   (64-bit), OP = ALU op nibble in off bits 4..7
OP_ALU3_64_X = 0xEF    # dst = src OP rX    (64-bit), X = imm
OP_ALU3_32_K = 0xE4    # w-forms of the same
OP_ALU3_32_X = 0xEC
OP_LDDW = CLS_LD | MODE_IMM | SIZE_DW   # 0x18: every lddw variant, two 8-byte slots
OP_BOUNDS = 0xE5       # hardware bounds check: if data + imm > data_end then exit with action off


class Kind(str, Enum):
    ALU = "alu"            # dst = dst OP (src|imm)
    NEG = "neg"
    MOV = "mov"
    MOVSX = "movsx"
    END = "end"            # byte swap: le/be (ALU class) or bswap (ALU64 class)
    ALU3 = "alu3"          # hXDP: dst = src OP (imm|reg)
    JA = "ja"
    JCOND = "jcond"
    CALL = "call"          # helper call by number
    CALL_LOCAL = "call_local"
    CALL_KFUNC = "call_kfunc"
    CALLX = "callx"        # helper number in a register (dst field)
    EXIT = "exit"
    PEXIT = "pexit"        # hXDP parametrised exit
    LDDW = "lddw"
    LDX = "ldx"
    LDXSX = "ldxsx"
    ST = "st"
    STX = "stx"
    ATOMIC = "atomic"
    LDX48 = "ldx48"
    STX48 = "stx48"
    BOUNDS = "bounds"      # hXDP hardware packet bounds check
    NOP = "nop"


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One row of the table: what an (opcode, variant) pair means."""
    key: str                    # unique name, e.g. "add64_k", "ldxw", "lock_fetch_add32"
    opcode: int
    kind: Kind
    op: str = ""                # semantic op: ALU op name, jump condition, atomic op
    width: int = 64             # operand width in bits (ALU/JMP), or access size in bytes*8
    size: int = 0               # memory access size in bytes (loads/stores/atomics)
    reg_src: bool = False       # the src field names a register operand
    variant_field: str = ""     # "", "off", "imm" or "src"
    variant: int = 0
    conf: str = ""              # bpf_conformance mnemonic (empty: no such syntax)
    llvm: str = ""              # llvm-objdump template
    extension: bool = False     # hXDP extension, not RFC 9669
    slots: int = 1              # 8-byte words (lddw: 2)
    # ---- facts about the instruction, derived once from the fields above (_facts);
    # isa.insn.reads/writes/mem_access/target/falls_through apply them to an Insn ----
    reads_dst: bool = False     # the dst register is an operand (reg_src: so is src)
    imm_reg: bool = False       # imm names a register operand (hXDP three-operand register form)
    writes_dst: bool = False
    writes_src: bool = False    # atomic fetch/xchg: the old memory value goes to src
    implicit_reads: frozenset = frozenset()    # registers read that no field names (calls: r1-r5)
    implicit_writes: frozenset = frozenset()   # registers written that no field names (calls: r0)
    access: str = ""            # memory: "" none, "load", "store", "update" (atomic read-modify-write)
    signed: bool = False        # a load that sign-extends to 64 bits
    target_field: str = ""      # field holding the offset of the code this refers to ("off"/"imm")
    falls_through: bool = True  # control may continue at the next instruction
    control: bool = False       # hXDP control lane: reads after the row's datapath writes

    @property
    def is_branch(self) -> bool:
        return self.kind in (Kind.JA, Kind.JCOND)

    @property
    def is_jmp32(self) -> bool:
        return self.opcode & 7 == CLS_JMP32


TABLE: list[OpSpec] = []


HELPER_ARGS = frozenset(range(1, 6))
CONTROL_KINDS = frozenset({Kind.JA, Kind.JCOND, Kind.CALL, Kind.CALL_LOCAL, Kind.CALL_KFUNC, Kind.CALLX,
                           Kind.EXIT, Kind.PEXIT, Kind.BOUNDS})
_ACCESS = {Kind.LDX: "load", Kind.LDXSX: "load", Kind.LDX48: "load", Kind.ST: "store", Kind.STX: "store",
           Kind.STX48: "store", Kind.ATOMIC: "update"}


def _facts(kind: Kind, op: str = "", width: int = 64, variant: int = 0, **_) -> dict:
    """The register, memory and control facts of a row, from its kind and op: the one place
    they are spelled (compiler analyses and Sephirot's decoder read them from the table)."""
    fetch = kind == Kind.ATOMIC and (op.startswith("fetch_") or op == "xchg")
    calls = kind in (Kind.CALL, Kind.CALL_LOCAL, Kind.CALL_KFUNC, Kind.CALLX)
    r0 = frozenset({0})
    implicit_reads = HELPER_ARGS if calls else r0 if kind == Kind.EXIT or op == "cmpxchg" else frozenset()
    target = {Kind.JCOND: "off", Kind.CALL_LOCAL: "imm"}.get(kind, "")
    if kind == Kind.JA:
        target = "imm" if width == 32 else "off"        # gotol (JMP32 class) holds it in imm
    if kind == Kind.LDDW and variant == LDDW_FUNC:
        target = "imm"                                  # a function's address (bpf_loop callback)
    return dict(
        reads_dst=kind in (Kind.ALU, Kind.NEG, Kind.END, Kind.JCOND, Kind.CALLX, Kind.ST, Kind.STX, Kind.STX48,
                           Kind.ATOMIC),
        writes_dst=kind in (Kind.ALU, Kind.MOV, Kind.MOVSX, Kind.NEG, Kind.END, Kind.ALU3, Kind.LDDW, Kind.LDX,
                            Kind.LDXSX, Kind.LDX48),
        writes_src=fetch,
        implicit_reads=implicit_reads,
        implicit_writes=r0 if calls or op == "cmpxchg" else frozenset(),
        access=_ACCESS.get(kind, ""),
        signed=kind == Kind.LDXSX,
        target_field=target,
        falls_through=kind not in (Kind.JA, Kind.EXIT, Kind.PEXIT),
        control=kind in CONTROL_KINDS,
    )


def _add(**kw) -> None:
    TABLE.append(OpSpec(**kw, **_facts(**kw)))


def _mo(sign: str = "") -> str:
    return "{moff}"


def _build() -> None:
    # ---- ALU / ALU64 ----
    for cls, w, reg in ((CLS_ALU64, 64, "r"), (CLS_ALU, 32, "w")):
        sfx = "" if w == 64 else "32"
        for name, nib in ALU_OPS.items():
            if name in ("neg", "end"):
                continue
            for src, srcname in ((SRC_K, "k"), (SRC_X, "x")):
                opnd = "{imm}" if src == SRC_K else reg + "{src}"
                kind = Kind.MOV if name == "mov" else Kind.ALU
                _add(key=f"{name}{w}_{srcname}", opcode=cls | src | nib, kind=kind, op=name, width=w,
                     reg_src=src == SRC_X, variant_field="off" if name in ("div", "mod", "mov") else "",
                     conf=f"{name}{sfx}", llvm=f"{reg}{{dst}} {ALU_SYM[name]} {opnd}")
            if name in ("div", "mod"):  # signed forms: off = 1
                s = "s" + name
                sym = "s/=" if name == "div" else "s%="
                for src, srcname in ((SRC_K, "k"), (SRC_X, "x")):
                    opnd = "{imm}" if src == SRC_K else reg + "{src}"
                    _add(key=f"{s}{w}_{srcname}", opcode=cls | src | nib, kind=Kind.ALU, op=s, width=w,
                         reg_src=src == SRC_X, variant_field="off", variant=1,
                         conf=f"{s}{sfx}", llvm=f"{reg}{{dst}} {sym} {opnd}")
        for bits in ((8, 16) if w == 32 else (8, 16, 32)):
            _add(key=f"movsx{bits}{w}", opcode=cls | SRC_X | ALU_OPS["mov"], kind=Kind.MOVSX, op="movsx",
                 width=w, reg_src=True, variant_field="off", variant=bits,
                 conf=f"movsx{bits}{w}", llvm=f"{reg}{{dst}} = (s{bits}){reg}{{src}}")
        _add(key=f"neg{w}", opcode=cls | SRC_K | ALU_OPS["neg"], kind=Kind.NEG, op="neg", width=w,
             conf=f"neg{sfx}", llvm=f"{reg}{{dst}} = -{reg}{{dst}}")
    for bits in (16, 32, 64):
        _add(key=f"le{bits}", opcode=CLS_ALU | SRC_K | ALU_OPS["end"], kind=Kind.END, op="le", width=bits,
             variant_field="imm", variant=bits, conf=f"le{bits}", llvm=f"r{{dst}} = le{bits} r{{dst}}")
        _add(key=f"be{bits}", opcode=CLS_ALU | SRC_X | ALU_OPS["end"], kind=Kind.END, op="be", width=bits,
             variant_field="imm", variant=bits, conf=f"be{bits}", llvm=f"r{{dst}} = be{bits} r{{dst}}")
        _add(key=f"bswap{bits}", opcode=CLS_ALU64 | SRC_K | ALU_OPS["end"], kind=Kind.END, op="bswap",
             width=bits, variant_field="imm", variant=bits, conf=f"bswap{bits}",
             llvm=f"r{{dst}} = bswap{bits} r{{dst}}")

    # ---- JMP / JMP32 ----
    _add(key="ja", opcode=CLS_JMP | JMP_OPS["ja"], kind=Kind.JA, op="ja", conf="ja", llvm="goto {off}")
    _add(key="ja32", opcode=CLS_JMP32 | JMP_OPS["ja"], kind=Kind.JA, op="ja", width=32, conf="ja32",
         llvm="gotol {imm_target}")
    for cls, w, reg in ((CLS_JMP, 64, "r"), (CLS_JMP32, 32, "w")):
        sfx = "" if w == 64 else "32"
        for name, sym in JMP_SYM.items():
            for src, srcname in ((SRC_K, "k"), (SRC_X, "x")):
                opnd = "{imm}" if src == SRC_K else reg + "{src}"
                _add(key=f"{name}{w}_{srcname}", opcode=cls | src | JMP_OPS[name], kind=Kind.JCOND, op=name,
                     width=w, reg_src=src == SRC_X, conf=f"{name}{sfx}",
                     llvm=f"if {reg}{{dst}} {sym} {opnd} goto {{off}}")
    _add(key="call", opcode=CLS_JMP | JMP_OPS["call"], kind=Kind.CALL, variant_field="src",
         variant=CALL_HELPER, conf="call", llvm="call {imm}")
    _add(key="call_local", opcode=CLS_JMP | JMP_OPS["call"], kind=Kind.CALL_LOCAL, variant_field="src",
         variant=CALL_LOCAL, conf="call local", llvm="call {imm}")
    _add(key="call_kfunc", opcode=CLS_JMP | JMP_OPS["call"], kind=Kind.CALL_KFUNC, variant_field="src",
         variant=CALL_KFUNC, conf="call runtime", llvm="call {imm}")
    _add(key="callx", opcode=CLS_JMP | SRC_X | JMP_OPS["call"], kind=Kind.CALLX, conf="callx",
         llvm="callx r{dst}")
    _add(key="exit", opcode=CLS_JMP | JMP_OPS["exit"], kind=Kind.EXIT, conf="exit", llvm="exit")

    # ---- lddw ----
    for s in range(7):
        _add(key="lddw" if s == 0 else f"lddw_src{s}", opcode=OP_LDDW, kind=Kind.LDDW,
             variant_field="src", variant=s, conf="lddw" if s == 0 else f"lddw_{LDDW_SRC_NAME[s]}",
             llvm="r{dst} = {imm64} ll" if s == 0 else f"ld_pseudo\tr{{dst}}, {s}, {{imm64u}}", slots=2, size=8)

    # ---- loads / stores ----
    for size_code, nbytes in SIZE_BYTES.items():
        n = SIZE_NAME[nbytes]
        u = f"u{nbytes * 8}"
        _add(key=f"ldx{n}", opcode=CLS_LDX | MODE_MEM | size_code, kind=Kind.LDX, size=nbytes, width=nbytes * 8,
             reg_src=True, conf=f"ldx{n}", llvm=f"r{{dst}} = *({u} *)(r{{src}}{{moff}})")
        if nbytes != 8:
            _add(key=f"ldxs{n}", opcode=CLS_LDX | MODE_MEMSX | size_code, kind=Kind.LDXSX, size=nbytes,
                 width=nbytes * 8, reg_src=True, conf=f"ldxs{n}",
                 llvm=f"r{{dst}} = *(s{nbytes * 8} *)(r{{src}}{{moff}})")
        _add(key=f"st{n}", opcode=CLS_ST | MODE_MEM | size_code, kind=Kind.ST, size=nbytes, width=nbytes * 8,
             conf=f"st{n}", llvm=f"*({u} *)(r{{dst}}{{moff}}) = {{imm}}")
        _add(key=f"stx{n}", opcode=CLS_STX | MODE_MEM | size_code, kind=Kind.STX, size=nbytes, width=nbytes * 8,
             reg_src=True, conf=f"stx{n}", llvm=f"*({u} *)(r{{dst}}{{moff}}) = r{{src}}")
    # ---- atomics (32 and 64 bit) ----
    for size_code, nbytes in ((SIZE_W, 4), (SIZE_DW, 8)):
        sfx = "32" if nbytes == 4 else ""
        u = f"u{nbytes * 8}"
        reg = "w" if nbytes == 4 else "r"
        for name, code in ATOMIC_OPS.items():
            _add(key=f"lock_{name}{sfx}", opcode=CLS_STX | MODE_ATOMIC | size_code, kind=Kind.ATOMIC, op=name,
                 size=nbytes, width=nbytes * 8, reg_src=True, variant_field="imm", variant=code,
                 conf=f"lock {name}{sfx}",
                 llvm=f"lock *({u} *)(r{{dst}}{{moff}}) {ALU_SYM[name]} {'r' if name == 'add' else reg}{{src}}")
            _add(key=f"lock_fetch_{name}{sfx}", opcode=CLS_STX | MODE_ATOMIC | size_code, kind=Kind.ATOMIC,
                 op="fetch_" + name, size=nbytes, width=nbytes * 8, reg_src=True, variant_field="imm",
                 variant=code | ATOMIC_FETCH, conf=f"lock fetch {name}{sfx}",
                 llvm=f"{reg}{{src}} = atomic_fetch_{name}(({u} *)(r{{dst}}{{moff}}), {reg}{{src}})")
        _add(key=f"lock_xchg{sfx}", opcode=CLS_STX | MODE_ATOMIC | size_code, kind=Kind.ATOMIC, op="xchg",
             size=nbytes, width=nbytes * 8, reg_src=True, variant_field="imm", variant=ATOMIC_XCHG,
             conf=f"lock xchg{sfx}", llvm=f"{reg}{{src}} = {'xchg32_32' if nbytes == 4 else 'xchg_64'}(r{{dst}}{{moff}}, {reg}{{src}})")
        _add(key=f"lock_cmpxchg{sfx}", opcode=CLS_STX | MODE_ATOMIC | size_code, kind=Kind.ATOMIC, op="cmpxchg",
             size=nbytes, width=nbytes * 8, reg_src=True, variant_field="imm", variant=ATOMIC_CMPXCHG,
             conf=f"lock cmpxchg{sfx}",
             llvm=f"{reg}0 = {'cmpxchg32_32' if nbytes == 4 else 'cmpxchg_64'}(r{{dst}}{{moff}}, {reg}0, {reg}{{src}})")

    # ---- hXDP extensions ----
    _add(key="nop", opcode=OP_NOP, kind=Kind.NOP, conf="nop", llvm="nop", extension=True)
    _add(key="ldx48", opcode=OP_LDX48, kind=Kind.LDX48, size=6, width=48, reg_src=True, conf="ldx48",
         llvm="r{dst} = *(u48 *)(r{src}{moff})", extension=True)
    _add(key="stx48", opcode=OP_STX48, kind=Kind.STX48, size=6, width=48, reg_src=True, conf="stx48",
         llvm="*(u48 *)(r{dst}{moff}) = r{src}", extension=True)
    _add(key="pexit", opcode=OP_PEXIT, kind=Kind.PEXIT, conf="exit", llvm="exit {imm}", extension=True)
    _add(key="bounds", opcode=OP_BOUNDS, kind=Kind.BOUNDS, conf="bounds",
         llvm="bounds {imm}, {offd}", extension=True)
    for opcode, w, reg, src in ((OP_ALU3_64_K, 64, "r", SRC_K), (OP_ALU3_64_X, 64, "r", SRC_X),
                                (OP_ALU3_32_K, 32, "w", SRC_K), (OP_ALU3_32_X, 32, "w", SRC_X)):
        for name in ALU3_OPS:
            sfx = "" if w == 64 else "32"
            opnd = "{imm}" if src == SRC_K else reg + "{imm}"
            _add(key=f"{name}{w}3_{'k' if src == SRC_K else 'x'}", opcode=opcode, kind=Kind.ALU3, op=name,
                 width=w, reg_src=True, imm_reg=src == SRC_X, variant_field="off", variant=ALU_OPS[name],
                 conf=f"{name}3{'_32' if w == 32 else ''}", llvm=f"{reg}{{dst}} = {reg}{{src}} {ALU3_SYM[name]} {opnd}", extension=True)


# ALU ops that have a three-operand hXDP form (mov has no use; neg/end take one operand)
ALU3_OPS = ("add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "mod", "xor", "arsh")

_build()

BY_KEY: dict[str, OpSpec] = {s.key: s for s in TABLE}
# (opcode, variant) -> spec; specs without a variant field use variant None
_LOOKUP: dict[tuple[int, Optional[int]], OpSpec] = {}
VARIANT_FIELD: dict[int, str] = {}
for _s in TABLE:
    if _s.variant_field:
        VARIANT_FIELD[_s.opcode] = _s.variant_field
        _LOOKUP[(_s.opcode, _s.variant)] = _s
    else:
        _LOOKUP[(_s.opcode, None)] = _s
assert len(BY_KEY) == len(TABLE), "duplicate keys in the ISA table"


def lookup(opcode: int, off: int = 0, imm: int = 0, src: int = 0) -> Optional[OpSpec]:
    """The spec for an instruction's fields, or None if the encoding is not valid."""
    field = VARIANT_FIELD.get(opcode)
    if field is None:
        return _LOOKUP.get((opcode, None))
    if field == "off":
        v = off
    elif field == "imm":
        v = imm & 0xFFFFFFFF
    else:
        v = src
    return _LOOKUP.get((opcode, v))


def specs(kind: Kind) -> list[OpSpec]:
    return [s for s in TABLE if s.kind == kind]


# ---- register masks (the semantics functions live in isa.semantics) ----
NREGS = 11                  # r0-r10
M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
