import threading
import time

from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.workers.base import FunctionWorker, start_worker


def _count(n, *, progress, cancel):
    for i in range(n):
        if cancel.is_set():
            raise Cancelled()
        progress(i + 1, n)
        time.sleep(0.01)
    return threading.current_thread().name


def test_worker_runs_off_the_gui_thread_and_reports(qtbot, recorder):
    worker = FunctionWorker(_count, 5)
    seen = recorder(worker.progress)
    ok = recorder(worker.succeeded)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: bool(ok.calls), timeout=5000)
    assert ok.calls[0][0] != threading.current_thread().name
    assert handle.wait(5000)
    assert seen.calls[-1] == (5, 5)


def test_cancel_and_failure_become_signals(qtbot, recorder):
    worker = FunctionWorker(_count, 10_000)
    cancelled = recorder(worker.cancelled)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: worker.cancel_event.is_set() or handle.cancel() or True, timeout=1000)
    qtbot.waitUntil(lambda: bool(cancelled.calls), timeout=5000)
    assert handle.wait(5000)

    def boom(*, progress, cancel):
        raise TlstudioError("the folder is gone")

    worker = FunctionWorker(boom)
    failed = recorder(worker.failed)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: bool(failed.calls), timeout=5000)
    assert failed.calls == [("the folder is gone",)]
    assert handle.wait(5000)
