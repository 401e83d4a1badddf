"""The worker pattern every background task in the app follows: one factory, one registry.

A :class:`Worker` is a QObject moved onto its own QThread. ``thread.started`` runs :meth:`Worker.run`,
which calls :meth:`Worker.work` (plain Python that calls core) and then emits exactly one outcome:

``finished(result)``
    the work returned (a run cancelled after it kept weights still returns, and so finishes);
``failed(message)``
    a one-line message for the user;
``cancelled()``
    the work stopped on :class:`~tlstudio.core.errors.Cancelled` before producing anything.

Most tasks are a function call: :func:`create_worker` wraps one (napari's ``create_worker``), handing it
``progress``, ``cancel`` and ``message`` when its signature takes them. Every started worker is held by
the :data:`registry` until its thread has ended (napari's ``WorkerBase.await_workers``), so dropping a
handle never destroys a running QThread, and closing the window can cancel and wait for them all.

Cancelling is a plain method that sets a ``threading.Event``: it cannot be a queued slot, because the
worker's thread is busy inside core code and runs no event loop until it returns.
A worker never touches a widget; its signals carry numbers, strings, paths and frozen dataclasses.
"""

from __future__ import annotations

import inspect
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from tlstudio.core.errors import Cancelled, TlstudioError

log = logging.getLogger(__name__)

OUTCOMES = ("finished", "failed", "cancelled")


class Worker(QObject):
    """Base class: subclass and implement :meth:`work`; use :meth:`report` for progress."""

    progress = Signal(int, int)  # done, total (total 0 = unknown)
    message = Signal(str)
    finished = Signal(object)  # the value :meth:`work` returned
    failed = Signal(str)  # a one-line message for the user
    cancelled = Signal()
    _ended = Signal()  # private, after the outcome: quits the thread and deletes the worker

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
            self.finished.emit(result)
        finally:
            self._ended.emit()


class FunctionWorker(Worker):
    """Runs ``fn(*args, **kwargs)``, adding ``progress``, ``cancel`` and ``message`` when ``fn`` takes them."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn = fn
        self._args = args
        self._kwargs = kwargs
        offered = {"progress": self.report, "cancel": self.cancel_event, "message": self.message.emit}
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # a builtin without a signature: give it nothing extra
            params = {}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._extra = {k: v for k, v in offered.items() if (takes_any or k in params) and k not in kwargs}

    def work(self) -> Any:
        return self.fn(*self._args, **self._kwargs, **self._extra)


class _Relay(QObject):
    """Lives in the GUI thread and forwards one worker's signals to handlers until :meth:`detach`.

    Handlers connected through a QObject of the GUI thread run in the GUI thread (queued), never in the
    worker's; a detached relay drops what a replaced worker still had queued.
    """

    def __init__(self, worker: Worker, handlers: dict[str, Callable[..., Any]], parent: QObject | None) -> None:
        super().__init__(parent)  # a child of the owner: gone with it, so nothing reaches a deleted page
        self.active = True
        self.delivered = False  # the outcome has reached the GUI thread
        self.handlers = dict(handlers)
        for name in OUTCOMES:  # noted even without a handler, so the registry knows when to let go
            if name not in self.handlers:
                getattr(worker, name).connect(getattr(self, f"_on_{name}"))
        for name in self.handlers:
            getattr(worker, name).connect(self._slot(name))

    def _slot(self, name: str) -> Callable[..., None]:
        # A bound method of a QObject of the GUI thread for each signal: PySide queues those calls to it.
        method = getattr(self, f"_on_{name}", None)
        return method if method is not None else _Forward(self, name).on

    def _call(self, name: str, *args: Any) -> None:
        if name in OUTCOMES:
            self.delivered = True
        handler = self.handlers.get(name)
        if self.active and handler is not None:
            handler(*args)

    def _on_progress(self, done: int, total: int) -> None:
        self._call("progress", done, total)

    def _on_message(self, text: str) -> None:
        self._call("message", text)

    def _on_finished(self, value: Any) -> None:
        self._call("finished", value)

    def _on_failed(self, text: str) -> None:
        self._call("failed", text)

    def _on_cancelled(self) -> None:
        self._call("cancelled")


class _Forward(QObject):
    """Forwards one of a worker's own signals (e.g. ``image_done``) through its relay."""

    def __init__(self, relay: _Relay, name: str) -> None:
        super().__init__(relay)
        self.relay = relay
        self.name = name

    def on(self, *args: Any) -> None:
        self.relay._call(self.name, *args)


