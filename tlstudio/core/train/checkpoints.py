"""Checkpoints and resume state: what a killed run needs to continue at its last completed epoch.

Layout under ``RUN_DIR/checkpoints``::

    state.json                 where the run stands (phase, epochs done, counters, history, best epoch)
    <phase>-e<NNNN>.npz        the weights after a completed epoch
    <phase>-e<NNNN>-opt.npz    the optimizer's state beside them
    head-final.npz             the classifier after the head phase, when fine-tuning follows

``state.json`` is written after the arrays it names, each atomically, so a run killed at any
moment leaves a state that points at complete files.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import run_folder
from tlstudio.core.atomic import write_json
from tlstudio.core.events import PHASE_FINE_TUNE
from tlstudio.core.json_file import read_json

STATE_FILE = run_folder.STATE_FILE
#: A head on cached features finishes an epoch in milliseconds: its state (with the whole history)
#: is written at most this often, and when the phase ends.
FAST_STATE_SECONDS = 2.0
STATE_VERSION = 1
#: The classifier as the head phase left it, kept while fine-tuning runs.
HEAD_FINAL = "head-final.npz"


@dataclass
class RunProgress:
    """Counters and records shared by every phase of one run (and saved for resuming)."""

    run_epoch: int = 0  # epochs completed in the whole run
    global_step: int = 0  # batches completed in the whole run
    train_seconds: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)

    _section_start: float | None = None

    def history(self) -> dict[str, list[dict[str, Any]]]:
        return {"epochs": self.epochs, "batches": self.batches}

    def start_clock(self) -> None:
        """Training time counts from now (phases only: not scanning, building or saving)."""
        self._section_start = time.perf_counter()

    def stop_clock(self) -> None:
        if self._section_start is not None:
            self.train_seconds += time.perf_counter() - self._section_start
            self._section_start = None

    def seconds(self) -> float:
        """Training seconds so far, the running section included."""
        extra = time.perf_counter() - self._section_start if self._section_start is not None else 0.0
        return self.train_seconds + extra


@dataclass
class BestTracker:
    """Early stopping on validation loss with the best weights kept (in memory and on disk)."""

    patience: int
    enabled: bool = True
    min_delta: float = 1e-4
    relative_delta: float = 0.0  # also needed: this share of the best loss (a slow creep is convergence)
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
        if val_loss < self.best_loss * (1.0 - self.relative_delta) - self.min_delta:
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

    def put_into(self, model: Any, head: Any) -> None:
        """Load the best weights into the classifier (or only its ``head``, for head weights)."""
        if self.best_weights is not None:
            (head if self.best_kind == "head" else model).set_weights(self.best_weights)


def fine_tuning_did_better(progress: RunProgress, best: BestTracker, head_only: dict[str, Any] | None) -> bool:
    """Whether fine-tuning's best epoch beats the head-only classifier on validation.

    Accuracy decides, then the loss; ``best`` tracks fine-tuning alone (see
    :meth:`Checkpointer.save_head_final`), ``head_only`` is the head phase's best epoch.
    """
    if best.best_weights is None:
        return False
    if not head_only or head_only.get("val_accuracy") is None:
        return True
    ft = next((e for e in progress.epochs if e["run_epoch"] == best.best_run_epoch), {})
    return (ft.get("val_accuracy") or 0.0, -best.best_loss) > (head_only["val_accuracy"], -head_only["val_loss"])


# -- files ----------------------------------------------------------------------------------------


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
    """The arrays :func:`save_arrays` wrote, in order."""
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def optimizer_arrays(optimizer: Any) -> list[np.ndarray]:
    """A copy of every variable of a (built) Keras optimizer."""
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
    """The saved state of an interrupted run, or None when there is none (or it is unreadable)."""
    path = ckpt_dir / STATE_FILE
    try:
        data = read_json(path)
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


# -- the run's checkpointing -------------------------------------------------------------------------


class Checkpointer:
    """Writes a checkpoint after every completed epoch and reads it back for ``resume``.

    Parameters
    ----------
    run_dir
        The run folder; checkpoints go to its ``checkpoints`` sub-folder.
    progress, best
        The run's counters and early-stopping state (saved with every checkpoint).
    skip_log
        The run's :class:`~tlstudio.core.data.pipeline.SkipLog` (skipped files survive a resume).
    seconds
        ``() -> training seconds so far``.
    """

    def __init__(
        self, run_dir: Path, progress: RunProgress, best: BestTracker, skip_log: Any, seconds: Callable[[], float]
    ) -> None:
        self.run_dir = run_dir
        self.dir = run_dir / run_folder.CHECKPOINT_DIR
        self.progress = progress
        self.best = best
        self.skip_log = skip_log
        self.seconds = seconds
        self.created: str | None = None
        self.extra_files: set[str] = set()
        #: The trainable flags fine-tuning started with (restored exactly on resume).
        self.fine_tune_flags: dict[str, bool] | None = None
        #: What the run chose and measured so far (settings, the head-only result), kept for a resume.
        self.notes: dict[str, Any] = {}
        self._last_write = -math.inf
        self._unwritten: dict[str, Any] | None = None  # the state a fast head epoch did not write yet

    def read(self) -> dict[str, Any] | None:
        return read_state(self.dir)

    def restore_progress(self, state: dict[str, Any]) -> None:
        """Counters, history, creation time and skipped files from a saved state."""
        self.progress.run_epoch = int(state.get("run_epoch", 0))
        self.progress.global_step = int(state.get("global_step", 0))
        self.progress.train_seconds = float(state.get("train_seconds", 0.0))
        hist = state.get("history") or {}
        self.progress.epochs = list(hist.get("epochs", []))
        self.progress.batches = list(hist.get("batches", []))
        self.created = state.get("created")
        self.notes = dict(state.get("notes") or {})
        if (self.dir / HEAD_FINAL).is_file():
            self.extra_files = {HEAD_FINAL}
        for s in state.get("skipped", []):
            self.skip_log.add(s["path"], s["reason"])
        self.skip_log.drain()

    def restore_best(self, state: dict[str, Any]) -> None:
        """The best epoch so far (its weights from disk) and the early-stopping wait."""
        best = state.get("best") or {}
        if best.get("file") and (self.dir / best["file"]).is_file():
            self.best.best_loss = float(best.get("val_loss", math.inf))
            self.best.best_file = best["file"]
            self.best.best_kind = best.get("kind", "full")
            self.best.best_run_epoch = int(best.get("run_epoch", 0))
            self.best.best_weights = load_arrays(self.dir / best["file"])
        self.best.wait = int(state.get("wait", 0))

    def restore_model(self, model: Any, state: dict[str, Any], strategy: Any, log: Callable[..., None]) -> None:
        """Weights and optimizer state of the epoch the state names."""
        model.set_weights(load_arrays(self.dir / state["weights"]))
        if state.get("optimizer") and (self.dir / state["optimizer"]).is_file():
            with strategy.scope():
                ok = restore_optimizer(model.optimizer, model.trainable_variables, load_arrays(self.dir / state["optimizer"]))
            if not ok:
                log("the optimizer state could not be restored; it starts afresh", "warning")

    def load_weights(self, model: Any, state: dict[str, Any]) -> None:
        weights = state.get("weights")
        if weights and (self.dir / weights).is_file():
            model.set_weights(load_arrays(self.dir / weights))

    def save_epoch(self, *, phase: str, epochs_done: int, phase_done: bool, model: Any, kind: str, improved: bool) -> None:
        """Weights and optimizer state after a completed epoch, then the state that names them."""
        run_epoch = self.progress.run_epoch
        weights_file = f"{phase}-e{run_epoch:04d}.npz"
        opt_file = f"{phase}-e{run_epoch:04d}-opt.npz"
        save_arrays(self.dir / weights_file, model.get_weights())
        if getattr(model, "optimizer", None) is not None and model.optimizer.built:
            save_arrays(self.dir / opt_file, optimizer_arrays(model.optimizer))
        else:
            opt_file = ""
        if improved:
            self.best.best_file = weights_file
        now = time.monotonic()
        state = dict(phase=phase, epochs_done=epochs_done, phase_done=phase_done, weights=weights_file, opt=opt_file,
                     kind=kind)
        if kind == "head" and not phase_done and now - self._last_write < FAST_STATE_SECONDS:
            self._unwritten = state  # the arrays are on disk; the next state written (or flush()) names them
            return
        self._last_write = now
        self._unwritten = None
        self.write(**state)

    def flush(self) -> None:
        """Write the state of the last completed epoch if it is not on disk yet (a run stopping to quit)."""
        if self._unwritten is not None:
            state, self._unwritten = self._unwritten, None
            self.write(**state)

    def save_head_final(self, weights: list[np.ndarray]) -> None:
        """The classifier as the head phase leaves it: where fine-tuning starts (and resumes) from,
        and what the run keeps when fine-tuning does not do better. Fine-tuning's own best starts afresh."""
        save_arrays(self.dir / HEAD_FINAL, weights)
        self.extra_files = {HEAD_FINAL}
        b = self.best
        b.best_loss, b.best_weights, b.best_kind, b.best_file, b.best_run_epoch, b.wait = math.inf, None, "", None, 0, 0
        self.write(phase=PHASE_FINE_TUNE, epochs_done=0, phase_done=False, weights=HEAD_FINAL, opt="", kind="full")

    def head_final(self) -> list[np.ndarray] | None:
        """The weights :meth:`save_head_final` saved, or None."""
        path = self.dir / HEAD_FINAL
        return load_arrays(path) if path.is_file() else None

    def write(self, *, phase: str, epochs_done: int, phase_done: bool, weights: str, opt: str, kind: str) -> None:
        b = self.best
        write_state(
            self.dir,
            {
                "phase": phase,
                "epochs_done": epochs_done,
                "phase_done": phase_done,
                "run_epoch": self.progress.run_epoch,
                "global_step": self.progress.global_step,
                "train_seconds": self.seconds(),
                "created": self.created,
                "weights": weights,
                "optimizer": opt,
                "kind": kind,
                "best": {"val_loss": b.best_loss, "file": b.best_file, "kind": b.best_kind, "run_epoch": b.best_run_epoch}
                if b.best_file
                else None,
                "wait": b.wait,
                "history": self.progress.history(),
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skip_log.all()],
                "trainable": self.fine_tune_flags if phase == PHASE_FINE_TUNE else None,
                "notes": self.notes,
            },
        )
        prune_checkpoints(self.dir, {weights, opt, b.best_file or ""} | self.extra_files)
        write_json(self.run_dir / run_folder.HISTORY_FILE, self.progress.history())

    def on_epoch(
        self, *, phase: str, epochs: int, model: Any, kind: str, log: Callable[[str], None]
    ) -> Callable[[int, dict[str, Any]], None]:
        """The per-epoch hook of a phase: early stopping, best weights, checkpoint."""

        def handle(epoch: int, record: dict[str, Any]) -> None:
            improved = self.best.update(record.get("val_loss"), model.get_weights, kind, self.progress.run_epoch)
            stop = self.best.should_stop()
            if stop and epoch + 1 < epochs:
                model.stop_training = True
                what = "fine-tuning" if phase == PHASE_FINE_TUNE else "training the classifier"
                log(f"stopped early after {epoch + 1} epoch(s) of {what}: the validation loss stopped improving")
            self.save_epoch(
                phase=phase,
                epochs_done=epoch + 1,
                phase_done=stop or epoch + 1 >= epochs,
                model=model,
                kind=kind,
                improved=improved,
            )

        return handle

    def finish(self) -> None:
        """A finished run needs no checkpoints."""
        prune_checkpoints(self.dir, set())
