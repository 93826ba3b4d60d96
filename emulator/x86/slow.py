"""The hXDP extension instructions (three-operand ALU, 48-bit loads/stores, the hardware
bounds check) for the x86 executor.  They come only from Sephirot's compiler, never from
an ELF object, so the translator does not give them x86 code: a `call SLOW_STUB` hands
the instruction to this function, which applies isa.semantics to unicorn's registers."""
from __future__ import annotations

from isa.insn import Insn
from isa.opcodes import M64, Kind
from isa.semantics import alu
from emulator.runtime.env import Env, ProgramExit
from emulator.runtime.memory import Fault


def run_slow(ins: Insn, regs: tuple, uc, env: Env, ctx: int) -> None:
    """Execute `ins` on unicorn's registers (`regs`: eBPF register -> unicorn register)."""
    spec = ins.spec
    r = lambda n: uc.reg_read(regs[n])          # noqa: E731
    if spec.kind == Kind.ALU3:
        b = r(ins.imm) if spec.imm_reg else ins.imm & M64
        uc.reg_write(regs[ins.dst], alu(spec.op, r(ins.src), b, spec.width))
    elif spec.kind == Kind.LDX48:
        uc.reg_write(regs[ins.dst], env.mem.load((r(ins.src) + ins.off) & M64, spec.size))
    elif spec.kind == Kind.STX48:
        env.mem.store((r(ins.dst) + ins.off) & M64, spec.size, r(ins.src))
    elif spec.kind == Kind.BOUNDS:
        try:
            data, data_end = env.mem.load(ctx & M64, 4), env.mem.load((ctx + 4) & M64, 4)
        except Fault:
            raise Fault("a bounds check needs an XDP context in r1") from None
        if data + ins.imm > data_end:
            raise ProgramExit(ins.off & M64)
    else:
        raise Fault(f"internal: {spec.key} is not an hXDP extension instruction")
