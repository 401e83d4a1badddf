"""The worker pattern: one factory, one registry, exactly one outcome per task, handlers in the GUI thread."""

import threading
import time

import pytest

from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.workers.base import FunctionWorker, create_worker, registry


def _count(n, *, progress, cancel):
    for i in range(n):
        if cancel.is_set():
            raise Cancelled()
        progress(i + 1, n)
        time.sleep(0.01)
    return threading.current_thread().name


def record(names=("finished", "failed", "cancelled", "progress", "message")):
    seen: list[tuple] = []
    return seen, {n: (lambda *a, n=n: seen.append((n, threading.current_thread().name, *a))) for n in names}


def outcomes(seen):
    return [s for s in seen if s[0] in ("finished", "failed", "cancelled")]


def test_factory_runs_off_the_gui_thread_and_handlers_run_on_it(qtbot):
    seen, connect = record()
    handle = create_worker(_count, 5, _connect=connect)
    qtbot.waitUntil(lambda: bool(outcomes(seen)), timeout=5000)
    assert handle.wait(5000)
    gui = threading.current_thread().name
    kind, handler_thread, worker_thread = outcomes(seen)[0]
    assert kind == "finished" and worker_thread != gui and handler_thread == gui
    assert [s[2:] for s in seen if s[0] == "progress"][-1] == (5, 5)


@pytest.mark.parametrize(("fn", "expected"), [
    (lambda *, cancel: cancel.wait(10) and (_ for _ in ()).throw(Cancelled()), "cancelled"),
    (lambda: (_ for _ in ()).throw(TlstudioError("the folder is gone")), "failed"),
    (lambda: (_ for _ in ()).throw(ValueError("bug")), "failed"),
    (lambda: 42, "finished"),
])
def test_exactly_one_outcome_fires(qtbot, fn, expected):
    seen, connect = record()
    handle = create_worker(fn, _connect=connect)
    handle.cancel()
    assert handle.wait(5000)
    qtbot.waitUntil(lambda: bool(outcomes(seen)), timeout=5000)
    qtbot.wait(50)  # anything else queued would arrive now
    assert [o[0] for o in outcomes(seen)] == [expected]
    if expected == "failed":
        assert "\n" not in outcomes(seen)[0][2]


def test_factory_hands_only_the_keywords_a_function_takes():
    def plain(x):
        return x + 1

    def chatty(x, *, message, cancel):
        message("hello")
        return cancel.is_set()

    assert FunctionWorker(plain, 1).work() == 2
    worker = FunctionWorker(chatty, 1)
    assert worker.work() is False


def test_registry_knows_what_runs_and_shuts_an_owner_down(qtbot):
    owner_a, owner_b = object(), object()

    def spin(*, cancel):
        while not cancel.wait(0.02):
            pass

    a = create_worker(spin, _owner=owner_a, _name="spin")
    b = create_worker(spin, _owner=owner_b, _name="spin")
    assert registry.running(owner=owner_a) == [a]
    assert registry.running(name="spin") == [a, b]
    assert registry.shutdown(owner=owner_a, msecs=5000)  # from the GUI thread, without an event loop
    assert not a.is_running() and b.is_running()
    assert registry.running(owner=owner_a) == []
    registry.shutdown(msecs=5000)
    assert registry.running() == []


def test_detached_handlers_hear_nothing(qtbot):
    seen, connect = record()
    gate = threading.Event()
    handle = create_worker(lambda: gate.wait(5) and 1, _connect=connect)
    handle.detach()
    gate.set()
    assert handle.wait(5000)
    qtbot.wait(100)
    assert seen == []


def test_a_workers_own_signals_reach_the_gui_thread_until_detached(qtbot):
    from PySide6.QtCore import Signal

    from tlstudio.workers.base import Worker, start_worker

    class Chatty(Worker):
        said = Signal(str)

        def __init__(self):
            super().__init__()
            self.gate = threading.Event()

        def work(self):
            self.said.emit("first")
            self.gate.wait(5)
            self.said.emit("after detach")
            return None

    heard = []
    worker = Chatty()
    handle = start_worker(worker, connect={"said": lambda text: heard.append((text, threading.current_thread().name))})
    qtbot.waitUntil(lambda: bool(heard), timeout=5000)
    handle.detach()
    worker.gate.set()
    assert handle.wait(5000)
    qtbot.wait(100)
    assert heard == [("first", threading.current_thread().name)]
