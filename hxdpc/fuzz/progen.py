"""Random verifier-acceptable XDP programs, generated from the ISA table's kinds.

Every instruction is chosen from `isa.opcodes.TABLE` by kind (ALU, MOV, MOVSX, NEG, END,
JA, JCOND, LDX, LDXSX, ST, STX, ATOMIC, CALL, CALL_LOCAL, LDDW, EXIT), so a new row of a
kind the generator knows is generated without a change here; `COVERED_KINDS` and
`NOT_GENERATED` say what is not (tests/test_fuzz_kernel.py checks the coverage).

What keeps the verifier happy (docs/fuzzing.md):
- r6 holds the context, r10 the frame; every other register is a *scalar* at every block
  boundary: a block that makes one a pointer (packet, map value) sets it back to a constant
  at its join point, and helper calls are followed by re-initialising r1-r5;
- the stack bytes fp-96..fp-1 are initialised by the prologue; stack accesses are aligned;
- packet accesses follow a check of the pointer + size against data_end; map value
  accesses follow a NULL check and stay inside the value; atomics only on stack and map
  values (the kernel refuses them on packets), aligned;
- shifts by a constant stay below the width, divisions by a constant are by non-zero;
- loops count a register down from a small constant; conditional code is if/else (the
  verifier refuses unreachable instructions);
- helper arguments have the types the helper's prototype asks for.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from hxdpc.fuzz.build import CallLocal, FuncRef, Item, Jump, Label, MapRef, resolve
from hxdpc.fuzz.objfile import MapSpec, ObjectCode
from isa.insn import Insn
from isa.opcodes import BY_KEY, TABLE, Kind, OpSpec

CTX, FP = 6, 10
POOL = (0, 1, 2, 3, 4, 5, 7, 8, 9)       # scalar registers
ARGS = (1, 2, 3, 4, 5)
STACK_INIT = 96                           # bytes below fp the prologue initialises
KEY_SLOT = -96                            # map keys live at fp-96 .. fp-89
VALUE_SLOT = -64                          # map update values at fp-64 .. (value_size <= 64)
SCRATCH = (-88, -8)                       # the rest, for random stack accesses

HELPER = {"map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "trace_printk": 6,
          "xdp_adjust_head": 44, "xdp_adjust_meta": 54, "xdp_adjust_tail": 65, "loop": 181}
XDP_MD = {"data": 0, "data_end": 4, "data_meta": 8, "ingress_ifindex": 12, "rx_queue_index": 16}
MAP_TYPES = {"array": 2, "hash": 1, "percpu_array": 6, "percpu_hash": 5}

# Kinds the generator emits; every non-extension row of these kinds is generated.
COVERED_KINDS = {Kind.ALU, Kind.MOV, Kind.MOVSX, Kind.NEG, Kind.END, Kind.JA, Kind.JCOND, Kind.LDX,
                 Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC, Kind.CALL, Kind.CALL_LOCAL, Kind.EXIT,
                 Kind.LDDW}
# Rows not generated, and why (all others are: the coverage test asserts it).
NOT_GENERATED = {
    "call_kfunc": "kfunc calls need the kernel's BTF ids",
    "callx": "the kernel has no indirect calls",
    "lddw_src2": "map value addresses are for global data (.data), which the objects do not define",
    "lddw_src3": "BTF ids need the kernel's BTF",
    "lddw_src4": "bpf_loop callbacks need BTF func_info, which emulator.kernel.raw does not pass "
                 "(Generator(callbacks=True) generates them once it does)",
    "lddw_src5": "the loader's linked form of src 1 (what the ELF holds is src 1)",
    "lddw_src6": "the loader's linked form of src 2",
}
NOT_GENERATED.update({s.key: "hXDP extension (the kernel does not know it)" for s in TABLE if s.extension})


def generated_rows() -> list[OpSpec]:
    """The table rows the generator is meant to cover."""
    return [s for s in TABLE if s.key not in NOT_GENERATED]


def _rows(*kinds: Kind) -> list[OpSpec]:
    return [s for s in TABLE if s.kind in kinds and s.key not in NOT_GENERATED]


ALU_ROWS = _rows(Kind.ALU, Kind.MOV, Kind.MOVSX, Kind.NEG, Kind.END)
JCOND_ROWS = _rows(Kind.JCOND)
JA_ROWS = _rows(Kind.JA)
LOAD_ROWS = _rows(Kind.LDX, Kind.LDXSX)
STORE_ROWS = _rows(Kind.ST, Kind.STX)
ATOMIC_ROWS = _rows(Kind.ATOMIC)
SHIFTS = {"lsh", "rsh", "arsh"}
DIVS = {"div", "mod", "sdiv", "smod"}
FORMATS = [b"x=%d\n", b"%d %u\n", b"%x%llx\n", b"%s\n", b"%p\n", b"%d%d%d%d\n", b"%", b"plain",
           b"%lld %llu\n", b"%c\n", b"%%\n"]


def insn_of(spec: OpSpec, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """An instruction of a table row (its variant field set from the row)."""
    if spec.variant_field == "off":
        off = spec.variant
    elif spec.variant_field == "imm":
        imm = spec.variant
    elif spec.variant_field == "src":
        src = spec.variant
    return Insn(spec.opcode, dst, src if spec.reg_src or spec.variant_field == "src" else 0, off, imm)


def random_imm(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, 2, 7, 0x7F, 0x80, 0xFF, 0x7FFF, -0x8000, 0x7FFFFFFF, -0x80000000,
                       rng.randint(-0x80000000, 0x7FFFFFFF), rng.randint(-16, 16)])


def mov_imm(dst: int, imm: int) -> Insn:
    return insn_of(BY_KEY["mov64_k"], dst, imm=imm)


@dataclass
class Subprog:
    name: str
    items: list[Item]
    stack_arg: bool = False       # r1 is a pointer to PTR_WINDOW bytes of the caller's stack


PTR_WINDOW = 32


@dataclass
class FuzzProgram:
    """A generated program: blocks of the entry (the minimiser deletes inside them),
    subprograms, maps and the maps' preset (MAPS.json)."""
    blocks: list[list[Item]]
    subprogs: list[Subprog] = field(default_factory=list)
    maps: list[MapSpec] = field(default_factory=list)
    preset: dict = field(default_factory=dict)
    name: str = "fuzz"

    def items(self) -> list[Item]:
        return [it for b in self.blocks for it in b]

    def object_code(self) -> ObjectCode:
        used = {it.func for b in self.blocks for it in b if isinstance(it, (CallLocal, FuncRef))}
        subs = [(s.name, resolve(s.items)) for s in self.subprogs if s.name in used]
        return ObjectCode(self.name, resolve(self.items()), subs, self.maps)

    def keys(self) -> set[str]:
        """The table rows this program's instructions use (coverage)."""
        code = self.object_code()
        out = {i.spec.key for i in code.main.insns}
        for _, sub in code.subprogs:
            out |= {i.spec.key for i in sub.insns}
        return out


