"""The engine process: owns TensorFlow, answers the window's requests, one thread per lane.

:func:`serve` is the process's entry point (started by :class:`tlstudio.engine.client.EngineClient`
with ``multiprocessing``'s ``spawn``). The main thread reads messages from the pipe; each lane
(see :mod:`tlstudio.engine.protocol`) is a thread that runs its requests one after the other; a
heartbeat thread tells the client the engine is alive.

**Training runs in a child process of the engine** (core's ``train_in_subprocess``), driven from
the train lane's thread, rather than in a thread of the engine:

- a training keeps Python busy (the input pipeline decodes images in Python threads): in the
  engine's own process it would hold the GIL for hundreds of milliseconds at a time, delaying
  predictions, Grad-CAM and even the heartbeat, which the client would take for a hung engine;
- the trainer changes Keras's process-wide state (the mixed-precision policy), which must not
  leak into the models the engine keeps loaded for prediction;
- an out-of-memory or crash inside a training takes down only its child: the engine, its loaded
  models and the window carry on, and the run folder's checkpoints allow a resume;
- a training that ignores its cancel flag can still be stopped, by ending its process.

The child costs one TensorFlow import (a few seconds) per run, which training paid before too.

The engine makes itself a process-group leader, so that the client can end it *and* its training
child with one signal, and so that nothing is left behind when the window's process dies: the
engine notices the closed pipe and ends its group.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from tlstudio.core.errors import Cancelled, Interrupted, TlstudioError
from tlstudio.core.events import STOP_QUIT, StopRequest
from tlstudio.engine import protocol as p
from tlstudio.engine.handlers import HANDLERS, CallContext, ModelCache
from tlstudio.engine.ratelimit import ProgressGate

#: After a cancel, how long a request may take to stop before the client is told it was cancelled
#: anyway (its result, if it ever comes, is dropped). Training is exempt: it always stops within
#: a batch and answers with the cancelled run's result.
CANCEL_GRACE_SECONDS = 1.0
#: On shutdown, how long lanes may take to finish (a training writes its run folder) before the
#: engine ends its whole process group.
SHUTDOWN_GRACE_SECONDS = 10.0


def train(request: p.Train, ctx: CallContext) -> Any:
    """Run a training in a child process and relay its events (see the module's docstring)."""
    from tlstudio.core.train.launcher import train_in_subprocess

    context = None
    if request.cluster:  # the optional Ray backend; core only receives a context to run inside
        import functools

        from tlstudio.cluster.launch import cluster_training

        context = functools.partial(cluster_training, request.cluster)
    return train_in_subprocess(request.config, request.run_dir, emit=ctx.emit, cancel=ctx.cancel,
                               scan=request.scan, resume=request.resume, context=context)


def _evaluate(request: p.Evaluate, ctx: CallContext) -> Any:
    from tlstudio.engine.evaluation import evaluate

    return evaluate(request, ctx)


def _ping(request: p.Ping, ctx: CallContext) -> p.EngineInfo:
    return p.EngineInfo(os.getpid(), "tensorflow" in sys.modules)


ALL_HANDLERS = {**HANDLERS, p.Train: train, p.Evaluate: _evaluate, p.Ping: _ping}


@dataclass
class _Running:
    call_id: int
    request: p.Request
    cancel: StopRequest = field(default_factory=StopRequest)  # with the reason the client gave
    answered: bool = False  # the final reply went out (possibly early, after a cancel)
    started: bool = False


class Engine:
    """The state of one engine process (constructed and run by :func:`serve`)."""

    def __init__(self, conn: Any, options: p.EngineOptions) -> None:
        self.conn = conn
        self.options = options
        self.models = ModelCache()
        self._send_lock = threading.Lock()
        self._calls: dict[int, _Running] = {}
        self._calls_lock = threading.Lock()
        self._gates: dict[int, ProgressGate] = {}
        self._queues: dict[str, queue.Queue[_Running | None]] = {lane: queue.Queue() for lane in p.LANES}
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._lane_loop, args=(lane,), name=f"engine-{lane}", daemon=True)
            for lane in p.LANES
        ]
        self._threads.append(threading.Thread(target=self._heartbeat_loop, name="engine-heartbeat", daemon=True))

    # --- sending ------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        try:
            with self._send_lock:
                self.conn.send(message)
        except (OSError, EOFError, ValueError):  # the client is gone: nothing left to work for
            self._stopping.set()

    def _answer(self, running: _Running, reply: Any) -> None:
        gate = self._gates.pop(running.call_id, None)
        if gate is not None and not isinstance(reply, p.CallCancelled):
            gate.flush()  # the held-back progress goes out before the answer, never after it
        with self._calls_lock:
            if running.answered:
                return
            running.answered = True
        self.send(reply)

    # --- the loops ----------------------------------------------------------------------------

    def run(self) -> None:
        self.send(p.Hello(os.getpid()))
        for thread in self._threads:
            thread.start()
        while not self._stopping.is_set():
            try:
                if not self.conn.poll(0.2):
                    continue
                message = self.conn.recv()
            except (EOFError, OSError):  # the window's process closed the pipe or died
                break
            if isinstance(message, p.Call):
                self._accept(message)
            elif isinstance(message, p.CancelCall):
                self._cancel(message.call_id, message.reason)
            elif isinstance(message, p.Shutdown):
                break
        self.shutdown()

    def _accept(self, call: p.Call) -> None:
        running = _Running(call.call_id, call.request)
        lane = type(call.request).lane
        if isinstance(call.request, p.Ping):  # answered at once, even while every lane is busy
            self._answer(running, p.Done(call.call_id, _ping(call.request, None)))  # type: ignore[arg-type]
            return
        if lane == p.LANE_TRAIN and self._train_busy():
            self._answer(running, p.Failed(call.call_id, "A training is already running; wait for it or stop it first."))
            return
        with self._calls_lock:
            self._calls[call.call_id] = running
        self._queues[lane].put(running)

    def _train_busy(self) -> bool:
        with self._calls_lock:
            return any(type(r.request).lane == p.LANE_TRAIN and not r.answered for r in self._calls.values())

    def _cancel(self, call_id: int, reason: str = "user") -> None:
        with self._calls_lock:
            running = self._calls.get(call_id)
        if running is None:
            return
        running.cancel.stop(reason)
        if type(running.request).lane == p.LANE_TRAIN and running.started:
            return  # the training stops within a batch and answers with its result
        if not running.started:
            self._answer(running, p.CallCancelled(call_id))
            return
        timer = threading.Timer(CANCEL_GRACE_SECONDS, self._answer, (running, p.CallCancelled(call_id)))
        timer.daemon = True
        timer.start()

    def _lane_loop(self, lane: str) -> None:
        while True:
            running = self._queues[lane].get()
            if running is None:
                return
            if running.cancel.is_set() or self._stopping.is_set():
                self._answer(running, p.CallCancelled(running.call_id))
                self._forget(running)
                continue
            running.started = True
            self._execute(running)
            self._forget(running)

    def _forget(self, running: _Running) -> None:
        with self._calls_lock:
            self._calls.pop(running.call_id, None)

    def _execute(self, running: _Running) -> None:
        call_id = running.call_id
        gate = ProgressGate(lambda event: self._progress(running, event), self.options.progress_interval)
        self._gates[call_id] = gate
        ctx = CallContext(emit=gate, cancel=running.cancel, models=self.models)
        handler = ALL_HANDLERS.get(type(running.request))
        try:
            if handler is None:
                raise TlstudioError(f"the engine does not know the request {type(running.request).__name__}")
            value = handler(running.request, ctx)
        except Cancelled as exc:
            self._answer(running, p.CallCancelled(call_id, str(exc) or "Cancelled.", isinstance(exc, Interrupted)))
        except TlstudioError as exc:
            self._answer(running, p.Failed(call_id, str(exc), type(exc).__name__))
        except MemoryError:
            self._answer(running, p.Failed(call_id, "Ran out of memory. Try a smaller batch size or model.", "MemoryError"))
        except Exception as exc:  # a bug or an unforeseen input: report it, keep serving
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self._answer(running, p.Failed(call_id, f"Unexpected error: {type(exc).__name__}: {first}",
                                           type(exc).__name__, traceback.format_exc()))
        else:
            if running.cancel.is_set() and type(running.request).lane != p.LANE_TRAIN:
                self._answer(running, p.CallCancelled(call_id))
            else:
                self._answer(running, p.Done(call_id, value))

    def _progress(self, running: _Running, event: Any) -> None:
        if not running.answered:
            self.send(p.Progress(running.call_id, event))

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.options.heartbeat_seconds):
            for gate in list(self._gates.values()):
                gate.flush_stale()
            with self._calls_lock:
                running = sum(1 for r in self._calls.values() if r.started and not r.answered)
            self.send(p.Heartbeat(running, "tensorflow" in sys.modules))

    def shutdown(self) -> None:
        """Cancel everything, give the lanes a moment to finish, then end the process group."""
        self._stopping.set()
        with self._calls_lock:
            calls = list(self._calls.values())
        for running in calls:  # the window is gone or closing: a training stays "interrupted", to be resumed
            running.cancel.stop(STOP_QUIT)
        for q in self._queues.values():
            q.put(None)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.conn.close()
        except OSError:
            pass
        end_process_group()


def end_process_group() -> None:
    """End every process this one started (it leads its own group, see :func:`serve`), then itself."""
    from tlstudio.engine.processes import end_group

    sys.stdout.flush()
    sys.stderr.flush()
    if os.getpgrp() == os.getpid():
        end_group(os.getpid(), spare=os.getpid())
    os._exit(0)


def serve(conn: Any, options: p.EngineOptions | None = None) -> None:
    """Entry point of the engine process: serve requests on ``conn`` until told to stop or orphaned."""
    options = options or p.EngineOptions()
    for key, value in options.env.items():
        os.environ.setdefault(key, value)
    if hasattr(os, "setsid"):
        try:
            os.setsid()  # lead a new process group: one signal ends the engine and its children
        except OSError:  # already a group leader
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the window decides when the engine stops
    Engine(conn, options).run()
