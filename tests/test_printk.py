"""bpf_trace_printk: the kernel's format rules (bpf_bprintf_prepare + bstr_printf), its return
value (the whole text's length), width clamping and bounded memory; against the running
kernel where bpf() works (tests/printk_harness.py), by value everywhere."""
import time
import tracemalloc

import pytest

from conftest import needs_kernel
from emulator.runtime import printk
from printk_harness import emulator_r0, kernel_r0, printk_program

IP4 = bytes([10, 0, 0, 1])
IP6 = bytes.fromhex("20010db8000000000000000000000001")
# (format, args): ints are immediates, bytes are pointers to those bytes on the stack
CASES = [
    (b"a %n %d\0", (1,)), (b"%o\0", (1,)), (b"%hd\0", (1,)), (b"%zd\0", (1,)), (b"%lc\0", (1,)),
    (b"%ls\0", (b"x\0",)), (b"%5%\0", ()), (b"%\0", ()), (b"%q\0", ()), (b"100%\0", ()),
    (b"%d %d %d %d\0", (1, 2, 3)), (b"%d%%%d\0", (1, 2)), (b"%%%%\0", ()),
    (b"x=%d\n\0", (5,)), (b"%d\0", (-5,)), (b"%i %u %x %X\0", (-7, -7, 0xBEEF, 0xBEEF)),
    (b"%ld %lld %lu\0", (-1, -(1 << 40), -1)), (b"%llx %lX %lli\0", (-1, 1 << 40, -3)),
    (b"%+d % d %+u\0", (5, 5, 5)), (b"%05d|%-5d|%-05d\0", (-42, 7, 7)), (b"%+ d %0+5d\0", (3, 3)),
    (b"%99999999d\0", (5,)), (b"%-99999999d\0", (5,)), (b"%099999999d\0", (-5,)),
    (b"%9999999999d\0", (5,)), (b"%2147483647d\0", (5,)), (b"%2147483648d\0", (5,)),
    (b"%4294967295d\0", (5,)), (b"%4294967296d\0", (5,)), (b"%8388608x\0", (1,)),
    (b"%99999999s\0", (b"ab\0",)), (b"%99999999c\0", (65,)), (b"%10s|%-4s|\0", (b"hello\0", b"x\0")),
    (b"%s\0", (0,)), (b"%5s\0", (0,)), (b"%s\0", (b"hello\0",)), (b"%s.\0", (b"a\0",)), (b"%sa\0", (b"a\0",)),
    (b"%s1\0", (b"a\0",)), (b"%s\xa0\0", (b"a\0",)), (b"%s\xd7\0", (b"a\0",)), (b"%s\xc0\0", (b"a\0",)),
    (b"%5c|%-5c|%05c\0", (65, 66, 67)), (b"%c\0", (0x141,)),
    (b"%pI4\0", (IP4,)), (b"%pi4\0", (IP4,)), (b"%pI6\0", (IP6,)), (b"%pi6\0", (IP6,)),
    (b"%pI6c\0", (IP6,)), (b"%20pI4|\0", (IP4,)), (b"%pI4abc!\0", (IP4,)), (b"%pI4\0", (0,)),
    (b"%pI5\0", (IP4,)), (b"%pI\0", (IP4,)), (b"%pz\0", (1,)), (b"%p5\0", (1,)),
    (b"%p\0", (0,)), (b"%p\0", (5,)), (b"%p \0", (5,)), (b"%20p\0", (5,)), (b"%px\0", (0,)),
    (b"%pxabc\0", (1,)), (b"%20px\0", (0,)), (b"%-20px|\0", (1,)), (b"%pK\0", (5,)), (b"%ps\0", (5,)),
    (b"%pS\0", (0x1234,)), (b"%10ps|\0", (5,)), (b"%pB\0", (5,)), (b"%pks\0", (b"ab\0",)),
    (b"%10pks|\0", (b"ab\0",)), (b"%pksx\0", (b"ab\0",)), (b"%pus\0", (b"ab\0",)),
    (b"\xa0\xff%d\0", (1,)), (b"\x80\x9f\0", ()), (b"\x7f\0", ()), (b"\x01\0", ()), (b"tab\there\r\n\0", ()),
    (b"a\0%n\0", ()), (b"%s %s %s\0", (b"a" * 300 + b"\0", b"b" * 100 + b"\0", b"c\0")),
]


@needs_kernel
@pytest.mark.parametrize("fmt,args", CASES, ids=[repr(c[0])[2:-1] for c in CASES])
def test_return_value_matches_the_kernel(fmt, args):
    program = printk_program(fmt, args)
    assert emulator_r0(program)[0] == kernel_r0(program)


@needs_kernel
def test_size_without_a_nul_is_einval_in_both():
    program = printk_program(b"abc\0", (), size=3)
    assert emulator_r0(program)[0] == kernel_r0(program) == (-22) & 0xFFFFFFFF


def _fmt(fmt: bytes, *args, mem=None):
    mem = mem or {}
    return printk.bprintf(fmt, list(args) + [0] * (3 - len(args)), lambda a, n: mem.get(a, None))


def test_texts():
    assert _fmt(b"x=%d y=%x z=%5d|", -5, 255, 42).text == b"x=-5 y=ff z=   42|"
    assert _fmt(b"%-3c|%3c|%c", 65, 66, 0x43).text == b"A  |  B|C"
    assert _fmt(b"%s!", 0x100, mem={0x100: b"h", 0x101: b"i", 0x102: b"\0"}).text == b"hi!"
    assert _fmt(b"%pI4 %pI6", 1, 2).text == b"0.0.0.0 0000:0000:0000:0000:0000:0000:0000:0000"
    assert _fmt(b"%px %020px %ps", 0xAB, 1, 7).text == b"00000000000000ab 00000000000000000001 0x7"
    assert _fmt(b"%+05d|%-6u|%lld", 3, 4, -(1 << 40)).text == b"+0003|4     |-1099511627776"
    assert _fmt(b"a %n %d", 1) == -22 and _fmt(b"%d%d%d%d", 1, 2, 3) == -22


def test_huge_widths_are_clamped_and_never_built():
    """Through the helper: width 999999999 is the kernel's 8388607, and only the 1023 bytes the
    kernel keeps are built (it once took 1.9 GB and 30 s for 4 packets)."""
    program = printk_program(b"%999999999d%999999999s%999999999c\0", (5, 0, 65))
    tracemalloc.start()
    t0 = time.perf_counter()
    for _ in range(4):
        r0, text = emulator_r0(program)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r0 == 3 * printk.FIELD_WIDTH_MAX
    assert text == " " * (printk.MAX_BPRINTF_BUF - 1)
    assert peak < 8 << 20 and elapsed < 2.0, (peak, elapsed)


def test_argument_buffer_overflow_truncates_then_enospc():
    mem = {}
    for k in range(2000):
        mem[0x1000 + k] = b"a"
    mem[0x1000 + 2000] = b"\0"
    assert _fmt(b"%s|", 0x1000, mem=mem).length == 1023 + 1    # 1023 bytes + NUL fill the buffer
    assert _fmt(b"%s|%s", 0x1000, 0x1000, mem=mem) == -28      # no room left: -ENOSPC
    assert _fmt(b"%s%d", 0x1000, 1, mem=mem) == -28
