"""Scanning on a worker: the real scan runs through the factory, reports progress, and stops when cancelled."""

from __future__ import annotations

import threading

from tlstudio.core.data import scan as dataset
from tlstudio.core.data.scan import DatasetScan
from tlstudio.workers.base import create_worker


def outcomes_of(names=("finished", "failed", "cancelled", "progress")):
    seen: dict[str, list] = {n: [] for n in names}
    return seen, {n: (lambda *a, n=n: seen[n].append(a)) for n in names}


def test_scan_returns_the_scan_with_progress(qtbot, image_folder):
    root = image_folder({"a": 3, "b": 4})
    seen, connect = outcomes_of()
    handle = create_worker(dataset.scan_dataset, root, _connect=connect)
    qtbot.waitUntil(lambda: bool(seen["finished"]), timeout=10000)
    assert handle.wait(5000)
    scan = seen["finished"][0][0]
    assert isinstance(scan, DatasetScan)
    assert scan.class_counts() == {"a": 3, "b": 4}
    assert seen["progress"] and seen["progress"][-1][0] == seen["progress"][-1][1]


def test_cancel_stops_the_real_scan(qtbot, image_folder, monkeypatch):
    root = image_folder({"a": 3, "b": 3})
    real = dataset.scan_dataset
    started = threading.Event()

    def held_scan(path, *, progress=None, cancel=None):
        started.set()
        assert cancel.wait(10)  # hold the scan until the test cancels it
        return real(path, progress=progress, cancel=cancel)

    seen, connect = outcomes_of()
    handle = create_worker(held_scan, root, _connect=connect)
    assert started.wait(10)
    handle.cancel()
    qtbot.waitUntil(lambda: bool(seen["cancelled"]), timeout=10000)
    assert handle.wait(5000)
    qtbot.wait(50)
    assert seen["finished"] == [] and seen["failed"] == []


def test_failure_is_a_message(qtbot, tmp_path):
    seen, connect = outcomes_of()
    handle = create_worker(dataset.scan_dataset, tmp_path / "nowhere", _connect=connect)
    qtbot.waitUntil(lambda: bool(seen["failed"]), timeout=10000)
    assert handle.wait(5000)
    assert "not found" in seen["failed"][0][0]
