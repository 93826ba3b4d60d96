"""bpf_trace_printk's formatting, by the kernel's rules (Linux 6.18), measured against it.

Two passes, as in the kernel: `parse` checks the format the way `bpf_bprintf_prepare`
(kernel/bpf/helpers.c) does and gathers each conversion's argument into a 1024-byte
argument buffer (strings and IP addresses are copied or pre-formatted there); `render` then
formats like `bstr_printf` (lib/vsprintf.c).  The helper returns the length bstr_printf
reports, i.e. the whole text's, while the kernel keeps only its first 1023 bytes: lengths
are computed from the pieces (a field width can be 8388607), and only the kept bytes are
ever built.  Facts the tests measured against the running kernel are in docs/runtime.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

EINVAL, ENOSPC = 22, 28
MAX_BPRINTF_BUF = 1024            # the argument buffer and the output buffer
MAX_TRACE_PRINTK_VARARGS = 3
FIELD_WIDTH_MAX = (1 << 23) - 1
NO_WIDTH = -1
M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF

_SPACE = frozenset(b" \t\n\v\f\r")
_PUNCT = frozenset(range(0x21, 0x30)) | frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61)) \
    | frozenset(range(0x7B, 0x7F))
# the kernel's ctype is Latin-1: 0xA0 is a space, 0xA1-0xBF, 0xD7 and 0xF7 punctuation
_SPACE_L1 = _SPACE | {0xA0}
_PUNCT_L1 = _PUNCT | frozenset(range(0xA1, 0xC0)) | {0xD7, 0xF7}
_DIGITS = frozenset(b"0123456789")
_ALNUM = _DIGITS | frozenset(range(0x41, 0x5B)) | frozenset(range(0x61, 0x7B)) \
    | (frozenset(range(0xC0, 0x100)) - {0xD7, 0xF7})


@dataclass(frozen=True)
class Piece:
    """One output field: `body`, padded to `width` with spaces (left or right of it), or with
    zeros between `sign` and body.  Its length is known without building it."""
    body: bytes
    width: int = NO_WIDTH
    left: bool = False
    zero: bool = False
    sign: bytes = b""

    def __len__(self) -> int:
        return max(self.width, len(self.sign) + len(self.body))

    def head(self, limit: int) -> bytes:
        """The first `limit` bytes of the field."""
        pad = len(self) - len(self.sign) - len(self.body)
        keep = min(pad, limit)
        if self.left:
            out = self.sign + self.body + b" " * max(0, min(pad, limit - len(self.sign) - len(self.body)))
        elif self.zero:
            out = self.sign + b"0" * keep + self.body
        else:
            out = b" " * keep + self.sign + self.body
        return out[:limit]


@dataclass(frozen=True)
class Spec:
    """A conversion as bstr_printf decodes it: flags, field width, conversion."""
    flags: bytes
    width: int                     # NO_WIDTH, or the clamped decimal width (may be negative)
    conv: str                      # 'd' 'i' 'u' 'x' 'X' 'c' 's' 'p' (pointer) 'pre' (pre-formatted)
    size: int = 4                  # bytes of an integer argument
    ptr: str = ""                  # pointer modifier: '' (plain), 'x', 'K', 's', 'S'


Arg = Union[int, bytes]
Memory = Callable[[int, int], Optional[bytes]]      # (addr, n) -> bytes, None on a fault


def _width(digits: bytes) -> int:
    """skip_atoi in a C int (wrapping), then clamped as set_field_width does."""
    v = 0
    for d in digits:
        v = (v * 10 + d - 0x30) & M32
    if v >> 31:
        v -= 1 << 32
    return max(-FIELD_WIDTH_MAX, min(FIELD_WIDTH_MAX, v))


class _Args:
    """The argument buffer bpf_bprintf_prepare fills (MAX_BPRINTF_BUF bytes)."""

    def __init__(self) -> None:
        self.used = 0

    def room(self) -> int:
        return MAX_BPRINTF_BUF - self.used

    def scalar(self, size: int) -> bool:
        self.used = (self.used + 3) & ~3                    # PTR_ALIGN(tmp_buf, sizeof(u32))
        if self.room() < size:
            return False
        self.used += size
        return True


def _cstring(read: Memory, addr: int, limit: int) -> bytes:
    """strncpy_from_kernel_nofault(buf, addr, limit): up to limit - 1 bytes; '' on a fault."""
    out = bytearray()
    while len(out) < limit - 1:
        b = read(addr + len(out), 1)
        if b is None:
            return b""
        if b == b"\0":
            break
        out += b
    return bytes(out)


def _ip(conv: bytes, raw: bytes) -> bytes:
    if conv == b"I4":
        return ".".join(str(b) for b in raw).encode()
    if conv == b"i4":
        return ".".join(f"{b:03d}" for b in raw).encode()
    groups = [raw[i:i + 2].hex() for i in range(0, 16, 2)]
    return (":" if conv == b"I6" else "").join(groups).encode()


def parse(fmt: bytes, args: list[int], read: Memory, nargs: int = MAX_TRACE_PRINTK_VARARGS):
    """bpf_bprintf_prepare: the list of literal bytes and (Spec, value) pairs, or -errno."""
    for b in fmt:
        if b < 0x80 and not (0x20 <= b < 0x7F or b in _SPACE):
            return -EINVAL
    out: list = []
    buf = _Args()
    n = len(fmt)
    at = lambda k: fmt[k] if k < n else 0       # noqa: E731 (the NUL that ends the format)
    i, lit, nspec = 0, bytearray(), 0
    while i < n:
        if fmt[i] != 0x25:
            lit.append(fmt[i])
            i += 1
            continue
        if at(i + 1) == 0x25:
            lit.append(0x25)
            i += 2
            continue
        if nspec >= nargs:
            return -EINVAL
        v = args[nspec] & M64
        i += 1
        f0 = i
        while at(i) in b"0+- ":
            i += 1
        flags = fmt[f0:i]
        w0 = i
        if 0x31 <= at(i) <= 0x39:
            while at(i) in _DIGITS:
                i += 1
        width = _width(fmt[w0:i]) if i > w0 else NO_WIDTH
        c = at(i)
        spec: Optional[Spec] = None
        value: Arg = v
        skip_alnum = False
        if c == 0x70:                                              # 'p'
            nxt = at(i + 1)
            if nxt == 0 or nxt in _SPACE_L1 or nxt in _PUNCT_L1:
                spec, i = Spec(flags, width, "p"), i + 1
                ok = buf.scalar(8)
            elif nxt in b"ku" and at(i + 2) == 0x73:               # %pks, %pus: strings
                if not (at(i + 3) == 0 or at(i + 3) in _SPACE_L1 or at(i + 3) in _PUNCT_L1):
                    return -EINVAL
                if buf.room() == 0:
                    return -ENOSPC
                s = _cstring(read, v, buf.room()) if nxt == 0x6B else b""
                buf.used += len(s) + 1
                spec, value, i = Spec(flags, width, "pre"), s, i + 3
            elif nxt in b"KxsS":
                spec, i = Spec(flags, width, "p", ptr=chr(nxt)), i + 2
                ok = buf.scalar(8)
                skip_alnum = True
            elif nxt == 0x42:                                       # %pB: pre-formatted symbol
                s = b"0x%x" % v
                buf.used += len(s) + 1
                spec, value, i = Spec(flags, width, "pre"), s, i + 2
                skip_alnum = True
            elif nxt in b"iI" and at(i + 2) in b"46":
                size = 4 if at(i + 2) == 0x34 else 16
                if buf.room() < size:
                    return -ENOSPC
                raw = read(v, size) or bytes(size)
                s = _ip(fmt[i + 1:i + 3], raw)
                buf.used += len(s) + 1
                spec, value, i = Spec(flags, width, "pre"), s, i + 3
                skip_alnum = True
            else:
                return -EINVAL
            if spec.conv == "p" and not ok:
                return -ENOSPC
        elif c == 0x73:                                            # 's'
            if not (at(i + 1) == 0 or at(i + 1) in _SPACE_L1 or at(i + 1) in _PUNCT_L1):
                return -EINVAL
            if buf.room() == 0:
                return -ENOSPC
            s = _cstring(read, v, buf.room())
            buf.used += len(s) + 1
            spec, value, i = Spec(flags, width, "s"), s, i + 1
        elif c == 0x63:                                            # 'c'
            if buf.room() == 0:
                return -ENOSPC
            buf.used += 1
            spec, value, i = Spec(flags, width, "c"), v & 0xFF, i + 1
        else:
            size = 4
            if at(i) == 0x6C:
                size, i = 8, i + 1
                if at(i) == 0x6C:
                    i += 1
            if at(i) not in b"iduxX":
                return -EINVAL
            if not buf.scalar(size):
                return -ENOSPC
            spec, i = Spec(flags, width, chr(at(i)), size), i + 1
        if skip_alnum:                      # bstr_printf skips a pointer's alphanumeric suffix
            while at(i) in _ALNUM:
                i += 1
        if lit:
            out.append(bytes(lit))
            lit = bytearray()
        out.append((spec, value))
        nspec += 1
    if lit:
        out.append(bytes(lit))
    return out


def _number(spec: Spec, v: int) -> Piece:
    bits = spec.size * 8
    v &= (1 << bits) - 1
    sign = b""
    if spec.conv in "di":
        if v >> (bits - 1):
            v, sign = (1 << bits) - v, b"-"
        elif b"+" in spec.flags:
            sign = b"+"
        elif b" " in spec.flags:
            sign = b" "
    body = (b"%d" if spec.conv in "diu" else b"%x" if spec.conv == "x" else b"%X") % v
    left = b"-" in spec.flags
    return Piece(body, spec.width, left, b"0" in spec.flags and not left, sign)


def _pointer(spec: Spec, v: int) -> Piece:
    """%p (hashed in the kernel), %pK, %px: hex digits; %ps/%pS: the symbol, here 0x%x."""
    left = b"-" in spec.flags
    if spec.ptr in ("s", "S"):
        return Piece(b"0x%x" % v, spec.width, left)
    if spec.width == NO_WIDTH:
        return Piece(b"%016x" % v)
    return Piece(b"%x" % v, spec.width, left, b"0" in spec.flags and not left)


def field(spec: Spec, value: Arg) -> Piece:
    if spec.conv == "pre":
        return Piece(value)                 # copied as the first pass formatted it: no width
    if spec.conv == "s":
        return Piece(value, spec.width, b"-" in spec.flags)
    if spec.conv == "c":
        return Piece(bytes([value]), spec.width, b"-" in spec.flags)
    if spec.conv == "p":
        return _pointer(spec, value)
    return _number(spec, value)


@dataclass(frozen=True)
class Printed:
    length: int        # what bstr_printf returns (the helper's r0)
    text: bytes        # the bytes the kernel keeps (at most MAX_BPRINTF_BUF - 1)


def render(parts: list) -> Printed:
    limit = MAX_BPRINTF_BUF - 1
    total, out = 0, bytearray()
    for p in parts:
        piece = Piece(p) if isinstance(p, bytes) else field(*p)
        total += len(piece)
        if len(out) < limit:
            out += piece.head(limit - len(out))
    return Printed(total, bytes(out))


def bprintf(fmt: bytes, args: list[int], read: Memory) -> Union[Printed, int]:
    """The formatted result of bpf_trace_printk's format (no NUL) and arguments, or -errno."""
    parts = parse(fmt, args, read)
    if isinstance(parts, int):
        return parts
    return render(parts)
