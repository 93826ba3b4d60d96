"""The commands' output files: never the same file as an input, and never a traceback.

Every command that writes files calls `check_outputs` first, before it opens anything, so
`emulate --results same.pcap` or `compile same.o -o same.o` stop with exit 2 while the input
is still whole.  "The same file" is what the file system says (`os.path.samefile`: hard
links and symbolic links included); for a path that does not exist yet, the resolved path.
Then `OutputFile` / `write_text` turn any OSError on an output (read-only file system, no
space, a directory in the way) into an InputError naming the path: one line, exit 2.
"""
from __future__ import annotations

import os
import re
from itertools import combinations
from pathlib import Path
from typing import Mapping, Optional

from isa.errors import InputError

# the per-action pcaps `emulate --out-dir` writes (emulator.runtime.pcapio.output_name)
ACTION_PCAP = re.compile(r"^(XDP_[A-Z]+(-.*)?|UNKNOWN-\d+)\.pcap$")

Paths = Mapping[str, Optional[os.PathLike | str]]     # option name -> path (None: not given)


def same_file(a, b) -> bool:
    """True when paths `a` and `b` name one file (hard links, symlinks, `..` included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:                          # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _given(paths: Paths) -> list[tuple[str, str]]:
    return [(label, str(p)) for label, p in paths.items() if p is not None and str(p) != ""]


def check_outputs(inputs: Paths, outputs: Paths, out_dir: Optional[tuple[str, str]] = None) -> None:
    """Refuse (InputError, exit 2) an output that is an input, or two outputs that are one file.

    `out_dir` is (option, directory) of a directory whose files named like ACTION_PCAP are
    outputs; an input there with such a name would be overwritten too."""
    ins, outs = _given(inputs), _given(outputs)
    for out_label, out in outs:
        for in_label, inp in ins:
            if same_file(out, inp):
                raise InputError(out, f"{out_label} is the same file as the input {in_label} ({inp}); "
                                      "refusing to overwrite an input")
    for (la, a), (lb, b) in combinations(outs, 2):
        if same_file(a, b):
            raise InputError(b, f"{lb} is the same file as {la} ({a}); give each output its own path")
    if out_dir is not None and out_dir[1]:
        label, directory = out_dir
        for in_label, inp in ins:
            if ACTION_PCAP.match(os.path.basename(inp)) and same_file(os.path.dirname(inp) or ".", directory):
                raise InputError(inp, f"the input {in_label} is in {label} {directory}, where this run "
                                      f"writes {os.path.basename(inp)}; refusing to overwrite an input")


def cannot_write(path, e: OSError) -> InputError:
    return InputError(str(path), f"cannot write: {e.strerror or e}")


def make_parent(path) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_write(path, e) from None


class OutputFile:
    """A text or binary output file whose every OSError (open, write, close) is an
    InputError naming it.  Each write() is one whole record (a JSON line, a pcap record)."""

    def __init__(self, path, binary: bool = False):
        self.path = str(path)
        make_parent(path)
        try:
            self.f = open(path, "wb" if binary else "w")
        except OSError as e:
            raise cannot_write(path, e) from None

    def write(self, record) -> None:
        try:
            self.f.write(record)
        except OSError as e:
            raise cannot_write(self.path, e) from None

    def close(self) -> None:
        try:
            self.f.close()
        except OSError as e:
            raise cannot_write(self.path, e) from None


def write_text(path, text: str) -> None:
    """Write a whole text file; an OSError is an InputError naming the path."""
    out = OutputFile(path)
    try:
        out.write(text)
    finally:
        out.close()
