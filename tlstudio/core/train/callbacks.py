"""The Keras side of training: the callback that turns ``fit`` into events, and per-epoch checkpoints.

The callback class is made inside :func:`make_bridge` so that importing this module does not
import Keras.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import run_folder
from tlstudio.core.atomic import write_json
from tlstudio.core.events import BatchEnded, EpochEnded, Event, FileSkipped

STATE_FILE = run_folder.STATE_FILE
STATE_VERSION = 1


@dataclass
class RunProgress:
    """Counters and records shared by every phase of one run (and saved for resuming)."""

    run_epoch: int = 0  # epochs completed in the whole run
    global_step: int = 0  # batches completed in the whole run
    train_seconds: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def history(self) -> dict[str, list[dict[str, Any]]]:
        return {"epochs": self.epochs, "batches": self.batches}


@dataclass
class BestTracker:
    """Early stopping on validation loss with the best weights kept (in memory and on disk)."""

    patience: int
    enabled: bool = True
    min_delta: float = 1e-4
    best_loss: float = math.inf
    best_weights: list[np.ndarray] | None = None
    best_kind: str = ""  # "head" (standalone head weights) or "full" (whole classifier)
    best_file: str | None = None
    best_run_epoch: int = 0
    wait: int = 0

    def update(self, val_loss: float | None, weights: Callable[[], list[np.ndarray]], kind: str, run_epoch: int) -> bool:
        """Record one finished epoch; True when it is the best so far."""
        if val_loss is None or not math.isfinite(val_loss):
            self.wait += 1
            return False
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = float(val_loss)
            self.best_weights = [np.array(w, copy=True) for w in weights()]
            self.best_kind = kind
            self.best_run_epoch = run_epoch
            self.wait = 0
            return True
        self.wait += 1
        return False

    def should_stop(self) -> bool:
        return self.enabled and self.wait >= self.patience


def _float(logs: dict[str, Any], key: str) -> float | None:
    v = logs.get(key)
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def make_bridge(
    *,
    phase: str,
    epochs: int,
    steps: int,
    emit: Callable[[Event], None],
    cancel: threading.Event,
    progress: RunProgress,
    skip_log: Any,
    on_epoch: Callable[[int, dict[str, Any]], None],
    batch_every: int = 1,
    validate: Callable[[], tuple[float, float]] | None = None,
) -> Any:
    """A Keras callback that emits BatchEnded / EpochEnded / FileSkipped and honours ``cancel``.

    Parameters
    ----------
    phase
        Phase name put in the events.
    epochs, steps
        Epoch budget of the phase and batches per epoch.
    emit
        Event sink.
    cancel
        When set, ``model.stop_training`` is set at the end of the current batch and the
        validation pass of that epoch is cut short; the unfinished epoch is not recorded.
    progress
        Run-wide counters and history, updated in place.
    skip_log
        :class:`tlstudio.core.data.pipeline.SkipLog` whose new entries become FileSkipped events.
    on_epoch
        Called with ``(epoch, record)`` after each *completed* epoch (checkpointing, early stopping).
    validate
        Optional ``() -> (val_loss, val_accuracy)`` used instead of Keras's own validation pass
        (cheaper for a small head on cached features: no second traced function).
    """
    import keras

    class Bridge(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.interrupted = False
            self._epoch = 0
            self._t0 = time.perf_counter()

        def _drain(self) -> None:
            if skip_log is None:
                return
            for s in skip_log.drain():
                emit(FileSkipped(path=s.path, reason=s.reason))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch = epoch
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            logs = logs or {}
            progress.global_step += 1
            loss = _float(logs, "loss") or 0.0
            acc = _float(logs, "accuracy") or 0.0
            if batch % batch_every == 0 or batch == steps - 1:
                progress.batches.append(
                    {
                        "phase": phase,
                        "epoch": self._epoch,
                        "batch": batch,
                        "global_step": progress.global_step,
                        "loss": loss,
                        "accuracy": acc,
                    }
                )
            emit(
                BatchEnded(
                    phase=phase,
                    epoch=self._epoch,
                    batch=batch,
                    steps=steps,
                    loss=loss,
                    accuracy=acc,
                    global_step=progress.global_step,
                )
            )
            self._drain()
            if cancel.is_set():
                self.interrupted = True
                self.model.stop_training = True

        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            if cancel.is_set():
                self.interrupted = True
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self._drain()
            if self.interrupted or cancel.is_set():
                self.interrupted = True
                self.model.stop_training = True
                return
            logs = dict(logs or {})
            if validate is not None:
                logs["val_loss"], logs["val_accuracy"] = validate()
            seconds = time.perf_counter() - self._t0
            progress.run_epoch += 1
            loss, acc = _float(logs, "loss"), _float(logs, "accuracy")
            val_loss, val_acc = _float(logs, "val_loss"), _float(logs, "val_accuracy")
            record: dict[str, Any] = {
                "phase": phase,
                "epoch": epoch,
                "run_epoch": progress.run_epoch,
                "loss": loss,
                "accuracy": acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "seconds": seconds,
            }
            progress.epochs.append(record)
            emit(
                EpochEnded(
                    phase=phase,
                    epoch=epoch,
                    epochs=epochs,
                    run_epoch=progress.run_epoch,
                    loss=loss or 0.0,
                    accuracy=acc or 0.0,
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                    seconds=seconds,
                )
            )
            on_epoch(epoch, record)

    return Bridge()


# -- checkpoints -----------------------------------------------------------------------------------


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    """Save a list of arrays to ``path`` (.npz) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        np.savez(tmp, *[np.asarray(a) for a in arrays])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def optimizer_arrays(optimizer: Any) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in optimizer.variables]


