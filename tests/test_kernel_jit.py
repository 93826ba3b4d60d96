"""The kernel's JIT image (emulator/kernel/jit.py): BPF_OBJ_GET_INFO_BY_FD and capstone."""
import pytest

from conftest import ROOT, needs_kernel, needs_shared, SHARED
from emulator.kernel.jit import JitSettings, count_x86, jit_settings, kernel_jit
from isa.errors import InputError

SAMPLES = ROOT / "sample_programs"
JIT_OFF = jit_settings().refusal()
needs_jit = pytest.mark.skipif(bool(JIT_OFF), reason=JIT_OFF or "JIT on")


def test_capstone_counts_instructions_and_refuses_a_cut_image():
    assert count_x86(b"\x55\x48\x89\xe5\x31\xc0\xc9\xc3") == 5   # push; mov; xor; leave; ret
    with pytest.raises(ValueError, match="byte 1 of the 2-byte"):
        count_x86(b"\xc3\x06")                    # ret, then a byte x86-64 has no meaning for


def test_disabled_jit_is_a_reason_not_an_image():
    assert "bpf_jit_enable = 0" in JitSettings(enable=0, harden=0).refusal()
    assert JitSettings(enable=1, harden=2).refusal() == ""


def test_settings_are_the_sysctls_as_they_are():
    with open("/proc/sys/net/core/bpf_jit_enable") as f:
        enable = int(f.read())
    with open("/proc/sys/net/core/bpf_jit_harden") as f:
        harden = int(f.read())
    assert jit_settings() == JitSettings(enable, harden)


@needs_kernel
@needs_jit
@pytest.mark.parametrize("name", ["xdp1", "simple_firewall", "katran_lb"])
def test_jit_image_is_plausible_against_the_xlated_bytecode(name):
    j = kernel_jit(str(SAMPLES / f"{name}.o"))
    assert j.code and j.insns > 0 and j.xlated_insns > 0
    # the x86 JIT emits about one to a few instructions per eBPF instruction, plus a prologue
    assert j.xlated_insns / 2 <= j.insns <= 6 * j.xlated_insns + 32
    assert count_x86(j.code) == j.insns


@needs_kernel
@needs_jit
def test_subprograms_are_all_in_the_image():
    whole = kernel_jit(str(SAMPLES / "katran_lb.o"))
    assert whole.functions >= 2          # katran_lb's jhash is a BPF-to-BPF call


@needs_kernel
@needs_jit
def test_the_section_chooses_the_program():
    path = str(SAMPLES / "xdp_tailcall.o")
    sizes = {fn: kernel_jit(path, fn).xlated_insns for fn in ("xdp_dispatch", "xdp_ipv4", "xdp_ipv6")}
    assert len(set(sizes.values())) > 1                     # the three programs differ
    assert kernel_jit(path).xlated_insns == sizes["xdp_dispatch"]   # the default: the first


@needs_kernel
@needs_shared
def test_objdump_text_without_maps_is_one_line_refusal():
    src = SHARED / "reference" / "hxdp-artifacts" / "bytecode" / "xdp1.objdump"
    with pytest.raises(InputError) as e:
        kernel_jit(str(src))
    assert "the kernel refused to load" in str(e.value) and "\n" not in str(e.value).strip()
