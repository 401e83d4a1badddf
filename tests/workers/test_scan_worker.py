"""ScanWorker: the scan runs on a QThread, reports progress, and stops when cancelled."""

from __future__ import annotations

import threading

from tlstudio.core.data.scan import DatasetScan
from tlstudio.workers.base import start_worker
from tlstudio.workers.scan_worker import ScanWorker


def test_scan_worker_returns_the_scan(qtbot, recorder, image_folder):
    root = image_folder({"a": 3, "b": 4})
    worker = ScanWorker(root)
    ok = recorder(worker.succeeded)
    progress = recorder(worker.progress)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: bool(ok.calls), timeout=10000)
    assert handle.wait(5000)
    scan = ok.calls[0][0]
    assert isinstance(scan, DatasetScan)
    assert scan.class_counts() == {"a": 3, "b": 4}
    assert progress.calls and progress.calls[-1][0] == progress.calls[-1][1]


def test_scan_worker_cancel_stops_the_real_scan(qtbot, recorder, image_folder, monkeypatch):
    from tlstudio.core.data import scan as dataset
    root = image_folder({"a": 3, "b": 3})
    real = dataset.scan_dataset
    started = threading.Event()

    def held_scan(path, *, progress=None, cancel=None):
        started.set()
        assert cancel.wait(10)  # hold the scan until the test cancels it
        return real(path, progress=progress, cancel=cancel)

    monkeypatch.setattr(dataset, "scan_dataset", held_scan)
    worker = ScanWorker(root)
    cancelled = recorder(worker.cancelled)
    ok = recorder(worker.succeeded)
    handle = start_worker(worker)
    assert started.wait(10)
    handle.cancel()
    qtbot.waitUntil(lambda: bool(cancelled.calls), timeout=10000)
    assert handle.wait(5000)
    assert ok.calls == []


def test_failure_is_a_message(qtbot, recorder, tmp_path):
    worker = ScanWorker(tmp_path / "nowhere")
    failed = recorder(worker.failed)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: bool(failed.calls), timeout=10000)
    assert handle.wait(5000)
    assert "not found" in failed.calls[0][0]


def test_wait_from_the_gui_thread_returns_while_the_worker_runs(qtbot, tmp_path):
    """Closing the window cancels and waits without spinning the event loop: that must not hang."""
    from tlstudio.workers.base import FunctionWorker

    def spin(*, progress, cancel):
        while not cancel.wait(0.02):
            pass

    handle = start_worker(FunctionWorker(spin))
    handle.cancel()
    assert handle.wait(5000)
