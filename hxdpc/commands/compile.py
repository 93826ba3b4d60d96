"""`hxdpc compile PROG`: compile an XDP program for Sephirot and write its image, the
map configuration sidecar (OUT.mapcfg.json), and optionally a report and a schedule view."""
from __future__ import annotations

import json
from pathlib import Path

import click

from hxdpc.commands.outputs import cannot_write, check_outputs, make_parent, write_text
from hxdpc.compiler import CompileOptions, compile_program
from isa.errors import InputError
from isa.imagefmt import FORMATS, sidecar_path, write_image


@click.command("compile", epilog="\b\nExamples:\n  hxdpc compile sample_programs/xdp1.o -o xdp1.rom --report xdp1.json\n"
                                  "  hxdpc compile sample_programs/xdp1.o -o xdp1.bin --lanes 8   (format from the name)")
@click.argument("prog", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="image file (default ./STEM.FORMAT)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="image format (default: from the extension of -o, else rom)")
@click.option("--lanes", type=click.IntRange(1, 8), default=4, show_default=True, help="VLIW lanes (1..8)")
@click.option("--depth", type=click.IntRange(1, 65536), default=256, show_default=True, help="rows of instruction memory")
@click.option("--report", type=click.Path(dir_okay=False), help="write the compile report (JSON)")
@click.option("-s", "--section", help="program by section or function name")
@click.option("--no-bounds-removal", is_flag=True, help="keep packet bounds checks in software")
@click.option("--no-zero-removal", is_flag=True, help="keep zero-initialisation")
@click.option("--no-three-operand", is_flag=True, help="no three-operand ALU instructions")
@click.option("--no-48bit", is_flag=True, help="no 6-byte loads/stores")
@click.option("--no-param-exit", is_flag=True, help="no parametrised exit")
@click.option("--no-code-motion", is_flag=True, help="schedule each basic block alone, no renaming")
@click.option("--schedule-html", type=click.Path(dir_okay=False), help="write a picture of the schedule")
@click.option("--schedule-text", is_flag=True, help="print the schedule as a table")
@click.option("--check-kernel", is_flag=True,
              help="first confirm that the Linux kernel's verifier accepts PROG (an ELF object; needs root)")
def command(prog, out, fmt, lanes, depth, report, section, no_bounds_removal, no_zero_removal,
            no_three_operand, no_48bit, no_param_exit, no_code_motion, schedule_html, schedule_text,
            check_kernel):
    """Compile PROG (ELF, llvm-objdump text or .s) into a Sephirot instruction-memory image."""
    from isa.imagefmt import choose_format
    from isa.loader import load
    fmt = choose_format(out, fmt)
    path = Path(out) if out else Path.cwd() / f"{Path(prog).stem}.{fmt}"
    check_outputs({"PROG": prog},
                  {"-o": path, "the map configuration (-o OUT.mapcfg.json)": sidecar_path(path),
                   "--report": report, "--schedule-html": schedule_html})
    program = load(prog, section)
    if check_kernel:
        check_with_kernel(prog, program.name if section else None)   # -s may be section/function
    opts = CompileOptions(lanes=lanes, depth=depth, bounds_removal=not no_bounds_removal,
                          zero_removal=not no_zero_removal, three_operand=not no_three_operand,
                          load48=not no_48bit, param_exit=not no_param_exit, code_motion=not no_code_motion)
    if fmt == "rom" and (lanes != 4 or depth != 256):
        raise InputError("--format rom", f"the rom format is 4 lanes x 256 rows; for --lanes {lanes} "
                                         f"--depth {depth} use bin, coe, mem, mif or json")
    res = compile_program(program, opts)
    res.report.update(x86_static_figures(program))
    make_parent(path)
    try:
        write_image(res.image, path, fmt)
    except OSError as e:
        raise cannot_write(e.filename or path, e) from None
    if report:
        write_text(report, json.dumps(res.report, indent=1, sort_keys=True) + "\n")
    if schedule_html:
        from hxdpc.schedview import schedule_html as html
        write_text(schedule_html, html(res))
    if schedule_text:
        from hxdpc.schedview import schedule_table
        click.echo(schedule_table(res))
    r = res.report
    click.echo(f"{path}: {r['rows']} rows x {lanes} lanes, {r['insns_in']} instructions in, "
               f"static IPC {r['static_ipc']}")


def x86_static_figures(program) -> dict:
    """The x86 translator's static size of PROG (`x86_static_insns`, `x86_bytes`) for the
    report; a program it cannot translate gives `x86_error` instead, and the Sephirot image is
    written regardless."""
    from emulator.x86.translate import translate
    try:
        t = translate(program)
    except InputError as e:
        return {"x86_error": e.reason}
    return {"x86_static_insns": t.static_insns, "x86_bytes": len(t.code)}


def check_with_kernel(prog: str, section) -> None:
    """The removals assume a program the verifier accepts: load it into the running kernel
    (and unload it) to confirm; InputError with the verifier's words when it refuses."""
    from emulator.kernel import KernelProgram, KernelUnavailable, kernel_unavailable_reason
    with open(prog, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise InputError(prog, "--check-kernel needs an ELF object (this input has no maps or "
                                   "relocations the kernel could load)")
    reason = kernel_unavailable_reason()
    if reason:
        raise InputError("--check-kernel", f"the kernel cannot check {prog}: {reason}")
    try:
        with KernelProgram(prog, section):
            pass
    except KernelUnavailable as e:
        raise InputError("--check-kernel", f"the kernel cannot check {prog}: {e}") from None
