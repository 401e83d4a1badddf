"""Run :func:`tlstudio.core.train.trainer.train` in a child process and relay its events.

The desktop app trains this way so that TensorFlow's work (graph tracing, the input pipeline's
Python decode threads, feature caching) never competes with the window's thread for Python's
global interpreter lock: in one process the window could stall for hundreds of milliseconds at a
time, with the child process it keeps its 10 ms timer ticks on time
(``benchmarks/gui_responsiveness.py``).

The child is started with the ``spawn`` method (never ``fork``: the parent may already hold
TensorFlow's and Qt's threads), so it imports only the core. Events, the result and errors come
back through a queue; cancelling sets a process-shared flag that ``train()`` checks after every
batch, exactly as in-process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled, Interrupted, TlstudioError
from tlstudio.core.events import STOP_QUIT, STOP_USER, Event, stop_reason

#: Added to the child's nice value, so the window keeps the CPU it needs while training runs.
CHILD_NICE_INCREMENT = 5
#: How long the relay waits for the next message before checking cancel and the child's health.
POLL_SECONDS = 0.05


class _SharedFlag:
    """A set-once flag in shared memory that needs no lock.

    A ``multiprocessing.Event`` keeps a lock inside: a child killed while it checks the event
    (which it does after every batch) leaves that lock held, and the parent's next ``set()`` then
    waits forever. A byte that is only ever written 0 -> 1 needs no lock.
    """

    def __init__(self, ctx: Any) -> None:
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True


class _ChildStop:
    """The child's cancel flag: ``is_set()`` of the shared event, and its ``reason`` from a second one."""

    def __init__(self, cancel: Any, quit_flag: Any) -> None:
        self._cancel, self._quit = cancel, quit_flag

    def is_set(self) -> bool:
        return bool(self._cancel.is_set())

    def set(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self._cancel.wait(timeout))

    @property
    def reason(self) -> str:
        return STOP_QUIT if self._quit.is_set() else STOP_USER


def _child_main(config: TrainConfig | None, run_dir: str, scan: Any, resume: bool, out: Any, cancel: Any,
                context: Callable[[], Any] | None = None, quit_flag: Any = None) -> None:
    """Entry point of the child process: train and send back events, then one final message."""
    if CHILD_NICE_INCREMENT > 0 and hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICE_INCREMENT)
        except OSError:
            pass
    # TensorFlow's native start-up lines (absl, oneDNN, CUDA) would reach the terminal the app was
    # started from; errors come back through the queue instead.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
    try:
        from tlstudio.core.train.trainer import train

        if quit_flag is not None:
            cancel = _ChildStop(cancel, quit_flag)
        # ``context`` (e.g. a Ray cluster's, given by the engine) yields extra keyword arguments for train().
        with context() if context is not None else contextlib.nullcontext({}) as extra:
            result = train(config, run_dir, emit=lambda event: out.put(("event", event)), cancel=cancel,
                           scan=scan, resume=resume, **extra)
    except Interrupted as exc:
        out.put(("interrupted", str(exc)))
    except Cancelled as exc:
        out.put(("cancelled", str(exc)))
    except TlstudioError as exc:
        out.put(("error", str(exc)))
    except MemoryError:
        out.put(("error", "Ran out of memory. Try a smaller batch size or a smaller base model."))
    except BaseException as exc:  # report anything, so the parent never waits for a dead child
        out.put(("crash", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    else:
        out.put(("result", result))
    finally:
        out.close()
        out.join_thread()  # make sure the last message is flushed before the process exits


def train_in_subprocess(
    config: TrainConfig | None,
    run_dir: str | Path,
    *,
    emit: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    scan: Any = None,
    resume: bool = False,
    context: Callable[[], Any] | None = None,
) -> Any:
    """Same contract as :func:`tlstudio.core.train.trainer.train`, with the work done in a child process.

    Parameters
    ----------
    config, run_dir, scan, resume
        Passed to ``train()`` in the child (they must pickle: dataclasses and paths do).
    emit : callable, optional
        Receives every event, in order, in the calling thread.
    cancel : threading.Event, optional
        Checked while relaying; when set, the child stops within one batch (with the reason of a
        :class:`~tlstudio.core.events.StopRequest`: "quit" leaves the run "interrupted").
    context : callable, optional
        A picklable factory of a context manager the child trains inside; it yields extra keyword
        arguments for ``train()`` (how the engine hands a run to a Ray cluster without core knowing Ray).

    Returns
    -------
    TrainResult
        As ``train()`` returns it.

    Raises
    ------
    Cancelled
        When the run was cancelled before anything worth keeping was trained
        (:class:`~tlstudio.core.errors.Interrupted` when stopped to quit).
    TlstudioError
        With ``train()``'s one-line message, or when the child process died (e.g. killed, out of memory).
    """
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child_cancel = _SharedFlag(ctx)
    child_quit = _SharedFlag(ctx)  # set before child_cancel when the cancel's reason is "quit"
    process = ctx.Process(
        target=_child_main,
        args=(config, str(run_dir), scan, resume, out, child_cancel, context, child_quit),
        name="tlstudio-train",
        daemon=True,
    )
    process.start()
    final: tuple | None = None
    try:
        while final is None:
            if cancel is not None and cancel.is_set():
                if stop_reason(cancel) == STOP_QUIT and not child_quit.is_set():
                    child_quit.set()
                if not child_cancel.is_set():
                    child_cancel.set()
            try:
                message = out.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if not process.is_alive():
                    # The child may have put its last message just before exiting.
                    try:
                        message = out.get(timeout=1.0)
                    except queue_module.Empty:
                        raise TlstudioError(
                            f"The training process stopped unexpectedly (exit code {process.exitcode}); "
                            "it may have run out of memory."
                        ) from None
                else:
                    continue
            kind = message[0]
            if kind == "event":
                if emit is not None:
                    emit(message[1])
            else:
                final = message
    finally:
        if final is None:  # the relay itself failed or was interrupted: do not leave the child training
            child_cancel.set()
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        out.close()
    kind, payload = final
    if kind == "result":
        return payload
    if kind == "interrupted":
        raise Interrupted(payload or "Interrupted.")
    if kind == "cancelled":
        raise Cancelled(payload or "Cancelled.")
    if kind == "error":
        raise TlstudioError(payload)
    first_line = str(payload).splitlines()[0] if payload else "unknown error"
    raise TlstudioError(f"Unexpected error in training: {first_line}")
