"""The progress bar of long jobs (benchmarks): description, bar, done/total, elapsed time, on stderr."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(console: Console | None = None) -> Progress:
    """A transient rich ``Progress`` (gone when done, so the tables printed after it stand alone)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(file=sys.stderr),
        transient=True,
    )
