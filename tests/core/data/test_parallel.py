"""The scan's file pool: results in order whatever the thread count, cancel, and rate-limited progress."""

from __future__ import annotations

import threading

import pytest

from tlstudio.core.data.parallel import Progress, run_pool
from tlstudio.core.errors import Cancelled


@pytest.mark.parametrize("workers", [1, 4])
def test_results_come_back_in_order_and_progress_reaches_the_end(workers):
    done: list[int] = []
    items = list(range(500))
    assert run_pool(items, lambda x: x * x, None, done.append, workers) == [x * x for x in items]
    assert done == sorted(done) and done[-1] == 500


def test_cancel_during_the_work_raises_cancelled():
    cancel = threading.Event()
    seen: list[int] = []

    def work(x):
        seen.append(x)
        if len(seen) == 10:
            cancel.set()
        return x

    with pytest.raises(Cancelled):
        run_pool(list(range(10_000)), work, cancel, lambda d: None, 2)
    assert len(seen) < 10_000


def test_progress_is_rate_limited_but_always_reports_the_end():
    calls: list[tuple[int, int]] = []
    report = Progress(lambda d, t: calls.append((d, t)))
    for i in range(1, 10_001):
        report(i, 10_000)
    assert 150 <= len(calls) <= 210 and calls[-1] == (10_000, 10_000)
    report(10_000, 10_000)  # the same numbers twice are reported once
    assert calls.count((10_000, 10_000)) == 1
