"""The progress display of emulate and verify: packets done of the total, rate, time left.

rich draws it on stderr, and only when stderr is a terminal (the commands decide), so files,
pipes and the results on stdout never see it.
"""
from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class PacketRate(ProgressColumn):
    """Packets per second over the recent past (rich's speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("? packets/s" if speed is None else f"{speed:,.0f} packets/s", style="progress.data.speed")


class PacketCount(ProgressColumn):
    """`done of total packets` (`done packets` while the total is unknown)."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        if task.total is None:
            return Text(f"{done:,} packets", style="progress.download")
        return Text(f"{done:,} of {int(task.total):,} packets", style="progress.download")


def packet_progress(console: Optional[Console] = None) -> Progress:
    """A transient rich Progress on `console` (default: stderr) with the packet columns."""
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    PacketCount(), PacketRate(), TimeRemainingColumn(),
                    console=console or Console(stderr=True), transient=True)
