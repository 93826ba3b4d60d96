"""Errors that reach the user as one line and exit code 2 (bad input), and the helpers
that keep them one short line: `quote` for file content, `read_json` and the `expect_*`
type checks for every JSON file a user gives."""
from __future__ import annotations

import reprlib

QUOTE_LIMIT = 60          # characters of file content an error message may quote
U32_MAX = 0xFFFFFFFF


class InputError(Exception):
    """Bad input: `where` names the file (and offset, section or packet index)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def _escape(c: str) -> str:
    if c in "'\\":
        return "\\" + c
    if c in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 30, 30


def quote(content, limit: int = QUOTE_LIMIT) -> str:
    """File content (str, bytes, or a parsed JSON value) as a short quotation for an error
    message: one line of at most ~`limit` printable characters, everything else escaped, so
    that a binary file never floods the terminal."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        text = bytes(content[:limit + 1]).decode("latin-1")    # one char per byte
        keep = lambda c: " " <= c <= "~"                          # noqa: E731
    elif isinstance(content, str):
        text, keep = content[:limit + 1], str.isprintable
    else:
        return quote(_REPR.repr(content), limit)[1:-1]         # a JSON value: its short repr
    out, n = [], 0
    for c in text:
        piece = c if keep(c) and c not in "'\\" else _escape(c)
        if n + len(piece) > limit:
            out.append("...")
            break
        out.append(piece)
        n += len(piece)
    return "'" + "".join(out) + "'"


def plain(name: str) -> str:
    """A name from a file (section, map) as it is when short and printable, else quoted."""
    name = str(name)
    if name.isprintable() and len(name) <= QUOTE_LIMIT and "'" not in name:
        return name
    return quote(name)


def read_json(path, what: str):
    """The JSON in file `path` (None when path is None), or InputError naming the file."""
    import json
    from pathlib import Path
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(str(path), f"cannot read {what}: {e.strerror or e}") from None
    except RecursionError:
        raise InputError(str(path), f"{what} is nested too deeply") from None
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"{what} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"{what} is not valid JSON ({e.msg} at line {e.lineno} "
                                    f"column {e.colno})") from None
    except ValueError as e:          # e.g. an integer of more than 4300 digits
        raise InputError(str(path), f"{what} is not valid JSON ({quote(str(e))})") from None


# ---- type checks for parsed JSON: each names the place and says what was expected ----

def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def expect_object(where: str, v, fields=None, required=()) -> dict:
    """`v` as a JSON object; with `fields`, any other key is an error (a typo is not ignored)."""
    if not isinstance(v, dict):
        raise InputError(where, f"expected an object, got {_kind(v)}")
    if fields is not None:
        for k in v:
            if k not in fields:
                raise InputError(where, f"unknown field {quote(k)} (fields: {', '.join(fields)})")
    for k in required:
        if k not in v:
            raise InputError(where, f"missing field {k!r}")
    return v


def expect_list(where: str, v) -> list:
    if not isinstance(v, list):
        raise InputError(where, f"expected a list, got {_kind(v)}")
    return v


def expect_str(where: str, v) -> str:
    if not isinstance(v, str):
        raise InputError(where, f"expected a string, got {_kind(v)}")
    return v


def expect_int(where: str, v, low: int = 0, high: int = U32_MAX) -> int:
    """An integer in low..high (JSON true/false are not integers here)."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise InputError(where, f"expected an integer {low}..{high}, got {_kind(v)}")
    if not low <= v <= high:
        raise InputError(where, f"expected an integer {low}..{high}, got {v if abs(v) < 10**30 else 'a huge one'}")
    return v


def expect_bool(where: str, v) -> bool:
    if not isinstance(v, bool):
        raise InputError(where, f"expected true or false, got {_kind(v)}")
    return v
