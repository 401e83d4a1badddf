"""Plain, immutable progress events emitted by long core work (training, caching, evaluation).

Core functions take ``emit: Callable[[Event], None]``; the CLI prints these, the GUI's workers
forward them as Qt signals. They carry only numbers, strings and tuples, so they cross threads
safely.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Phase names, in the order a run goes through them.
PHASE_CACHING = "caching"  # running the frozen base once per image to fill the embedding cache
PHASE_HEAD = "head"  # training the classifier head (on cached features or end to end)
PHASE_FINE_TUNE = "fine_tune"  # training the unfrozen base layers and the head at a lower rate
PHASE_EVALUATING = "evaluating"  # final evaluation on the validation / test splits
PHASES = (PHASE_CACHING, PHASE_HEAD, PHASE_FINE_TUNE, PHASE_EVALUATING)

#: Why long work is asked to stop (the ``reason`` of a :class:`StopRequest`).
STOP_USER = "user"  # the person pressed Cancel: a run ends "cancelled", keeping and evaluating its best weights
STOP_QUIT = "quit"  # the app is closing: a run stops at once and stays "interrupted", to be resumed later


class StopRequest(threading.Event):
    """A cancel flag (a ``threading.Event``: core checks ``is_set()``) that also says why it was set.

    ``set()`` is a plain cancel (:data:`STOP_USER`); ``stop(STOP_QUIT)`` asks a run to stop as
    "interrupted". The reason is written before the flag is set, so whoever sees the flag sees it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason = STOP_USER

    def stop(self, reason: str = STOP_USER) -> None:
        self.reason = reason
        self.set()


def stop_reason(cancel: Any) -> str:
    """The reason of a cancel flag: its ``reason`` (a :class:`StopRequest`), else :data:`STOP_USER`."""
    return str(getattr(cancel, "reason", None) or STOP_USER)


def quitting(cancel: Any) -> bool:
    """True when ``cancel`` is set because the app is closing (reason :data:`STOP_QUIT`)."""
    return cancel is not None and cancel.is_set() and stop_reason(cancel) == STOP_QUIT


@dataclass(frozen=True)
class Event:
    """Base class of every event."""


@dataclass(frozen=True)
class RunStarted(Event):
    run_dir: str
    classes: tuple[str, ...]
    num_train: int
    num_val: int
    num_test: int
    phases: tuple[str, ...]  # the phases this run will go through, e.g. ("caching", "head")
    total_epochs: int  # sum of the epoch budgets of the training phases
    batch_size: int


@dataclass(frozen=True)
class PhaseStarted(Event):
    phase: str
    epochs: int  # 0 for phases that are not epoch-based (caching, evaluating)
    steps_per_epoch: int  # batches per epoch, or items to process for caching/evaluating


@dataclass(frozen=True)
class CacheProgress(Event):
    done: int  # images whose features are known (hits + computed)
    total: int
    hits: int  # of ``done``, how many came from the cache on disk


@dataclass(frozen=True)
class BatchEnded(Event):
    phase: str
    epoch: int  # 0-based within the phase
    batch: int  # 0-based within the epoch
    steps: int  # batches per epoch
    loss: float
    accuracy: float
    global_step: int  # batches seen in the whole run so far, for a run-wide x axis


@dataclass(frozen=True)
class EpochEnded(Event):
    phase: str
    epoch: int  # 0-based within the phase
    epochs: int  # epoch budget of the phase
    run_epoch: int  # 1-based count of epochs completed in the whole run
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float  # wall time of this epoch


@dataclass(frozen=True)
class FileSkipped(Event):
    path: str  # relative to the dataset root
    reason: str


@dataclass(frozen=True)
class LogMessage(Event):
    text: str
    level: str = "info"  # "info" | "warning"


@dataclass(frozen=True)
class TrainFinished(Event):
    run_dir: str
    status: str  # "finished" | "cancelled"
    model_path: str
    val_accuracy: float | None
    test_accuracy: float | None
    epochs_run: int
    train_seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TrainFailed(Event):
    message: str  # one line, for the user
    run_dir: str | None = None


class RateLimit:
    """True at most ``per_second`` times a second, and whenever ``force`` is given."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._last = -float("inf")

    def __call__(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False
