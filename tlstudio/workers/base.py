"""The worker pattern every background task in the app follows.

A :class:`Worker` is a QObject moved onto its own QThread. ``thread.started`` runs
:meth:`Worker.run`, which calls the subclass's :meth:`Worker.work` (plain Python that calls core),
then emits exactly one of ``succeeded``, ``failed`` or ``cancelled``, then ``done``.
``done`` quits the thread and schedules both objects for deletion.

Cancelling is a plain method that sets a ``threading.Event``: it cannot be a queued slot, because
the worker's thread is busy inside core code and runs no event loop until it returns.
A worker never touches a widget; its signals carry numbers, strings, paths and frozen dataclasses.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from tlstudio.core.errors import Cancelled, TlstudioError

log = logging.getLogger(__name__)


class Worker(QObject):
    """Base class: subclass and implement :meth:`work`; use :meth:`report` for progress."""

    progress = Signal(int, int)  # done, total (total 0 = unknown)
    message = Signal(str)
    succeeded = Signal(object)  # the value :meth:`work` returned
    failed = Signal(str)  # a one-line message for the user
    cancelled = Signal()
    done = Signal()  # always last, whatever the outcome

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()

    def request_cancel(self) -> None:
        """Ask the work to stop soon; safe to call from any thread."""
        self.cancel_event.set()

    def report(self, done: int, total: int) -> None:
        """Progress callback suitable to hand to core functions."""
        self.progress.emit(int(done), int(total))

    def work(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        try:
            result = self.work()
        except Cancelled:
            self.cancelled.emit()
        except TlstudioError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("Ran out of memory. Try a smaller batch size or a smaller base model.")
        except Exception as exc:  # a bug or an unforeseen input: report it, never crash the app
            log.error("worker %s failed:\n%s", type(self).__name__, traceback.format_exc())
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
        else:
            if self.cancel_event.is_set():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            self.done.emit()


class WorkerHandle:
    """Owns one running worker and its thread until both are finished.

    ``handle = start_worker(worker)``; ``handle.cancel()``; ``handle.wait()`` (e.g. on window close).
    """

    def __init__(self, worker: Worker, thread: QThread) -> None:
        self.worker = worker
        self.thread = thread
        self._finished = False
        # The thread's state is asked of the thread itself: a Python slot on ``thread.finished`` is
        # delivered later through the GUI event loop, when this plain object may already be gone.
        # Keep the handle until the thread has ended: dropping the last reference to a running
        # QThread destroys it.

    def is_running(self) -> bool:
        if self._finished:
            return False
        try:
            running = self.thread.isRunning() or not self.thread.isFinished()
        except RuntimeError:  # the C++ thread object is gone
            running = False
        if not running:
            self._finished = True
        return running

    def cancel(self) -> None:
        try:
            self.worker.request_cancel()
        except RuntimeError:  # the worker was already deleted: it has finished
            pass

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread has ended (or ``msecs`` passed); True when it ended."""
        if self._finished:
            return True
        try:
            ended = bool(self.thread.wait(msecs))
        except RuntimeError:
            ended = True
        if ended:
            self._finished = True
        return ended


# Every started handle stays referenced here until its thread has ended, so a caller that drops
# its handle early never destroys a running QThread.
_live_handles: list[WorkerHandle] = []


def start_worker(worker: Worker, *, name: str | None = None) -> WorkerHandle:
    """Move ``worker`` to a new QThread, wire the lifetime signals and start it."""
    _live_handles[:] = [h for h in _live_handles if h.is_running()]
    thread = QThread()
    if name:
        thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: QThread.quit is thread-safe, and a queued call would wait for the GUI thread's event
    # loop, so WorkerHandle.wait() called from the GUI thread (e.g. on close) could never return.
    worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    worker.done.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    handle = WorkerHandle(worker, thread)
    _live_handles.append(handle)
    thread.start()
    return handle


class FunctionWorker(Worker):
    """Runs ``fn(*args, progress=self.report, cancel=self.cancel_event, **kwargs)`` when the callable takes them.

    Pass ``pass_progress``/``pass_cancel`` False for callables that do not accept those keywords.
    """

    def __init__(self, fn, *args, pass_progress: bool = True, pass_cancel: bool = True, **kwargs) -> None:
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._pass_progress = pass_progress
        self._pass_cancel = pass_cancel

    def work(self) -> Any:
        kwargs = dict(self._kwargs)
        if self._pass_progress:
            kwargs["progress"] = self.report
        if self._pass_cancel:
            kwargs["cancel"] = self.cancel_event
        return self._fn(*self._args, **kwargs)
