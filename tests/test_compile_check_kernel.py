"""`hxdpc compile --check-kernel`: the kernel's verifier confirms the input before compiling."""
from click.testing import CliRunner

from conftest import ARTIFACTS, SAMPLES, needs_kernel, needs_shared
from hxdpc.cli import main


def run(*args):
    r = CliRunner().invoke(main, ["compile", *map(str, args)])
    return r.exit_code, r.output


@needs_kernel
def test_accepted_program_compiles(tmp_path):
    code, out = run(SAMPLES / "xdp2.o", "--check-kernel", "-o", tmp_path / "x.rom")
    assert code == 0, out
    assert (tmp_path / "x.rom").exists()


@needs_kernel
def test_refused_program_is_an_input_error_with_the_verifier_log(tmp_path):
    src = tmp_path / "bad.s"
    src.write_text("r0 = r5\nexit\n")        # reads an uninitialised register
    r = CliRunner().invoke(main, ["asm", str(src), "-o", str(tmp_path / "bad.o")])
    assert r.exit_code == 0, r.output
    code, out = run(tmp_path / "bad.o", "--check-kernel", "-o", tmp_path / "bad.rom")
    assert code == 2
    assert "R5 !read_ok" in out and not (tmp_path / "bad.rom").exists()


@needs_shared
def test_objdump_text_cannot_be_checked(tmp_path):
    code, out = run(ARTIFACTS / "bytecode" / "xdp1.objdump", "--check-kernel", "-o", tmp_path / "x.rom")
    assert code == 2 and "needs an ELF object" in out