def restore_optimizer(optimizer: Any, trainable_variables: Any, arrays: list[np.ndarray]) -> bool:
    """Put saved optimizer state back; False (state left fresh) when it does not fit."""
    if not optimizer.built:
        optimizer.build(trainable_variables)
    variables = list(optimizer.variables)
    if len(variables) != len(arrays) or any(tuple(v.shape) != a.shape for v, a in zip(variables, arrays, strict=True)):
        return False
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a)
    return True


def read_state(ckpt_dir: Path) -> dict[str, Any] | None:
    path = ckpt_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return data


def write_state(ckpt_dir: Path, state: dict[str, Any]) -> None:
    write_json(ckpt_dir / STATE_FILE, {"version": STATE_VERSION, **state})


def prune_checkpoints(ckpt_dir: Path, keep: set[str]) -> None:
    """Delete checkpoint files that the state no longer refers to."""
    for p in ckpt_dir.glob("*.npz"):
        if p.name not in keep:
            p.unlink(missing_ok=True)


def fit_small_model(model: Any, dataset: Any, *, epochs: int, initial_epoch: int, callback: Any, loss: Any) -> None:
    """``model.fit`` for a small model on in-memory data, with a lighter traced step.

    Keras's own train function carries metrics and bookkeeping whose tracing costs about a
    second, more than ten epochs of a head on cached features. This loop traces one plain
    gradient step, reports the running loss and weighted accuracy per batch as ``fit`` does,
    and drives ``callback`` (the bridge of :func:`make_bridge`) through the same hooks, so
    cancel, early stopping and checkpoints behave exactly as with ``fit``.
    ``dataset`` yields ``(x, one-hot y, sample weight)``; ``model`` must be compiled.
    """
    import tensorflow as tf

    optimizer = model.optimizer
    variables = model.trainable_variables
    spec = dataset.element_spec

    @tf.function(input_signature=list(spec), reduce_retracing=True)
    def step(x: Any, y: Any, w: Any) -> Any:
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            value = loss(y, probs, sample_weight=w)
        grads = tape.gradient(value, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        hits = tf.cast(tf.equal(tf.argmax(probs, axis=-1), tf.argmax(y, axis=-1)), tf.float32)
        return value, tf.reduce_sum(hits * w), tf.reduce_sum(w), tf.cast(tf.shape(x)[0], tf.float32)

    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback.on_epoch_begin(epoch)
        loss_sum = seen = correct = weight = 0.0
        for batch, (x, y, w) in enumerate(dataset):
            value, c, sw, n = (float(v) for v in step(x, y, w))
            loss_sum += value * n
            seen += n
            correct += c
            weight += sw
            logs = {"loss": loss_sum / max(seen, 1.0), "accuracy": correct / weight if weight else 0.0}
            callback.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        callback.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    callback.on_train_end()
