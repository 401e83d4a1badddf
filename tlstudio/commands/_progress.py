"""One terminal progress bar for the commands: rich on an interactive stderr, nothing otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

Progress = Callable[[int, int], None]


def terminal_progress(stream: TextIO, label: str, *, unit: str = "items") -> tuple[Progress | None, Callable[[], None]]:
    """Return ``(progress, finish)`` for a core function's ``progress(done, total)`` callback.

    On a pipe, in CI or in tests (``stream`` is not a terminal) ``progress`` is None and ``finish``
    does nothing, so output stays clean. The bar appears on the first call and ``finish`` removes it.
    ``unit="bytes"`` shows sizes (downloads), otherwise "done/total" and the time left.
    """
    if not stream.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    columns = [TextColumn(label), BarColumn()]
    columns += [DownloadColumn()] if unit == "bytes" else [MofNCompleteColumn(), TimeRemainingColumn()]
    bar = RichProgress(*columns, console=Console(file=stream), transient=True)
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total or None)
        bar.update(task, completed=done, total=total or None)

    return progress, bar.stop
