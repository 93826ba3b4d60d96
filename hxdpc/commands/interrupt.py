"""SIGINT and SIGTERM during a run: stop at a safe point, leave whole outputs, exit 128 + N.

Without this, SIGTERM kills Python at once: buffered pcap records are cut anywhere (a record
header without its data) and no map dump is written; and SIGINT becomes click's "Aborted!"
with exit 1, which the contract reserves for "differences found".  Inside `StopSignals`, a
signal raises `Interrupted` at once while nothing is being written; inside `held()` (a
packet's run and its records, closing the outputs, the kernel's setup and cleanup) it waits
for the next `check()` or the end of the block.  The command catches `Interrupted` and exits
with `exit_code` (130 for SIGINT, 143 for SIGTERM).
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A stop signal arrived (BaseException, like KeyboardInterrupt: no `except Exception`
    in the libraries may swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """Context manager: SIGINT/SIGTERM handlers for one run (the previous ones restored)."""

    def __init__(self):
        self.pending: Optional[int] = None
        self._held = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        for s in STOP_SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handle(self, signum, _frame) -> None:
        if self.pending is None:
            self.pending = signum
        if not self._held:
            raise Interrupted(self.pending)

    def check(self) -> None:
        """A safe point: raise Interrupted if a signal came while held."""
        if self.pending is not None:
            raise Interrupted(self.pending)

    @contextmanager
    def held(self):
        """Signals wait until check() or the end of this block; if an exception already ends
        the block (Interrupted, an InputError), that one goes on and the signal adds nothing."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
        if not self._held:
            self.check()


class NoSignals:
    """Stand-in for StopSignals when a library caller (a test) installs none."""

    pending = None

    def check(self) -> None:
        pass

    @contextmanager
    def held(self):
        yield self
