"""The Keras side of training: small callbacks that turn ``fit`` into events and honour cancel.

This module imports Keras at module level (Keras callbacks are classes), so the trainer imports it
inside its functions only: importing :mod:`tlstudio.core.train.trainer` stays free of TensorFlow.

- :class:`TrainingEvents` emits :class:`~tlstudio.core.events.BatchEnded` (rate-limited here, at
  the source, so neither the process boundary nor the GUI sees every batch) and
  :class:`~tlstudio.core.events.EpochEnded`, records the history and calls the per-epoch hook
  (early stopping and checkpoints).
- :class:`CancelOnRequest` stops ``fit`` at the end of the batch in which ``cancel`` was set.
  Setting ``stop_training`` before ``fit`` does nothing (``fit`` resets it), hence a callback.
  It also stops a run whose loss is no longer a finite number: it raises :class:`TrainingError`
  saying why, so the run is recorded as failed (its checkpoints kept), never as finished.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import keras  # noqa: TID253 - imported lazily by the trainer; see the module docstring

from tlstudio.core.events import BatchEnded, EpochEnded, Event, FileSkipped, RateLimit
from tlstudio.core.train.checkpoints import RunProgress

#: At most this many BatchEnded events a second (the first and last batch of an epoch always go).
BATCH_EVENTS_PER_SECOND = 10.0


def _float(logs: dict[str, Any], key: str) -> float | None:
    v = logs.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class CancelOnRequest(keras.callbacks.Callback):
    """Stops training at the end of the batch in which ``cancel`` is set; ``interrupted`` tells."""

    def __init__(self, cancel: threading.Event) -> None:
        super().__init__()
        self.cancel = cancel
        self.interrupted = False

    def _stop(self) -> None:
        self.interrupted = True
        self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = _float(logs or {}, "loss")
        if loss is not None and not math.isfinite(loss):
            from tlstudio.core.train.run_data import TrainingError

            self.model.stop_training = True
            raise TrainingError(
                f"training stopped: the loss became {loss} in batch {batch + 1}; the weights diverged. "
                "Try a lower learning rate (the best epoch so far is kept)"
            )
        if self.cancel.is_set():
            self._stop()

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.cancel.is_set():  # cut the epoch's validation pass short too
            self.interrupted = True
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.cancel.is_set():
            self._stop()


class TrainingEvents(keras.callbacks.Callback):
    """Emits BatchEnded / EpochEnded / FileSkipped for one phase and records its history.

    Parameters
    ----------
    phase
        Phase name put in the events.
    emit
        Event sink.
    cancel
        Set: the epoch in flight is not recorded (and its hook not called).
    progress
        Run-wide counters and history, updated in place.
    on_epoch
        Called with ``(epoch, record)`` after each *completed* epoch (checkpointing, early stopping).
    skip_log
        :class:`~tlstudio.core.data.pipeline.SkipLog` whose new entries become FileSkipped events.
    validate
        Optional ``() -> (val_loss, val_accuracy)`` used instead of Keras's own validation pass
        (cheaper for a small head on cached features: no second traced function).
    steps, epochs
        Used when ``fit`` does not know them (:meth:`set_params` gives them otherwise).
    """

    def __init__(
        self,
        *,
        phase: str,
        emit: Callable[[Event], None],
        cancel: threading.Event,
        progress: RunProgress,
        on_epoch: Callable[[int, dict[str, Any]], None],
        skip_log: Any = None,
        validate: Callable[[], tuple[float, float]] | None = None,
        steps: int = 0,
        epochs: int = 0,
    ) -> None:
        super().__init__()
        self.phase = phase
        self.emit = emit
        self.cancel = cancel
        self.progress = progress
        self.on_epoch = on_epoch
        self.skip_log = skip_log
        self.validate = validate
        self.steps = steps
        self.epochs = epochs
        self.limit = RateLimit(BATCH_EVENTS_PER_SECOND)
        self._epoch = 0
        self._t0 = time.perf_counter()

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        # ``fit`` tells the epochs and the batches per epoch before the first batch.
        self.steps = int(params.get("steps") or self.steps)
        self.epochs = int(params.get("epochs") or self.epochs)

    def _drain(self) -> None:
        if self.skip_log is None:
            return
        for s in self.skip_log.drain():
            self.emit(FileSkipped(path=s.path, reason=s.reason))

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        logs = logs or {}
        progress = self.progress
        progress.global_step += 1
        loss = _float(logs, "loss") or 0.0
        acc = _float(logs, "accuracy") or 0.0
        progress.batches.append(
            {"phase": self.phase, "epoch": self._epoch, "batch": batch, "global_step": progress.global_step,
             "loss": loss, "accuracy": acc}
        )
        edge = batch == 0 or batch >= self.steps - 1 or self.cancel.is_set()
        if self.limit(force=edge):
            self.emit(
                BatchEnded(
                    phase=self.phase, epoch=self._epoch, batch=batch, steps=self.steps, loss=loss, accuracy=acc,
                    global_step=progress.global_step,
                )
            )
        self._drain()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._drain()
        if self.cancel.is_set():
            return  # the unfinished epoch is not recorded
        logs = dict(logs or {})
        if self.validate is not None:
            logs["val_loss"], logs["val_accuracy"] = self.validate()
        seconds = time.perf_counter() - self._t0
        self.progress.run_epoch += 1
        loss, acc = _float(logs, "loss"), _float(logs, "accuracy")
        val_loss, val_acc = _float(logs, "val_loss"), _float(logs, "val_accuracy")
        record: dict[str, Any] = {
            "phase": self.phase,
            "epoch": epoch,
            "run_epoch": self.progress.run_epoch,
            "loss": loss,
            "accuracy": acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": seconds,
        }
        self.progress.epochs.append(record)
        self.emit(
            EpochEnded(
                phase=self.phase, epoch=epoch, epochs=self.epochs, run_epoch=self.progress.run_epoch,
                loss=loss or 0.0, accuracy=acc or 0.0, val_loss=val_loss, val_accuracy=val_acc, seconds=seconds,
            )
        )
        self.on_epoch(epoch, record)