class WorkerHandle:
    """One started worker and its thread: ``cancel()``, ``wait()``, ``is_running()``, ``detach()``."""

    def __init__(self, worker: Worker, thread: QThread, name: str, owner: object | None) -> None:
        self.worker = worker
        self.thread = thread
        self.name = name
        self.owner = owner
        self.relay: _Relay | None = None
        self._ended = False

    def is_running(self) -> bool:
        if self._ended:
            return False
        try:
            running = self.thread.isRunning() or not self.thread.isFinished()
        except RuntimeError:  # the C++ thread object is gone
            running = False
        if not running:
            self._ended = True
        return running

    def cancel(self) -> None:
        try:
            self.worker.request_cancel()
        except RuntimeError:  # the worker was already deleted: it has finished
            pass

    def delivered(self) -> bool:
        """True when nothing of this worker is still on its way to the GUI thread's handlers."""
        if self.relay is None:
            return True
        try:
            return self.relay.delivered or not self.relay.active
        except RuntimeError:  # the relay went with its owner
            return True

    def detach(self) -> None:
        """Stop delivering this worker's signals to the handlers given to :func:`create_worker`."""
        if self.relay is not None:
            try:
                self.relay.active = False
            except RuntimeError:
                pass

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread has ended (or ``msecs`` passed); True when it ended."""
        if self._ended:
            return True
        try:
            ended = bool(self.thread.wait(msecs))
        except RuntimeError:
            ended = True
        self._ended = ended
        return ended


class WorkerRegistry:
    """Every started worker, until its thread has ended: the one place that knows what is running."""

    def __init__(self) -> None:
        self._handles: list[WorkerHandle] = []

    def _prune(self) -> None:
        # A handle (and its relay) is kept until its outcome has been delivered, not only until the
        # thread ended: the outcome may still be queued for the GUI thread.
        self._handles = [h for h in self._handles if h.is_running() or not h.delivered()]

    def add(self, handle: WorkerHandle) -> None:
        self._prune()
        self._handles.append(handle)

    def running(self, owner: object | None = None, name: str | None = None) -> list[WorkerHandle]:
        """The handles still running, of ``owner`` (any when None) and called ``name`` (any when None)."""
        self._prune()
        return [h for h in self._handles if h.is_running()
                and (owner is None or h.owner is owner) and (name is None or h.name == name)]

    def cancel(self, owner: object | None = None, name: str | None = None) -> None:
        """Ask the matching workers to stop (see :meth:`running`)."""
        for h in self.running(owner, name):
            h.cancel()

    def await_workers(self, msecs: int = 30000, owner: object | None = None, name: str | None = None) -> bool:
        """Block until the matching workers' threads have ended; True when all did within ``msecs`` each."""
        handles = self.running(owner, name)
        ended = all([h.wait(msecs) for h in handles])
        self._prune()
        return ended

    def shutdown(self, owner: object | None = None, msecs: int = 30000) -> bool:
        """Cancel, then wait for, the workers of ``owner`` (all when None)."""
        self.cancel(owner)
        return self.await_workers(msecs, owner)


#: The registry of every worker started in this process.
registry = WorkerRegistry()


def start_worker(worker: Worker, *, name: str | None = None, owner: object | None = None,
                 connect: dict[str, Callable[..., Any]] | None = None) -> WorkerHandle:
    """Move ``worker`` to a new QThread, connect ``connect``'s handlers, register and start it.

    ``connect`` maps signal names (``"finished"``, ``"failed"``, ``"cancelled"``, ``"progress"``,
    ``"message"``) to callables run in the GUI thread; :meth:`WorkerHandle.detach` silences them.
    ``owner`` (a page, a dialog) lets :meth:`WorkerRegistry.shutdown` stop only that owner's work.
    """
    name = name or type(worker).__name__
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    handle = WorkerHandle(worker, thread, name, owner)
    if connect:
        handle.relay = _Relay(worker, connect, owner if isinstance(owner, QObject) else None)
    thread.started.connect(worker.run)
    # Direct: QThread.quit is thread-safe, and a queued call would wait for the GUI thread's event
    # loop, so a wait() from the GUI thread (e.g. on close) could never return.
    worker._ended.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    worker._ended.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    registry.add(handle)
    thread.start()
    return handle


def create_worker(fn: Callable[..., Any], *args: Any, _name: str | None = None, _owner: object | None = None,
                  _connect: dict[str, Callable[..., Any]] | None = None, **kwargs: Any) -> WorkerHandle:
    """Run ``fn(*args, **kwargs)`` on a new thread and return its handle (napari's ``create_worker``).

    ``fn`` receives ``progress(done, total)``, ``cancel`` (a ``threading.Event``) and ``message(text)``
    when its signature names them. See :func:`start_worker` for ``_name``, ``_owner`` and ``_connect``.
    """
    worker = FunctionWorker(fn, *args, **kwargs)
    return start_worker(worker, name=_name or getattr(fn, "__name__", None), owner=_owner, connect=_connect)
