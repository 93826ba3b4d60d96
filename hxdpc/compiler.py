"""The compiler pipeline: Program -> Image for Sephirot (docs/compiler.md).

inline calls -> clean up -> remove bounds checks -> remove zeroing -> ISA extensions
(parametrised exit, 6-byte load/store, three-operand ALU) -> dead code -> CFG -> DDG ->
list scheduling into rows of N lanes -> Image, checked against the row ABI.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hxdpc import __version__
from isa.errors import InputError
from hxdpc.passes.bounds import remove_bounds_checks
from hxdpc.analysis.cfg import CFG, build_cfg
from hxdpc.passes.check import check_schedule
from hxdpc.passes.extensions import load_store48, narrow_lddw, param_exit, three_operand
from hxdpc.passes.inline import inline_calls
from hxdpc.analysis.ir import Func
from hxdpc.passes.offsets import fold_offsets, rebase_packet_accesses
from hxdpc.passes.rename import rename_registers
from hxdpc.passes.schedule import Schedule, schedule, to_image
from hxdpc.passes.simplify import dead_code, simplify
from hxdpc.passes.tails import copy_forward, duplicate_exit_tails
from hxdpc.passes.zeroing import remove_zeroing
from isa.image import Image
from isa.program import Program


@dataclass(frozen=True)
class CompileOptions:
    lanes: int = 4
    depth: int = 256
    bounds_removal: bool = True
    zero_removal: bool = True
    three_operand: bool = True
    load48: bool = True
    param_exit: bool = True
    code_motion: bool = True


@dataclass
class CompileResult:
    image: Image
    report: dict
    func: Func = None
    cfg: CFG = None
    schedule: Schedule = None
    counts: dict = field(default_factory=dict)


def compile_program(program: Program, options: CompileOptions = CompileOptions()) -> CompileResult:
    """Compile a loaded program; InputError when it cannot run on Sephirot."""
    where = program.path or program.name
    if not 1 <= options.lanes <= 8:
        raise InputError(where, f"--lanes must be 1..8, not {options.lanes}")
    if options.depth < 1:
        raise InputError(where, f"--depth must be positive, not {options.depth}")
    counts = dict(removed_bounds_checks=0, removed_zeroing=0, three_operand=0, load48=0, store48=0,
                  param_exit=0, dead_code=0, narrowed_lddw=0, renamed=0, exit_tails=0, copies=0, folded_offsets=0, rebased=0)
    func = simplify(inline_calls(program, where))
    if options.bounds_removal:
        func, counts["removed_bounds_checks"] = remove_bounds_checks(func)
        func = simplify(func)
    if options.zero_removal:
        func, counts["removed_zeroing"] = remove_zeroing(func)
    func, counts["narrowed_lddw"] = narrow_lddw(func)
    if options.param_exit:
        func, counts["exit_tails"] = duplicate_exit_tails(func)
        func, counts["copies"] = copy_forward(func)
        func, n = duplicate_exit_tails(func)      # the tails the first round made small
        counts["exit_tails"] += n
        func, counts["param_exit"] = param_exit(func)
    func, counts["dead_code"] = dead_code(func)
    if options.load48:
        func, counts["load48"], counts["store48"] = load_store48(func)
    if options.three_operand:
        func, counts["three_operand"] = three_operand(func)
        func, counts["folded_offsets"] = fold_offsets(func)
        func, counts["rebased"] = rebase_packet_accesses(func)
        func, n = dead_code(func)
        counts["dead_code"] += n
    func = simplify(func)
    if options.code_motion:
        func, counts["renamed"] = rename_registers(func)
    if options.lanes < 2:
        for o in func.ops:
            if o.insn is not None and o.spec.slots == 2:
                raise InputError(where, f"instruction {o.orig}: lddw needs two lanes, --lanes 1 has one")
    cfg = build_cfg(func)
    sch = schedule(cfg, options.lanes, options.code_motion)
    image = to_image(sch, cfg, program.maps, program.name)
    if image.used_rows > options.depth:
        raise InputError(where, f"the program needs {image.used_rows} rows, the instruction memory holds "
                                f"{options.depth} (--depth)")
    image.rows += [(None,) * options.lanes] * (options.depth - len(image.rows))
    errs = check_schedule(image)
    if errs:   # a compiler bug: say so in one line rather than emit a wrong image
        raise InputError(where, f"internal compiler error, invalid schedule: {'; '.join(errs[:3])}")
    return CompileResult(image, make_report(program, image, options, counts), func, cfg, sch, counts)


def make_report(program: Program, image: Image, options: CompileOptions, counts: dict) -> dict:
    rows = image.used_rows
    slots = sum(1 for row in image.rows[:rows] for x in row if x is not None)
    return {
        "program": program.name,
        "insns_in": program.slot_count,
        "rows": rows,
        "slots": slots,
        "static_ipc": round(slots / rows, 3) if rows else 0.0,
        **{k: counts[k] for k in ("removed_bounds_checks", "removed_zeroing", "three_operand", "load48",
                                  "store48", "param_exit", "dead_code", "renamed")},
        "bounds_checks": len(image.bounds),
        "lanes": options.lanes,
        "depth": options.depth,
        "options": asdict(options),
        "version": __version__,
    }
