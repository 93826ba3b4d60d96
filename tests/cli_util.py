"""Helpers for the command-line tests: run hxdpc in-process, check the one-line error."""
import struct
from pathlib import Path

from click.testing import CliRunner

from hxdpc.cli import main


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(r, *needles) -> str:
    """The contract for bad input: exit 2, one `error:` line on stderr naming the input
    (each of `needles`), no traceback; returns the line."""
    crashed = r.exception is not None and not isinstance(r.exception, SystemExit)
    assert not crashed, f"{type(r.exception).__name__}: {r.exception}"
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def small_pcap(src: Path, dst: Path, n: int = 2) -> Path:
    """The first `n` packets of a little-endian pcap file (quick runs)."""
    raw = src.read_bytes()
    assert struct.unpack_from("<I", raw)[0] in (0xA1B2C3D4, 0xA1B23C4D)
    at = 24
    for _ in range(n):
        if at >= len(raw):
            break
        at += 16 + struct.unpack_from("<I", raw, at + 8)[0]
    dst.write_bytes(raw[:at])
    return dst
