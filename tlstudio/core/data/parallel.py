"""Reading many files on a small thread pool, with progress and cancel (used by the scan)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from tlstudio.core.errors import Cancelled

_CHUNK = 32  # files per thread-pool task

ProgressFn = Callable[[int, int], Any]


class Progress:
    """Calls ``progress(done, total)`` at most about 200 times per phase, and always at the end."""

    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self.last: tuple[int, int] = (-1, -1)

    def __call__(self, done: int, total: int, force: bool = False) -> None:
        if self.fn is None or (done, total) == self.last:
            return
        step = max(1, total // 200)
        if force or done == total or done - self.last[0] >= step:
            self.last = (done, total)
            self.fn(done, total)


def run_pool(
    items: list[Any],
    fn: Callable[[Any], Any],
    cancel: threading.Event | None,
    on_done: Callable[[int], None],
    workers: int,
) -> list[Any]:
    """Run ``fn`` over ``items`` on a thread pool, results in order, checking ``cancel`` throughout.

    Items go to the threads in small chunks: one future per file would cost more than reading a
    small image header. Threads pay off when reading waits on the disk (network shares, cold
    caches, big files); Pillow's header parsing itself holds the GIL.
    """
    results: list[Any] = [None] * len(items)
    if not items:
        return results
    chunk = max(1, min(_CHUNK, len(items) // (workers * 4) or 1))
    chunks = [range(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]

    def run_chunk(indices: range) -> int:
        for i in indices:
            if cancel is not None and cancel.is_set():
                break
            results[i] = fn(items[i])
        return len(indices)

    done = 0
    if workers <= 1:
        for indices in chunks:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Scan cancelled.")
            done += run_chunk(indices)
            on_done(done)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tlstudio-scan") as pool:
            pending = {pool.submit(run_chunk, c) for c in chunks}
            try:
                while pending:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Scan cancelled.")
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done += fut.result()
                    if finished:
                        on_done(done)
            finally:
                for fut in pending:
                    fut.cancel()
    if cancel is not None and cancel.is_set():
        raise Cancelled("Scan cancelled.")
    return results
