"""The window's side of the engine: start it, send requests, watch it, restart it when it dies.

This module imports neither TensorFlow nor Qt: the window's workers call it from their threads.
One supervisor thread per client starts the engine process (``multiprocessing`` ``spawn``),
receives every message from it, hands progress events to each call's ``on_event`` (called in
that thread: a worker turns them into Qt signals) and watches the engine's health:

- the process ended (killed, segfault, out of memory), or
- it sent nothing, not even a heartbeat, for ``deadline`` seconds (hung or stopped):

in both cases the engine's whole process group is killed, every call in progress fails with
:class:`EngineDied` (which names the request, so an interrupted training can be resumed), and a
fresh engine is started. Calls submitted meanwhile wait for it. :meth:`EngineClient.stop` shuts the
engine down and leaves no process behind.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing
import multiprocessing.util
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from tlstudio.core.errors import Cancelled, Interrupted, TlstudioError
from tlstudio.core.events import STOP_USER, stop_reason
from tlstudio.engine import protocol as p
from tlstudio.engine.processes import end_group

log = logging.getLogger(__name__)

STATE_STOPPED = "stopped"
STATE_STARTING = "starting"  # the process is starting and TensorFlow warming up
STATE_READY = "ready"
STATE_BUSY = "busy"  # at least one request in progress
STATE_RESTARTING = "restarting"  # the engine died; a fresh one is starting
STATE_FAILED = "failed"  # it died again and again: not restarted any more

#: Seconds without any message (heartbeats come every half second) after which the engine is
#: taken for hung. Generous: loading TensorFlow's libraries can hold the engine's GIL for seconds
#: on a busy machine.
DEFAULT_DEADLINE = 30.0
#: More deaths than this within RESTART_WINDOW seconds and the client gives up (state "failed").
MAX_RESTARTS = 3
RESTART_WINDOW = 120.0
#: How long stop() lets the engine finish (a cancelled training writes its run folder) before killing it.
STOP_TIMEOUT = 15.0
POLL_SECONDS = 0.1


class EngineError(TlstudioError):
    """A request failed inside the engine; the message is the engine's one line for the user."""

    def __init__(self, message: str, error_type: str = "TlstudioError", details: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.details = details


class EngineDied(TlstudioError):
    """The engine stopped (or stopped answering) while the request was in progress.

    ``request`` is the request that was interrupted: a ``Train`` can be resumed from its last
    checkpoint with ``Train(None, request.run_dir, resume=True)``.
    """

    def __init__(self, message: str, request: p.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class PendingCall:
    """One request in flight; :meth:`result` waits for its answer."""

    def __init__(self, client: EngineClient, call_id: int, request: p.Request,
                 on_event: Callable[[Any], None] | None) -> None:
        self.call_id = call_id
        self.request = request
        self.on_event = on_event
        self.sent_to: int | None = None  # the engine generation it was sent to
        self._client = client
        self._finished = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[PendingCall], None]] = []
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def cancel(self, reason: str = STOP_USER) -> None:
        """Ask the engine to stop this request; the answer is then :class:`Cancelled` (a training
        answers with its cancelled run's result instead; with ``reason`` "quit" it stays "interrupted"
        and the answer is :class:`~tlstudio.core.errors.Interrupted`)."""
        self._client._cancel(self, reason)

    def result(self, timeout: float | None = None) -> Any:
        """The request's value; raises EngineError, EngineDied, Cancelled, or TimeoutError."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"no answer to {type(self.request).__name__} within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def add_done_callback(self, fn: Callable[[PendingCall], None]) -> None:
        """Call ``fn(call)`` once the answer is in (at once when it already is)."""
        with self._lock:
            if not self._finished.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    def _finish(self, value: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._finished.is_set():
                return
            self._value, self._error = value, error
            self._finished.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # a caller's bug must not stop the supervisor
                log.exception("engine call callback failed")

    def _event(self, event: Any) -> None:
        if self.on_event is not None and not self._finished.is_set():
            try:
                self.on_event(event)
            except Exception:
                log.exception("engine event handler failed")


def _stop_at_exit(ref: weakref.ref) -> None:
    client = ref()
    if client is not None:
        client.stop(timeout=5.0)


class EngineClient:
    """Starts and talks to one engine process at a time.

    Parameters
    ----------
    warm_up : bool
        Load TensorFlow in the engine as soon as it starts (state ``starting`` until done).
    deadline : float
        Seconds of silence after which the engine is taken for hung, killed and restarted.
    restart : bool
        Start a fresh engine after a death (up to :data:`MAX_RESTARTS` in :data:`RESTART_WINDOW`).
    on_state : callable, optional
        ``on_state(state, detail)`` on every change of :attr:`state`; ``detail`` is a sentence
        for the user when the engine died. Called from the client's threads.
    progress_interval : float
        Seconds between two progress events of one kind the engine forwards.
    """

    def __init__(self, *, warm_up: bool = True, deadline: float = DEFAULT_DEADLINE, restart: bool = True,
                 on_state: Callable[[str, str], None] | None = None, progress_interval: float = 0.05) -> None:
        self.warm_up = warm_up
        self.deadline = deadline
        self.restart = restart
        self.on_state = on_state
        self.options = p.EngineOptions(progress_interval=progress_interval,
                                       env={"TF_CPP_MIN_LOG_LEVEL": "2"})
        self.state = STATE_STOPPED
        self.detail = ""
        self.generation = 0
        self.pid: int | None = None
        self.tensorflow_loaded = False
        self._ids = itertools.count(1)
        self._calls: dict[int, PendingCall] = {}
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._conn: Any = None
        self._process: Any = None
        self._ready = threading.Event()
        self._connected = False  # an engine said Hello: calls go straight to it
        self._stopping = threading.Event()
        self._deaths: list[float] = []
        self._supervisor: threading.Thread | None = None
        self._warm_call: PendingCall | None = None
        # Stop the engine when this process exits without stop(): as a multiprocessing finalizer too,
        # because multiprocessing's own exit handler waits for every non-daemonic child, the engine
        # included, and runs these finalizers before that wait (plain atexit may come too late).
        atexit.register(_stop_at_exit, weakref.ref(self))
        multiprocessing.util.Finalize(None, _stop_at_exit, args=(weakref.ref(self),), exitpriority=100)

    # --- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine in the background (returns at once; see :meth:`wait_ready`)."""
        with self._lock:
            if self._supervisor is not None and self._supervisor.is_alive():
                return
            self._stopping.clear()
            self._set_state(STATE_STARTING)  # at once, so the caller can show it
            self._supervisor = threading.Thread(target=self._supervise, name="engine-client", daemon=True)
            self._supervisor.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until an engine is up (and warmed up); False on timeout."""
        return self._ready.wait(timeout)

    def submit(self, request: p.Request, on_event: Callable[[Any], None] | None = None) -> PendingCall:
        """Send ``request`` (or queue it until the engine is up); returns at once."""
        if self._stopping.is_set() or self.state == STATE_FAILED:
            raise EngineDied(self.detail or "The engine is not running.", request)
        call = PendingCall(self, next(self._ids), request, on_event)
        with self._lock:
            self._calls[call.call_id] = call
            generation = self.generation if self._connected else None
        if generation is not None:
            self._send_call(call, generation)
        self._update_state()
        return call

    def call(self, request: p.Request, *, on_event: Callable[[Any], None] | None = None,
             cancel: threading.Event | None = None, timeout: float | None = None) -> Any:
        """Send ``request`` and wait for its value; setting ``cancel`` cancels it.

        Raises
        ------
        EngineError, EngineDied, Cancelled, TimeoutError
        """
        pending = self.submit(request, on_event)
        end = None if timeout is None else time.monotonic() + timeout
        sent_reason = None  # sent again when the reason changes (Cancel pressed, then the window closed)
        while not pending.wait(POLL_SECONDS):
            if cancel is not None and cancel.is_set() and stop_reason(cancel) != sent_reason:
                sent_reason = stop_reason(cancel)
                pending.cancel(sent_reason)
            if end is not None and time.monotonic() > end:
                pending.cancel()
                raise TimeoutError(f"no answer to {type(request).__name__} within {timeout} s")
        return pending.result()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the engine down (cancelling what runs) and wait for it and its children to end."""
        self._stopping.set()
        self._send(p.Shutdown())
        process = self._process
        if process is not None:
            process.join(timeout)
        self._kill()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)
        self._fail_all(lambda call: Cancelled("The engine was stopped."), only_sent=False)
        self._ready.clear()
        self._set_state(STATE_STOPPED, "")

    def kill_for_test(self) -> None:  # pragma: no cover - a convenience for manual checks
        if self.pid:
            os.kill(self.pid, 9)

    # --- sending --------------------------------------------------------------------------------

    def _send(self, message: Any) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            with self._send_lock:
                conn.send(message)
            return True
        except (OSError, ValueError, EOFError):  # the engine is gone; the supervisor will notice
            return False

    def _send_call(self, call: PendingCall, generation: int) -> None:
        with self._lock:
            if call.sent_to is not None or call.done():
                return
            call.sent_to = generation
        self._send(p.Call(call.call_id, call.request))

    def _cancel(self, call: PendingCall, reason: str = STOP_USER) -> None:
        if call.done():
            return
        if call.sent_to is None:  # still waiting for an engine: cancel here
            self._finish(call, error=Cancelled())
            return
        self._send(p.CancelCall(call.call_id, reason))

    def _finish(self, call: PendingCall, value: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            self._calls.pop(call.call_id, None)
        call._finish(value, error)
        self._update_state()

    def _fail_all(self, make_error: Callable[[PendingCall], BaseException], only_sent: bool = True) -> None:
        with self._lock:
            calls = [c for c in self._calls.values() if c.sent_to is not None or not only_sent]
        for call in calls:
            self._finish(call, error=make_error(call))

    # --- state ----------------------------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        with self._lock:
            changed = (state, detail) != (self.state, self.detail)
            self.state, self.detail = state, detail
        if changed and self.on_state is not None:
            try:
                self.on_state(state, detail)
            except Exception:
                log.exception("engine state handler failed")

    def _update_state(self) -> None:
        with self._lock:
            if self.state not in (STATE_READY, STATE_BUSY):
                return
            busy = any(c is not self._warm_call for c in self._calls.values())
        self._set_state(STATE_BUSY if busy else STATE_READY)

    # --- the supervisor thread ------------------------------------------------------------------

    def _spawn(self) -> None:
        from tlstudio.engine.server import serve

        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        # Not daemonic: a daemonic process may not start the training child.
        process = ctx.Process(target=serve, args=(child_conn, self.options), name="tlstudio-engine")
        process.start()
        child_conn.close()
        with self._lock:
            self._conn, self._process = parent_conn, process
            self.pid = process.pid
            self.generation += 1

    def _supervise(self) -> None:
        first = True
        while not self._stopping.is_set():
            if not first and not self.restart:
                self._set_state(STATE_FAILED, self.detail)
                break
            self._set_state(STATE_STARTING if first else STATE_RESTARTING, "" if first else self.detail)
            first = False
            try:
                self._spawn()
            except Exception as exc:  # e.g. no process can be started, or an unguarded main module
                self._set_state(STATE_FAILED, f"The engine could not be started: {type(exc).__name__}: {exc}")
                self._fail_all(lambda call: EngineDied(self.detail, call.request), only_sent=False)
                break
            reason = self._serve_one()
            with self._lock:
                self._connected = False
            self._ready.clear()
            if self._stopping.is_set():
                break
            self._kill()
            log.warning("engine %s: %s", self.pid, reason)
            self._fail_all(lambda call, r=reason: EngineDied(self._death_message(r, call.request), call.request))
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
            self.detail = f"{reason} A fresh engine is starting; your project and finished runs are kept."
            if len(self._deaths) > MAX_RESTARTS:
                self.detail = f"{reason} It stopped {len(self._deaths)} times in a row, so it was not restarted."
                self._fail_all(lambda call: EngineDied(self.detail, call.request), only_sent=False)
                self._set_state(STATE_FAILED, self.detail)
                break

    @staticmethod
    def _death_message(reason: str, request: p.Request) -> str:
        if isinstance(request, p.Train):
            return f"{reason} The training was interrupted; it can be resumed from its last checkpoint."
        return reason

    def _serve_one(self) -> str:
        """Receive from one engine until it dies or hangs (returns why) or the client stops."""
        conn, process = self._conn, self._process
        last_seen = time.monotonic()
        while not self._stopping.is_set():
            try:
                has_data = conn.poll(POLL_SECONDS)
                message = conn.recv() if has_data else None
            except (EOFError, OSError):
                process.join(2.0)
                return self._exit_reason(process)
            if message is not None:
                last_seen = time.monotonic()
                self._dispatch(message)
            elif not process.is_alive():
                return self._exit_reason(process)
            elif time.monotonic() - last_seen > self.deadline:
                return f"The engine did not answer for {self.deadline:.0f} seconds and was stopped."
        return "stopped"

    @staticmethod
    def _exit_reason(process: Any) -> str:
        code = process.exitcode
        if code is not None and code < 0:
            names = {-9: "it was killed or ran out of memory", -11: "it crashed (segmentation fault)",
                     -6: "it aborted", -15: "it was terminated"}
            why = names.get(code, f"signal {-code}")
            return f"The engine process stopped unexpectedly ({why})."
        return f"The engine process stopped unexpectedly (exit code {code})."

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, p.Heartbeat):
            self.tensorflow_loaded = message.tensorflow_loaded
            return
        if isinstance(message, p.Hello):
            self._on_hello(message)
            return
        call = self._calls.get(getattr(message, "call_id", -1))
        if call is None:
            return
        if isinstance(message, p.Progress):
            call._event(message.event)
        elif isinstance(message, p.Done):
            self._finish(call, value=message.value)
        elif isinstance(message, p.Failed):
            self._finish(call, error=EngineError(message.message, message.error_type, message.details))
        elif isinstance(message, p.CallCancelled):
            self._finish(call, error=(Interrupted if message.interrupted else Cancelled)(message.message))

    def _on_hello(self, message: p.Hello) -> None:
        generation = self.generation
        if self.warm_up:
            warm = PendingCall(self, next(self._ids), p.WarmUp(), None)
            with self._lock:
                self._warm_call = warm
                self._calls[warm.call_id] = warm
            warm.add_done_callback(self._on_warm)
            self._send_call(warm, generation)
        with self._lock:
            self._connected = True
            waiting = sorted((c for c in self._calls.values() if c.sent_to is None), key=lambda c: c.call_id)
        for call in waiting:
            self._send_call(call, generation)
        if not self.warm_up:
            self._became_ready()

    def _on_warm(self, call: PendingCall) -> None:
        if call._error is None:
            self.tensorflow_loaded = True
            self._became_ready()
        elif not isinstance(call._error, EngineDied | Cancelled):
            log.warning("engine warm-up failed: %s", call._error)
            self._became_ready()  # requests will report the real problem

    def _became_ready(self) -> None:
        self._ready.set()
        self._set_state(STATE_READY, "")
        self._update_state()  # busy when calls are already waiting

    def _kill(self) -> None:
        """End the engine and every process it started; reap it."""
        process = self._process
        if process is None:
            return
        pid = process.pid
        if pid and process.is_alive():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if pid:
            end_group(pid, wait=5.0)  # its training child, which shares its process group
        process.join(5.0)
        try:
            self._conn.close()
        except OSError:
            pass
