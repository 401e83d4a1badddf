"""The window's engine: one process-wide :class:`~tlstudio.engine.client.EngineClient`, and the calls
workers make to it, so that the window's process never imports TensorFlow.

The engine process starts when the window asks (:func:`start_engine`, from the GUI thread: the process
itself is spawned on the client's own thread) and warms TensorFlow up there. Workers call
:func:`request` from their QThreads: it blocks that thread (never the GUI's) until the engine answers,
turning the engine's :class:`~tlstudio.engine.protocol.StepProgress` into the worker's ``progress`` and
``message`` callbacks, and a set ``cancel`` event into a cancel message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlstudio.engine import protocol as p
from tlstudio.engine.client import STATE_FAILED, STATE_STOPPED, EngineClient

_lock = threading.Lock()
_client: EngineClient | None = None
_listeners: list[Callable[[str, str], None]] = []
_status: EngineStatus | None = None


class EngineStatus(QObject):
    """Carries the engine's state changes (``state``, ``detail``) to the GUI thread as a Qt signal.

    Create it in the GUI thread; the client calls :meth:`post` from its own thread, and the signal is
    delivered to GUI-thread receivers through their event loop.
    """

    state_changed = Signal(str, str)

    def post(self, state: str, detail: str) -> None:
        self.state_changed.emit(state, detail)


def engine_status() -> EngineStatus:
    """The one :class:`EngineStatus` of this process, listening to every engine client it starts.

    Create it first from the GUI thread. It has no parent and lives as long as the process, so the client's
    thread never emits on a deleted object; windows connect to ``state_changed`` and Qt disconnects them
    when they are destroyed.
    """
    global _status
    with _lock:
        if _status is None:
            _status = EngineStatus()
            _listeners.append(_status.post)
        return _status


def _broadcast(state: str, detail: str) -> None:
    for listener in list(_listeners):
        try:
            listener(state, detail)
        except RuntimeError:  # a listener whose Qt object is gone: the client's thread carries on
            remove_state_listener(listener)


def add_state_listener(listener: Callable[[str, str], None]) -> None:
    """Call ``listener(state, detail)`` on every state change of the engine (from the client's thread)."""
    _listeners.append(listener)


def remove_state_listener(listener: Callable[[str, str], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def engine() -> EngineClient:
    """The engine client of this process; started (in the background) on first use or after a stop."""
    global _client
    with _lock:
        if _client is None or _client.state in (STATE_STOPPED, STATE_FAILED):
            _client = EngineClient(warm_up=True, on_state=_broadcast)
            _client.start()
        return _client


def start_engine() -> EngineClient:
    """Start the engine now (returns at once; the state goes ``starting`` then ``ready``)."""
    return engine()


def current_engine() -> EngineClient | None:
    """The engine client if one was made, without starting one."""
    return _client


def stop_engine(timeout: float = 15.0) -> None:
    """Stop the engine and everything it started (a training is cancelled first)."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.stop(timeout=timeout)


def request(req: p.Request, *, progress: Callable[[int, int], None] | None = None,
            cancel: threading.Event | None = None, message: Callable[[str], None] | None = None,
            on_event: Callable[[Any], None] | None = None) -> Any:
    """Send ``req`` to the engine and wait for its answer (call it from a worker's thread).

    Raises
    ------
    TlstudioError
        The engine's one-line message (``EngineError``), or ``EngineDied`` when the engine stopped meanwhile.
    Cancelled
        When ``cancel`` was set and the engine stopped the request.
    """
    return engine().call(req, on_event=forwarder(progress, message, on_event), cancel=cancel)


def forwarder(progress: Callable[[int, int], None] | None, message: Callable[[str], None] | None,
              on_event: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """The ``on_event`` of a request: StepProgress to ``progress`` and ``message``, the rest to ``on_event``."""
    said: list[str] = []

    def forward(event: Any) -> None:
        if isinstance(event, p.StepProgress):
            if progress is not None:
                progress(event.done, event.total)
            if message is not None and event.text and (not said or said[-1] != event.text):
                said.append(event.text)
                message(event.text)
        elif on_event is not None:
            on_event(event)

    return forward