class Generator:
    """One program per `program()` call, from a seeded random.Random."""

    def __init__(self, rng: random.Random, max_blocks: int = 14, callbacks: bool = False,
                 printk: bool = True):
        self.rng = rng
        self.printk = printk          # bpf_trace_printk writes into the host's trace buffer
        self.callbacks = callbacks
        self.used: Counter = Counter()     # row key -> times chosen (steers towards rare rows)
        self.max_blocks = max_blocks
        self._labels = 0

    # -- helpers ---------------------------------------------------------------------------
    def pick(self, rows: list[OpSpec]) -> OpSpec:
        """A row of `rows`; mostly one of the least chosen so far, so that a few dozen
        programs cover the whole table."""
        if self.rng.random() < 0.75:
            least = min(self.used[s.key] for s in rows)
            rows = [s for s in rows if self.used[s.key] == least]
        spec = self.rng.choice(rows)
        self.used[spec.key] += 1
        return spec

    def label(self) -> str:
        self._labels += 1
        return f"L{self._labels}"

    def reinit(self, regs) -> list[Item]:
        return [mov_imm(r, random_imm(self.rng)) for r in regs]

    def alu(self, pool=POOL, avoid=()) -> Insn:
        rng = self.rng
        spec = self.pick(ALU_ROWS)
        regs = [r for r in pool if r not in avoid]
        dst, src = rng.choice(regs), rng.choice(pool)
        if spec.reg_src:
            return insn_of(spec, dst, src)
        if spec.kind in (Kind.NEG, Kind.END):
            return insn_of(spec, dst)
        if spec.op in SHIFTS:
            imm = rng.randrange(spec.width)
        elif spec.op in DIVS:
            imm = rng.choice([v for v in (random_imm(rng), -1, 3, 1) if v != 0])
        else:
            imm = random_imm(rng)
        return insn_of(spec, dst, imm=imm)

    def alus(self, n: int, pool=POOL, avoid=()) -> list[Item]:
        return [self.alu(pool, avoid) for _ in range(n)]

    def jcond(self, target: str, pool=POOL) -> Jump:
        rng = self.rng
        spec = self.pick(JCOND_ROWS)
        imm = 0 if spec.reg_src else random_imm(rng)
        return Jump(insn_of(spec, rng.choice(pool), rng.choice(pool), imm=imm), target)

    def ja(self, target: str) -> Jump:
        return Jump(insn_of(self.pick(JA_ROWS)), target)

    def call(self, name: str) -> Insn:
        return insn_of(BY_KEY["call"], imm=HELPER[name])

    def aligned(self, size: int, lo: int, hi: int) -> int:
        """A random offset in [lo, hi - size] that is a multiple of size (stack slots)."""
        first, last = -(-lo // size) * size, (hi - size) // size * size
        return self.rng.randrange(first, last + 1, size)

    def access(self, spec: OpSpec, base: int, off: int, pool=POOL, avoid=()) -> Insn:
        rng = self.rng
        regs = [r for r in pool if r not in avoid]
        if spec.kind in (Kind.LDX, Kind.LDXSX):
            return insn_of(spec, rng.choice(regs), base, off)
        if spec.kind == Kind.ST:
            return insn_of(spec, base, 0, off, random_imm(rng))
        return insn_of(spec, base, rng.choice(regs), off)   # STX and ATOMIC

    # -- blocks ----------------------------------------------------------------------------
    def b_alu(self) -> list[Item]:
        items = self.alus(self.rng.randint(1, 6))
        if self.rng.random() < 0.05:        # Sephirot copy_forward defect: rA = (sN)rB; rB = rA
            a, b = self.rng.sample(POOL, 2)
            sx = insn_of(self.pick(_rows(Kind.MOVSX)), a, b)
            mov = insn_of(self.pick(_rows(Kind.MOV, Kind.MOVSX)), b, a, imm=0)
            if mov.spec.kind == Kind.MOV and not mov.spec.reg_src:
                mov = insn_of(BY_KEY["mov64_x"], b, a)
            items += [sx, mov] if self.rng.random() < 0.5 else [insn_of(BY_KEY["mov64_x"], a, b),
                                                               insn_of(sx.spec, b, a)]
        if self.rng.random() < 0.2:
            items.append(Insn(BY_KEY["lddw"].opcode, self.rng.choice(POOL), 0, 0,
                              self.rng.getrandbits(64)))
        return items

    def b_cond(self) -> list[Item]:
        els, end = self.label(), self.label()
        rng = self.rng
        return ([self.jcond(els) for _ in range(rng.randint(1, 3))] + self.alus(rng.randint(1, 3)) + [self.ja(end), Label(els)]
                + self.alus(rng.randint(1, 3)) + [Label(end)])

    def b_loop(self) -> list[Item]:
        rng = self.rng
        counter = rng.choice([r for r in POOL if r])
        top = self.label()
        dec = insn_of(BY_KEY["sub64_k"], counter, imm=1)
        back = Jump(insn_of(BY_KEY[rng.choice(["jne64_k", "jne32_k", "jsgt64_k", "jgt32_k"])], counter), top)
        return ([mov_imm(counter, rng.randint(1, 8)), Label(top)]
                + self.alus(rng.randint(1, 4), avoid=(counter,)) + [dec, back])

    def b_stack(self) -> list[Item]:
        out = []
        for _ in range(self.rng.randint(1, 4)):
            spec = self.pick(LOAD_ROWS + STORE_ROWS)
            out.append(self.access(spec, FP, self.aligned(spec.size, *SCRATCH)))
        return out

    def b_atomic_stack(self) -> list[Item]:
        spec = self.pick(ATOMIC_ROWS)
        return [self.access(spec, FP, self.aligned(spec.size, *SCRATCH))]

    def b_ctx(self) -> list[Item]:
        field_ = self.rng.choice(["ingress_ifindex", "rx_queue_index"])
        return [insn_of(BY_KEY["ldxw"], self.rng.choice(POOL), CTX, XDP_MD[field_])]

    def _checked(self, base: int, end: int, extent: int, body: list[Item], skip: str) -> list[Item]:
        """`if base + extent > end goto skip` (in one of three spellings), then body."""
        t = 4
        check: list[Item] = [insn_of(BY_KEY["mov64_x"], t, base), insn_of(BY_KEY["add64_k"], t, imm=extent)]
        form = self.rng.randrange(3)
        if form == 0:
            check.append(Jump(insn_of(BY_KEY["jgt64_x"], t, end), skip))
        elif form == 1:
            check.append(Jump(insn_of(BY_KEY["jlt64_x"], end, t), skip))
        else:               # if end >= t goto ok; goto skip; ok: body
            ok = self.label()
            check += [Jump(insn_of(BY_KEY["jge64_x"], end, t), ok), self.ja(skip), Label(ok)]
        return check + body

    def b_packet(self) -> list[Item]:
        rng = self.rng
        skip = self.label()
        items: list[Item] = [insn_of(BY_KEY["ldxw"], 2, CTX, XDP_MD["data"]),
                             insn_of(BY_KEY["ldxw"], 3, CTX, XDP_MD["data_end"])]
        if rng.random() < 0.4:       # a variable offset with known bounds
            src = rng.choice([r for r in POOL if r not in (2, 3, 4)])
            items += [insn_of(BY_KEY["mov64_x"], 4, src),
                      insn_of(BY_KEY["and64_k"], 4, imm=rng.choice([0x3F, 0xFF, 0x7FF])),
                      insn_of(BY_KEY["add64_x"], 2, 4)]
        base = rng.choice([0, 0, 14, 34, 60, 200, 1000, 1500, 3000])
        body = []
        extent = 0
        for _ in range(rng.randint(1, 4)):
            spec = self.pick(LOAD_ROWS + STORE_ROWS)
            off = base + rng.randrange(0, 24)
            extent = max(extent, off + spec.size)
            body.append(self.access(spec, 2, off, avoid=(2, 3, 4)))
        return items + self._checked(2, 3, extent, body, skip) + [Label(skip)] + self.reinit((2, 3, 4))

    def _map_key(self, m: MapSpec) -> list[Item]:
        key = self.rng.choice([0, 1, 2, 3, self.rng.randrange(m.max_entries + 2), random_imm(self.rng)])
        spec = BY_KEY["stdw" if m.key_size == 8 else "stw"]
        return [insn_of(spec, FP, 0, KEY_SLOT, key)]

    def b_map_lookup(self, prog: FuzzProgram) -> list[Item]:
        rng = self.rng
        m = rng.choice(prog.maps)
        skip = self.label()
        items = self._map_key(m) + [MapRef(1, m.name), insn_of(BY_KEY["mov64_x"], 2, FP),
                                    insn_of(BY_KEY["add64_k"], 2, imm=KEY_SLOT), self.call("map_lookup_elem"),
                                    Jump(insn_of(BY_KEY["jeq64_k"], 0, imm=0), skip),
                                    # the value pointer in r1, r0 a scalar again (cmpxchg compares it)
                                    insn_of(BY_KEY["mov64_x"], 1, 0), mov_imm(0, random_imm(rng))]
        for _ in range(rng.randint(1, 4)):
            spec = self.pick(LOAD_ROWS + STORE_ROWS + ATOMIC_ROWS)
            if spec.kind == Kind.ATOMIC:
                off = self.aligned(spec.size, 0, m.value_size)
            else:
                off = rng.randrange(0, m.value_size - spec.size + 1)
            items.append(self.access(spec, 1, off, avoid=ARGS))
        return items + [Label(skip)] + self.reinit((0,) + ARGS)

    def b_map_update(self, prog: FuzzProgram) -> list[Item]:
        rng = self.rng
        m = rng.choice(prog.maps)
        items = self._map_key(m) + [MapRef(1, m.name), insn_of(BY_KEY["mov64_x"], 2, FP),
                                    insn_of(BY_KEY["add64_k"], 2, imm=KEY_SLOT)]
        if rng.random() < 0.75:
            items += [insn_of(BY_KEY["mov64_x"], 3, FP), insn_of(BY_KEY["add64_k"], 3, imm=VALUE_SLOT),
                      mov_imm(4, rng.choice([0, 0, 1, 2])), self.call("map_update_elem")]
        else:
            items.append(self.call("map_delete_elem"))
        return items + self.reinit(ARGS)

    def b_adjust(self) -> list[Item]:
        rng = self.rng
        which = rng.choice(["xdp_adjust_head", "xdp_adjust_tail", "xdp_adjust_meta"])
        delta = {"xdp_adjust_head": rng.choice([-64, -14, -8, -1, 0, 1, 4, 14, 20, 64, 300, -300]),
                 "xdp_adjust_tail": rng.choice([-200, -60, -14, -1, 0, 1, 3, 50, 200, 1000, 5000]),
                 "xdp_adjust_meta": rng.choice([-32, -8, -4, -3, 0, 4, -256])}[which]
        items: list[Item] = [insn_of(BY_KEY["mov64_x"], 1, CTX), mov_imm(2, delta), self.call(which)]
        items += self.reinit(ARGS)
        if which == "xdp_adjust_meta" and rng.random() < 0.7:
            skip = self.label()
            size = rng.choice([1, 2, 4, 8])
            spec = rng.choice([s for s in LOAD_ROWS + STORE_ROWS if s.size == size])
            items += [insn_of(BY_KEY["ldxw"], 2, CTX, XDP_MD["data_meta"]),
                      insn_of(BY_KEY["ldxw"], 3, CTX, XDP_MD["data"])]
            items += self._checked(2, 3, size, [self.access(spec, 2, 0, avoid=(2, 3, 4))], skip)
            items += [Label(skip)] + self.reinit((2, 3, 4))
        return items

    def b_call(self, prog: FuzzProgram, sub: Optional[Subprog] = None) -> list[Item]:
        sub = sub or self.rng.choice([s for s in prog.subprogs if not s.name.startswith("cb")])
        items: list[Item] = []
        if sub.stack_arg:       # the window lies inside the initialised fp-96..fp-1
            items = [insn_of(BY_KEY["mov64_x"], 1, FP),
                     insn_of(BY_KEY["add64_k"], 1, imm=-self.rng.choice([96, 64, 48, 32]))]
        return items + [CallLocal(sub.name)] + self.reinit(ARGS)

    def b_loop_helper(self, prog: FuzzProgram) -> list[Item]:
        rng = self.rng
        cb = rng.choice([s for s in prog.subprogs if s.name.startswith("cb")])
        nr = rng.choice([0, 1, 2, 5, 17, 100, 1000, 70000])
        return [mov_imm(1, nr), FuncRef(2, cb.name), mov_imm(3, 0), mov_imm(4, 0),
                self.call("loop")] + self.reinit(ARGS)

    def b_printk(self) -> list[Item]:
        rng = self.rng
        fmt = rng.choice(FORMATS) + (b"\0" if rng.random() < 0.9 else b"")
        fmt = fmt[:16]
        items: list[Item] = []
        raw = fmt.ljust(16, b"\0")
        for k in range(2):
            items += [Insn(BY_KEY["lddw"].opcode, 1, 0, 0, int.from_bytes(raw[8 * k:8 * k + 8], "little")),
                      insn_of(BY_KEY["stxdw"], FP, 1, -88 + 8 * k)]
        return items + [insn_of(BY_KEY["mov64_x"], 1, FP), insn_of(BY_KEY["add64_k"], 1, imm=-88),
                        mov_imm(2, len(fmt)), self.call("trace_printk")] + self.reinit(ARGS)

    # -- programs --------------------------------------------------------------------------
    def subprog(self, name: str) -> Subprog:
        """A callee on scalars r1-r5 (its own frame initialised before use), returning r0."""
        rng = self.rng
        pool = (0, 1, 2, 3, 4, 5)
        items: list[Item] = [insn_of(BY_KEY["mov64_x"], 0, rng.choice(ARGS))]
        items += self.alus(rng.randint(1, 5), pool)
        if rng.random() < 0.5:
            spec = self.pick(_rows(Kind.STX))
            off = self.aligned(spec.size, -32, 0)
            items += [insn_of(BY_KEY["stdw"], FP, 0, -32 + 8 * k, random_imm(rng)) for k in range(4)]
            items += [self.access(spec, FP, off, pool), insn_of(BY_KEY["ldxdw"], 0, FP, self.aligned(8, -32, 0))]
        if rng.random() < 0.5:
            els, end = self.label(), self.label()
            items += [self.jcond(els, pool)] + self.alus(2, pool) + [self.ja(end), Label(els)] \
                + self.alus(2, pool) + [Label(end)]
        return Subprog(name, items + [insn_of(BY_KEY["exit"])])

    def stack_subprog(self, name: str) -> Subprog:
        """A callee that reads, writes and atomically updates its caller's stack through r1."""
        rng = self.rng
        pool = (0, 2, 3, 4, 5)
        items: list[Item] = [insn_of(BY_KEY["mov64_x"], 0, rng.choice(pool[1:]))]
        for _ in range(rng.randint(2, 6)):
            if rng.random() < 0.3:
                items.append(self.alu(pool))
                continue
            spec = self.pick(LOAD_ROWS + STORE_ROWS + ATOMIC_ROWS)
            items.append(self.access(spec, 1, self.aligned(spec.size, 0, PTR_WINDOW), pool))
        return Subprog(name, items + [insn_of(BY_KEY["exit"])], stack_arg=True)

    def callback(self, name: str) -> Subprog:
        """bpf_loop's callback(index, ctx): returns 0 (continue) or 1 (stop)."""
        rng = self.rng
        if rng.random() < 0.5:
            body = [mov_imm(0, 0)]
        else:
            body = [insn_of(BY_KEY["mov64_x"], 0, 1), insn_of(BY_KEY["rsh64_k"], 0, imm=rng.randrange(6)),
                    insn_of(BY_KEY["and64_k"], 0, imm=1)]
        return Subprog(name, body + [insn_of(BY_KEY["exit"])])

    def maps(self) -> list[MapSpec]:
        rng = self.rng
        out = []
        for k, (kind, tid) in enumerate(MAP_TYPES.items()):
            ks = 4 if "array" in kind else rng.choice([4, 8])
            vs = rng.choice([8, 16, 24, 32, 64])
            out.append(MapSpec(f"m{k}_{kind}", tid, ks, vs, rng.choice([4, 8, 16])))
        return out

    def preset(self, maps: list[MapSpec]) -> dict:
        rng = self.rng
        out = {}
        for m in maps:
            keys = sorted(rng.sample(range(m.max_entries), rng.randint(0, min(3, m.max_entries))))
            out[m.name] = [{"key": k.to_bytes(m.key_size, "little").hex(),
                            "value": rng.randbytes(m.value_size).hex()} for k in keys]
        return out

    def prologue(self) -> list[Item]:
        rng = self.rng
        items: list[Item] = [insn_of(BY_KEY["mov64_x"], CTX, 1)]
        for off in range(-STACK_INIT, 0, 8):
            items.append(insn_of(BY_KEY["stdw"], FP, 0, off, random_imm(rng)))
        for r in POOL:
            if rng.random() < 0.3:
                items.append(Insn(BY_KEY["lddw"].opcode, r, 0, 0, rng.getrandbits(64)))
            else:
                items.append(insn_of(BY_KEY[rng.choice(["mov64_k", "mov32_k"])], r, imm=random_imm(rng)))
        return items

    def epilogue(self) -> list[Item]:
        """Make every register observable: spill r0-r9 to the stack, copy them to the start
        of the packet when it is long enough (compared as output bytes), return one of them
        masked to an action."""
        rng = self.rng
        base = -8 * len(POOL)
        items: list[Item] = [insn_of(BY_KEY["stxdw"], FP, r, base + 8 * k) for k, r in enumerate(POOL)]
        skip = self.label()
        copy: list[Item] = []
        for k in range(len(POOL)):
            copy += [insn_of(BY_KEY["ldxdw"], 5, FP, base + 8 * k), insn_of(BY_KEY["stxdw"], 2, 5, 8 * k)]
        items += [insn_of(BY_KEY["ldxw"], 2, CTX, XDP_MD["data"]), insn_of(BY_KEY["ldxw"], 3, CTX, XDP_MD["data_end"])]
        items += self._checked(2, 3, 8 * len(POOL), copy, skip) + [Label(skip)]
        if rng.random() < 0.3:
            return items + [mov_imm(0, rng.randrange(4)), insn_of(BY_KEY["exit"])]
        return items + [insn_of(BY_KEY["ldxdw"], 0, FP, base + 8 * rng.randrange(len(POOL))),
                        insn_of(BY_KEY["and64_k"], 0, imm=3), insn_of(BY_KEY["exit"])]

    def program(self) -> FuzzProgram:
        rng = self.rng
        self._labels = 0
        maps = self.maps()
        prog = FuzzProgram(blocks=[self.prologue()], maps=maps, preset=self.preset(maps))
        prog.subprogs = ([self.subprog(f"sub{k}") for k in range(rng.randint(1, 2))]
                         + [self.stack_subprog("psub0")] + ([self.callback("cb0")] if self.callbacks else []))
        kinds = [("alu", 6), ("cond", 5), ("loop", 1), ("stack", 3), ("atomic", 2), ("ctx", 1),
                 ("packet", 4), ("lookup", 3), ("update", 2), ("adjust", 2), ("call", 2),
                 ("bpf_loop", 0.4 if self.callbacks else 0), ("printk", 0.2 if self.printk else 0)]
        names, weights = zip(*kinds)
        loops = 0
        for _ in range(rng.randint(3, self.max_blocks)):
            kind = rng.choices(names, weights)[0]
            if kind in ("loop", "bpf_loop"):
                loops += 1
                if loops > 2:
                    kind = "alu"
            prog.blocks.append(self.block(kind, prog))
        called = {it.func for b in prog.blocks for it in b if isinstance(it, (CallLocal, FuncRef))}
        for sub in prog.subprogs:       # every subprogram is used (its rows count as covered)
            if sub.name not in called:
                prog.blocks.append(self.b_loop_helper(prog) if sub.name.startswith("cb")
                                   else self.b_call(prog, sub))
        prog.blocks.append(self.epilogue())
        return prog

    def block(self, kind: str, prog: FuzzProgram) -> list[Item]:
        simple = {"alu": self.b_alu, "cond": self.b_cond, "loop": self.b_loop, "stack": self.b_stack,
                  "atomic": self.b_atomic_stack, "ctx": self.b_ctx, "packet": self.b_packet,
                  "adjust": self.b_adjust, "printk": self.b_printk}
        if kind in simple:
            return simple[kind]()
        return {"lookup": self.b_map_lookup, "update": self.b_map_update, "call": self.b_call,
                "bpf_loop": self.b_loop_helper}[kind](prog)
