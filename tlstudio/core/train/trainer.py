"""Training: one call runs a whole transfer-learning run and leaves a run folder behind.

The plan of a run:

1. **caching** (when the base is entirely frozen and augmentation is off): the base runs once per
   image and the pooled features go to the on-disk embedding cache (tlstudio.core.train.feature_cache);
   images already in the cache are not run again.
2. **head**: the classifier head is trained, on the cached features when possible (seconds), or
   end to end through the image pipeline otherwise; the best weights (lowest validation loss)
   are then put into the whole classifier.
3. **fine_tune** (when ``fine_tune_epochs`` > 0): the layers the layer tree marks trainable
   (``config.layer_state``, else the top ``unfreeze_top`` blocks) are trained with the head at
   the lower ``fine_tune_lr``; BatchNorm layers stay in inference mode.
4. **evaluating**: metrics on the validation and test splits.

Every completed epoch is checkpointed in ``RUN_DIR/checkpoints`` so ``train(..., resume=True)``
continues a killed run, losing at most the epoch in flight. Cancelling (``cancel.set()``) stops
within one batch; the best weights so far are kept and the run folder is still complete.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import run_folder
from tlstudio.core.atomic import atomic_path, write_json
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.pipeline import FileSet, Skip, SkipLog, make_augmenter, make_dataset
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.events import (
    PHASE_CACHING,
    PHASE_EVALUATING,
    PHASE_FINE_TUNE,
    PHASE_HEAD,
    CacheProgress,
    Event,
    FileSkipped,
    LogMessage,
    PhaseStarted,
    RunStarted,
    TrainFailed,
    TrainFinished,
)
from tlstudio.core.train.callbacks import (
    BestTracker,
    RunProgress,
    fit_small_model,
    load_arrays,
    make_bridge,
    optimizer_arrays,
    prune_checkpoints,
    read_state,
    restore_optimizer,
    save_arrays,
    write_state,
)

Emit = Callable[[Event], None]

#: Classes whose counts differ by more than this factor get balanced class weights ("auto").
IMBALANCE_FACTOR = 1.5
#: Features computed but not yet written are flushed to the cache every so many images.
CACHE_FLUSH = 2048


class TrainingError(TlstudioError):
    """Training could not be run or completed."""


@dataclass
class TrainResult:
    """What :func:`train` returns (and what ``tlstudio train --json`` prints)."""

    run_dir: Path
    status: str  # "finished" | "cancelled"
    model_path: Path
    val_accuracy: float | None
    test_accuracy: float | None
    epochs_run: int
    train_seconds: float
    warnings: list[str] = field(default_factory=list)
    cache_hits: int = 0  # images whose features came from the embedding cache
    cache_computed: int = 0  # images the base was run on to fill the cache

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_dir": str(self.run_dir),
            "model_path": str(self.model_path),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "epochs_run": self.epochs_run,
            "train_seconds": round(self.train_seconds, 3),
            "warnings": list(self.warnings),
        }


def compute_features(fn: Callable[[Any], Any], images: Any) -> np.ndarray:
    """Run the frozen base (with its pooling) on one batch of images: the expensive call the cache saves."""
    return np.asarray(fn(images), dtype=np.float32)


def zero_output_layer(head: Any) -> None:
    """Start the head's softmax layer at zero: uniform predictions, no confidently wrong start.

    Glorot-initialised logits on large pooled features start with a high loss and take epochs
    to recover; from zero, a linear head converges in a few epochs (on hymenoptera with
    MobileNet 0.25, validation accuracy after 10 epochs goes from about 0.80 to about 0.87).
    """
    try:
        layer = head.get_layer("predictions")
    except ValueError:
        return
    layer.set_weights([np.zeros(w.shape, dtype=w.dtype) for w in layer.get_weights()])


def class_weights_for(labels: np.ndarray, num_classes: int, mode: str = "auto") -> np.ndarray:
    """Weight per class: all 1, or "balanced" (n / (k * count)) when ``mode`` is "auto" and the
    largest class has more than :data:`IMBALANCE_FACTOR` times the images of the smallest."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes, dtype=np.float32)
    present = counts > 0
    if mode == "auto" and present.sum() > 1:
        lo, hi = counts[present].min(), counts[present].max()
        if hi > IMBALANCE_FACTOR * lo:
            weights[present] = (counts.sum() / (present.sum() * counts[present])).astype(np.float32)
    return weights


def trainable_flags(model: Any) -> dict[str, bool]:
    """``layer.trainable`` of every layer, nested models included, by "/"-joined layer path."""
    flags: dict[str, bool] = {}

    def walk(layer: Any, prefix: str) -> None:
        for child in getattr(layer, "layers", []) or []:
            path = f"{prefix}{child.name}"
            flags[path] = bool(child.trainable)
            walk(child, path + "/")

    walk(model, "")
    return flags


def apply_trainable_flags(model: Any, flags: dict[str, bool]) -> None:
    """Set the flags of :func:`trainable_flags` back, containers before their layers."""

    def walk(layer: Any, prefix: str) -> None:
        for child in getattr(layer, "layers", []) or []:
            path = f"{prefix}{child.name}"
            if path in flags:
                child.trainable = bool(flags[path])
            walk(child, path + "/")

    walk(model, "")


def _ignore(event: Event) -> None:
    pass


def train(
    config: TrainConfig | None,
    run_dir: str | Path,
    *,
    emit: Emit | None = None,
    cancel: threading.Event | None = None,
    scan: Any = None,
    resume: bool = False,
) -> TrainResult:
    """Train a classifier and write its run folder.

    Parameters
    ----------
    config
        What to train. Ignored (may be None) with ``resume=True``: the run's own ``config.json`` is used.
    run_dir
        The run folder to write (created when missing; must not already hold a run unless resuming).
    emit
        Receives the events of :mod:`tlstudio.core.events`, in this order: RunStarted,
        then per phase PhaseStarted followed by CacheProgress (caching) or BatchEnded/EpochEnded
        (training phases), LogMessage and FileSkipped whenever they occur, and finally
        TrainFinished, or TrainFailed before the exception is raised.
    cancel
        Set it to stop within one batch; the run then finishes with status "cancelled", the best
        weights so far and a complete run folder.
    scan
        The :class:`~tlstudio.core.data.scan.DatasetScan` of ``config.data_dir`` when already made.
    resume
        Continue the interrupted run in ``run_dir`` from its last completed epoch.

    Returns
    -------
    TrainResult

    Raises
    ------
    TlstudioError
        A one-line reason: bad configuration or data, cancelled before anything was trained
        (:class:`~tlstudio.core.errors.Cancelled`), or a failure during training.
    """
    trainer = _Trainer(config, Path(run_dir), emit or _ignore, cancel or threading.Event(), scan, resume)
    try:
        return trainer.run()
    except TlstudioError as exc:
        trainer.record_failure(exc)
        raise
    except Exception as exc:
        message = f"training failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        trainer.record_failure(TrainingError(message), tb=traceback.format_exc())
        raise TrainingError(message) from exc
    finally:
        trainer.cleanup()


class _Trainer:
    def __init__(
        self, config: TrainConfig | None, run_dir: Path, emit: Emit, cancel: threading.Event, scan: Any, resume: bool
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / run_folder.CHECKPOINT_DIR
        self.user_emit = emit
        self.cancel = cancel
        self.scan = scan
        self.resume = resume
        self.progress = RunProgress()
        self.skip_log = SkipLog()
        self.scan_skipped: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.cancelled = False
        self.started_config = False
        self._policy_to_restore: str | None = None
        self._section_start: float | None = None
        self.cache_hits = 0
        self.cache_computed = 0
        self.cached: dict[str, tuple[np.ndarray, np.ndarray, list[int]]] = {}
        self.extra_ckpt_files: set[str] = set()

    # -- events and bookkeeping --------------------------------------------------------------
    def emit(self, event: Event) -> None:
        self.user_emit(event)

    def log(self, text: str, level: str = "info") -> None:
        if level == "warning":
            self.warnings.append(text)
        self.emit(LogMessage(text=text, level=level))

    def record_failure(self, exc: TlstudioError, tb: str | None = None) -> None:
        status = run_folder.STATUS_CANCELLED if isinstance(exc, Cancelled) else run_folder.STATUS_FAILED
        try:
            if self.started_config:
                if tb:
                    run_folder.write_error_log(self.run_dir, tb)
                summary = self.summary(status)
                summary["error"] = str(exc)
                run_folder.write_summary(self.run_dir, summary)
        except Exception:  # noqa: BLE001 - reporting the original error matters more
            pass
        self.emit(TrainFailed(message=str(exc), run_dir=str(self.run_dir)))

    def cleanup(self) -> None:
        if self._policy_to_restore is not None:
            import keras

            keras.mixed_precision.set_dtype_policy(self._policy_to_restore)
            self._policy_to_restore = None

    def start_clock(self) -> None:
        self._section_start = time.perf_counter()

    def stop_clock(self) -> None:
        if self._section_start is not None:
            self.progress.train_seconds += time.perf_counter() - self._section_start
            self._section_start = None

    def seconds_so_far(self) -> float:
        extra = time.perf_counter() - self._section_start if self._section_start is not None else 0.0
        return self.progress.train_seconds + extra

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("training was cancelled before any epoch completed")

    # -- preparation -------------------------------------------------------------------------
    def prepare(self) -> None:
        from tlstudio.core.data.split import split_files, split_to_paths

        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            config, classes, split_paths = run_folder.read_run_config(self.run_dir)
            summary = run_folder._read_json(self.run_dir / run_folder.RUN_FILE, {}) or {}
            if summary.get("status") == run_folder.STATUS_FINISHED:
                raise TrainingError(f"{self.run_dir} has already finished; start a new run instead")
            self.config = config
            self.started_config = True
        else:
            if self.config is None:
                raise TrainingError("no training configuration given")
            if (self.run_dir / run_folder.CONFIG_FILE).exists():
                raise TrainingError(
                    f"{self.run_dir} already holds a run; choose another output folder or resume it"
                )
            self.config = TrainConfig.from_dict(self.config.to_dict())  # a private copy
        config = self.config
        assert config is not None
        if self.scan is not None and not config.data_dir:
            config.data_dir = str(self.scan.root)
        if not config.data_dir:
            raise TrainingError("no dataset folder given")
        config.data_dir = str(Path(config.data_dir).expanduser().resolve())
        config.validate()
        scan = self.scan
        if scan is None or Path(scan.root).resolve() != Path(config.data_dir):
            from tlstudio.core.data.scan import scan_dataset

            self.log(f"scanning {config.data_dir}")
            scan = scan_dataset(config.data_dir, cancel=self.cancel)
        self.scan = scan
        self.root = Path(scan.root)
        self.scan_skipped = [{"path": r.path, "reason": r.reason or "skipped"} for r in scan.skipped()]
        if self.resume:
            by_path = {r.path: r for r in scan.usable()}
            parts: dict[str, list[Any]] = {}
            for name in ("train", "val", "test"):
                parts[name] = []
                for p in split_paths.get(name, []):
                    rec = by_path.get(p)
                    if rec is None:
                        self.skip_log.add(p, "no longer a usable image in the dataset folder")
                    else:
                        parts[name].append(rec)
        else:
            parts = split_files(scan, config.split)
            present = {r.class_name for s in parts.values() for r in s}
            classes = [c for c in scan.classes if c in present]
            split_paths = split_to_paths(parts)
        self.classes = list(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.files: dict[str, FileSet] = {}
        self.records: dict[str, list[Any]] = {}
        for name in ("train", "val", "test"):
            recs = [r for r in parts.get(name, []) if r.class_name in index]
            self.records[name] = recs
            self.files[name] = FileSet(
                [str(self.root / r.path) for r in recs],
                [r.path for r in recs],
                np.asarray([index[r.class_name] for r in recs], dtype=np.int32),
            )
        if len(self.files["train"]) == 0 or len(self.files["val"]) == 0:
            raise TrainingError("there are no training or no validation images")
        missing = [c for c in self.classes if not np.any(self.files["train"].labels == index[c])]
        if missing:
            self.log(f"no training images for class(es) {', '.join(missing)}", "warning")
        if not self.resume:
            run_folder.write_run_config(self.run_dir, config, self.classes, split_paths)
            self.started_config = True
            run_folder.write_summary(self.run_dir, self.summary(run_folder.STATUS_RUNNING))

    def summary(self, status: str, **extra: Any) -> dict[str, Any]:
        config = self.config
        assert config is not None
        created = getattr(self, "created", None) or run_folder.now_iso()
        self.created = created
        files = getattr(self, "files", {})
        return {
            "status": status,
            "created": created,
            "updated": run_folder.now_iso(),
            "base": config.base_model_path or config.base,
            "alpha": config.alpha,
            "input_size": getattr(self, "size", config.input_size),
            "resize_policy": config.resize_policy,
            "classes": list(getattr(self, "classes", [])),
            "val_accuracy": extra.get("val_accuracy"),
            "test_accuracy": extra.get("test_accuracy"),
            "epochs_run": self.progress.run_epoch,
            "train_seconds": round(self.seconds_so_far(), 3),
            "num_train": len(files["train"]) if files else 0,
            "num_val": len(files["val"]) if files else 0,
            "num_test": len(files["test"]) if files else 0,
            "frozen_summary": getattr(self, "frozen_summary", ""),
        }

    # -- model -------------------------------------------------------------------------------
    def setup_device(self) -> None:
        import keras
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        self.on_gpu = bool(gpus)
        self.strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
        if self.on_gpu:
            self._policy_to_restore = keras.mixed_precision.dtype_policy().name
            keras.mixed_precision.set_dtype_policy("mixed_float16")
            self.log(f"training on {len(gpus)} GPU(s) with mixed precision")

    def build(self) -> None:
        import keras

        from tlstudio.core.models import catalogue as base_models
        config = self.config
        assert config is not None
        keras.utils.set_random_seed(int(config.seed))
        with self.strategy.scope():
            self.model = base_models.build_classifier(config, len(self.classes), cancel=self.cancel)
        self.size = int(self.model.inputs[0].shape[1])
        self.base_layer = self.model.get_layer("base")
        self.head_layer = self.model.get_layer("head")
        zero_output_layer(self.head_layer)

    def layer_tree(self) -> Any:
        from tlstudio.core.models import layer_tree
        family = None
        config = self.config
        assert config is not None
        if not config.base_model_path:
            from tlstudio.core.models.catalogue import get_spec

            family = get_spec(config.base).family
        return layer_tree.LayerTree.from_model(self.model, family=family)

    def set_head_phase_trainable(self) -> None:
        """Phase 1: the base frozen, unless there is no fine-tune phase and the layer state unfreezes some of it."""
        config = self.config
        assert config is not None
        if config.layer_state and config.fine_tune_epochs == 0:
            tree = self.layer_tree()
            tree.apply_state(config.layer_state)
            tree.apply_to(self.model)
        else:
            self.base_layer.trainable = False
        self.head_layer.trainable = True
        self._freeze_preprocess()

    def set_fine_tune_trainable(self, state: dict[str, Any] | None = None) -> None:
        config = self.config
        assert config is not None
        saved = (state or {}).get("trainable")
        if isinstance(saved, dict) and saved:
            # Resuming: the exact flags the phase started with (what the layer tree decides can
            # depend on weights that changed during the phase, e.g. BatchNorm statistics).
            apply_trainable_flags(self.model, saved)
            self.fine_tune_flags = saved
            return
        tree = self.layer_tree()
        if config.layer_state:
            tree.apply_state(config.layer_state)
        else:
            tree.freeze_base()
            tree.unfreeze_top_blocks(int(config.unfreeze_top))
        tree.apply_to(self.model)
        self.head_layer.trainable = True
        self._freeze_preprocess()
        self.fine_tune_flags = trainable_flags(self.model)

    def _freeze_preprocess(self) -> None:
        try:
            self.model.get_layer("preprocess").trainable = False
        except ValueError:
            pass

    def base_trainable_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self.base_layer.trainable_weights))

    def make_optimizer(self, lr: float) -> Any:
        import keras

        name = self.config.optimizer if self.config else "adam"
        if name == "sgd":
            return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
        if name == "adamw":
            return keras.optimizers.AdamW(learning_rate=lr)
        return keras.optimizers.Adam(learning_rate=lr)

    def compile(self, model: Any, lr: float) -> None:
        import keras

        config = self.config
        assert config is not None
        with self.strategy.scope():
            model.compile(
                optimizer=self.make_optimizer(lr),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(config.label_smoothing)),
                weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile="auto" if self.on_gpu else False,
            )

    def class_weights(self) -> np.ndarray:
        config = self.config
        assert config is not None
        weights = class_weights_for(self.files["train"].labels, len(self.classes), config.class_weights)
        if np.any(weights != 1.0):
            self.log(
                "classes are imbalanced: using balanced class weights ("
                + ", ".join(f"{c} {w:.2f}" for c, w in zip(self.classes, weights, strict=True))
                + ")"
            )
        return weights

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self.prepare()
        config = self.config
        assert config is not None
        state = read_state(self.ckpt_dir) if self.resume else None
        if state:
            self.restore_progress(state)
        self.augmenter = make_augmenter(config, int(config.seed))
        self.setup_device()
        self.build()
        self.set_head_phase_trainable()
        head_frozen_base = self.base_trainable_params() == 0
        self.use_cache = bool(
            config.use_cache and self.augmenter is None and head_frozen_base and config.head_epochs > 0
        )
        phases: list[str] = []
        if self.use_cache:
            phases.append(PHASE_CACHING)
        if config.head_epochs > 0:
            phases.append(PHASE_HEAD)
        if config.fine_tune_epochs > 0:
            phases.append(PHASE_FINE_TUNE)
        phases.append(PHASE_EVALUATING)
        self.emit(
            RunStarted(
                run_dir=str(self.run_dir),
                classes=tuple(self.classes),
                num_train=len(self.files["train"]),
                num_val=len(self.files["val"]),
                num_test=len(self.files["test"]),
                phases=tuple(phases),
                total_epochs=int(config.head_epochs + config.fine_tune_epochs),
                batch_size=int(config.batch_size),
            )
        )
        if self.scan_skipped:
            self.log(f"{len(self.scan_skipped)} file(s) were skipped by the scan (see {run_folder.SKIPPED_FILE})", "info")
        if self.resume:
            self.log(f"resuming after {self.progress.run_epoch} completed epoch(s)")
        if not self.use_cache and config.use_cache and config.head_epochs > 0:
            why = "augmentation is on" if self.augmenter is not None else "some base layers are trainable"
            self.log(f"training end to end without the embedding cache: {why}")
        self.sample_weight_per_class = self.class_weights()
        self.best = BestTracker(patience=int(config.patience), enabled=bool(config.early_stopping))
        if state:
            self.restore_best(state)
        self.frozen_summary = self.describe_freezing()

        phase = state.get("phase") if state else None
        phase_done = bool(state.get("phase_done")) if state else False
        epochs_done = int(state.get("epochs_done", 0)) if state else 0

        # Phase 1: the head.
        if config.head_epochs > 0 and phase in (None, PHASE_HEAD):
            start = epochs_done if phase == PHASE_HEAD else 0
            if phase == PHASE_HEAD and phase_done:
                start = config.head_epochs
            if self.use_cache:
                self.head_on_cache(start, state if phase == PHASE_HEAD else None)
            else:
                self.fit_full(PHASE_HEAD, config.head_epochs, config.head_lr, start, state if phase == PHASE_HEAD else None)
            self.end_head_phase()
        elif phase == PHASE_FINE_TUNE and state:
            self.load_full_checkpoint(state)

        # Phase 2: fine-tuning.
        if config.fine_tune_epochs > 0 and not self.cancelled:
            start = epochs_done if phase == PHASE_FINE_TUNE else 0
            if phase == PHASE_FINE_TUNE and phase_done:
                start = config.fine_tune_epochs
            self.set_fine_tune_trainable(state if phase == PHASE_FINE_TUNE else None)
            self.frozen_summary = self.describe_freezing(fine_tune=True)
            if self.base_trainable_params() == 0:
                self.log("fine-tuning with no trainable base layer: only the head keeps learning", "warning")
            self.fit_full(
                PHASE_FINE_TUNE,
                config.fine_tune_epochs,
                config.fine_tune_lr,
                start,
                state if phase == PHASE_FINE_TUNE else None,
            )

        return self.finish()

    def describe_freezing(self, fine_tune: bool = False) -> str:
        base_total = int(sum(int(np.prod(w.shape)) for w in self.base_layer.weights))
        trainable = self.base_trainable_params()
        head = int(sum(int(np.prod(w.shape)) for w in self.head_layer.trainable_weights))
        where = "fine-tune" if fine_tune else "head phase"
        if trainable == 0:
            how = "base frozen" + (" (cached features)" if getattr(self, "use_cache", False) and not fine_tune else "")
        else:
            how = f"{trainable:,} of {base_total:,} base parameters trainable"
        return f"{where}: {how}; head {head:,} parameters"

    # -- checkpoints -------------------------------------------------------------------------
    def restore_progress(self, state: dict[str, Any]) -> None:
        self.progress.run_epoch = int(state.get("run_epoch", 0))
        self.progress.global_step = int(state.get("global_step", 0))
        self.progress.train_seconds = float(state.get("train_seconds", 0.0))
        hist = state.get("history") or {}
        self.progress.epochs = list(hist.get("epochs", []))
        self.progress.batches = list(hist.get("batches", []))
        self.created = state.get("created")
        for s in state.get("skipped", []):
            self.skip_log.add(s["path"], s["reason"])
        self.skip_log.drain()

    def restore_best(self, state: dict[str, Any]) -> None:
        best = state.get("best") or {}
        if best.get("file") and (self.ckpt_dir / best["file"]).is_file():
            self.best.best_loss = float(best.get("val_loss", math.inf))
            self.best.best_file = best["file"]
            self.best.best_kind = best.get("kind", "full")
            self.best.best_run_epoch = int(best.get("run_epoch", 0))
            self.best.best_weights = load_arrays(self.ckpt_dir / best["file"])
        self.best.wait = int(state.get("wait", 0))

    def checkpoint(
        self, *, phase: str, epochs_done: int, phase_done: bool, model: Any, kind: str, improved: bool
    ) -> None:
        run_epoch = self.progress.run_epoch
        weights_file = f"{phase}-e{run_epoch:04d}.npz"
        opt_file = f"{phase}-e{run_epoch:04d}-opt.npz"
        save_arrays(self.ckpt_dir / weights_file, model.get_weights())
        if model.optimizer is not None and model.optimizer.built:
            save_arrays(self.ckpt_dir / opt_file, optimizer_arrays(model.optimizer))
        else:
            opt_file = ""
        if improved:
            self.best.best_file = weights_file
        self.write_checkpoint_state(
            phase=phase, epochs_done=epochs_done, phase_done=phase_done, weights=weights_file, opt=opt_file, kind=kind
        )

    def write_checkpoint_state(
        self, *, phase: str, epochs_done: int, phase_done: bool, weights: str, opt: str, kind: str
    ) -> None:
        b = self.best
        write_state(
            self.ckpt_dir,
            {
                "phase": phase,
                "epochs_done": epochs_done,
                "phase_done": phase_done,
                "run_epoch": self.progress.run_epoch,
                "global_step": self.progress.global_step,
                "train_seconds": self.seconds_so_far(),
                "created": getattr(self, "created", None),
                "weights": weights,
                "optimizer": opt,
                "kind": kind,
                "best": {"val_loss": b.best_loss, "file": b.best_file, "kind": b.best_kind, "run_epoch": b.best_run_epoch}
                if b.best_file
                else None,
                "wait": b.wait,
                "history": self.progress.history(),
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skip_log.all()],
                "trainable": getattr(self, "fine_tune_flags", None) if phase == PHASE_FINE_TUNE else None,
            },
        )
        keep = {weights, opt, b.best_file or ""} | self.extra_ckpt_files
        prune_checkpoints(self.ckpt_dir, keep)
        write_json(self.run_dir / run_folder.HISTORY_FILE, self.progress.history())

    def on_epoch(self, *, phase: str, epochs: int, model: Any, kind: str) -> Callable[[int, dict[str, Any]], None]:
        def handle(epoch: int, record: dict[str, Any]) -> None:
            improved = self.best.update(record.get("val_loss"), model.get_weights, kind, self.progress.run_epoch)
            stop = self.best.should_stop()
            if stop and epoch + 1 < epochs:
                model.stop_training = True
                self.log(f"early stopping after {epoch + 1} epoch(s) of {phase}: validation loss stopped improving")
            self.checkpoint(
                phase=phase,
                epochs_done=epoch + 1,
                phase_done=stop or epoch + 1 >= epochs,
                model=model,
                kind=kind,
                improved=improved,
            )

        return handle

    def load_full_checkpoint(self, state: dict[str, Any]) -> None:
        weights = state.get("weights")
        if weights and (self.ckpt_dir / weights).is_file():
            self.model.set_weights(load_arrays(self.ckpt_dir / weights))

    # -- phase 1 on cached features ------------------------------------------------------------
    def cache_description(self) -> dict[str, Any]:
        from tlstudio.core.models.catalogue import feature_model
        from tlstudio.core.train.feature_cache import weights_digest

        config = self.config
        assert config is not None
        self.feature_model = feature_model(self.model)
        return {
            "base": config.base_model_path and os.path.abspath(config.base_model_path) or config.base,
            "cut_layer": config.cut_layer,
            "alpha": config.alpha,
            "weights": config.weights if config.weights in ("imagenet", "none") else os.path.abspath(config.weights),
            "weights_digest": weights_digest(self.feature_model.get_weights()),
            "input_size": self.size,
            "resize_policy": config.resize_policy,
            "pooling": config.pooling,
            "layers": [type(layer).__name__ for layer in self.feature_model.layers],
        }

    def fill_cache(self, splits: list[str]) -> None:
        import tensorflow as tf

        from tlstudio.core.train.feature_cache import FeatureCache, file_key, model_key

        config = self.config
        assert config is not None
        desc = self.cache_description()
        cache = FeatureCache(model_key(desc), description=desc)
        entries: list[tuple[str, int, str]] = []  # (split, index in the FileSet, file key)
        for name in splits:
            fs = self.files[name]
            for i, (abs_path, rel) in enumerate(zip(fs.abs_paths, fs.rel_paths, strict=True)):
                if rel in self.skip_log:
                    continue
                try:
                    st = os.stat(abs_path)
                except OSError:
                    self.skip_log.add(rel, "file not found")
                    continue
                entries.append((name, i, file_key(abs_path, st.st_size, st.st_mtime_ns)))
        total = len(entries)
        self.emit(PhaseStarted(phase=PHASE_CACHING, epochs=0, steps_per_epoch=total))
        self.drain_skips()
        found = cache.lookup([k for _, _, k in entries])
        hits = len(found)
        self.cache_hits = hits
        self.emit(CacheProgress(done=hits, total=total, hits=hits))
        misses = [e for e in entries if e[2] not in found]
        if misses:
            self.log(f"computing features of {len(misses)} image(s) with the frozen base ({hits} from the cache)")
            subset = FileSet(
                [self.files[s].abs_paths[i] for s, i, _ in misses],
                [self.files[s].rel_paths[i] for s, i, _ in misses],
                np.zeros(len(misses), dtype=np.int32),
            )
            ds = make_dataset(
                subset,
                image_size=self.size,
                resize_policy=config.resize_policy,
                batch_size=max(32, int(config.batch_size)),
                skip_log=self.skip_log,
            )
            spec = tf.TensorSpec((None, self.size, self.size, 3), tf.float32)
            fm = self.feature_model
            fn = tf.function(lambda x: fm(x, training=False), input_signature=[spec])
            pending_keys: list[str] = []
            pending: list[np.ndarray] = []
            done = hits
            pos = 0
            try:
                for images, _, w in ds:
                    if self.cancel.is_set():
                        raise Cancelled("training was cancelled while computing features")
                    feats = compute_features(fn, images)
                    ok = np.asarray(w) > 0
                    for j in range(len(ok)):
                        key = misses[pos + j][2]
                        if ok[j]:
                            found[key] = feats[j]
                            pending_keys.append(key)
                            pending.append(feats[j])
                    pos += len(ok)
                    done += len(ok)
                    self.cache_computed += int(ok.sum())
                    self.emit(CacheProgress(done=done, total=total, hits=hits))
                    self.drain_skips()
                    if len(pending_keys) >= CACHE_FLUSH:
                        cache.store(pending_keys, np.stack(pending))
                        pending_keys, pending = [], []
            finally:
                if pending_keys:
                    cache.store(pending_keys, np.stack(pending))
        for name in splits:
            rows, labels, kept = [], [], []
            fs = self.files[name]
            for s, i, k in entries:
                if s == name and k in found:
                    rows.append(found[k])
                    labels.append(fs.labels[i])
                    kept.append(i)
            dim = int(self.feature_model.outputs[0].shape[-1])
            x = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
            self.cached[name] = (x, np.asarray(labels, dtype=np.int32), kept)

    def drain_skips(self) -> None:
        for s in self.skip_log.drain():
            self.emit(FileSkipped(path=s.path, reason=s.reason))

    def head_on_cache(self, start: int, state: dict[str, Any] | None) -> None:
        import tensorflow as tf

        from tlstudio.core.models.head import build_head

        config = self.config
        assert config is not None
        self.start_clock()
        splits = ["train", "val"] + (["test"] if config.fine_tune_epochs == 0 and len(self.files["test"]) else [])
        self.fill_cache(splits)
        k = len(self.classes)
        x, y, _ = self.cached["train"]
        xv, yv, _ = self.cached["val"]
        if len(x) == 0 or len(xv) == 0:
            raise TrainingError("no training or validation image could be read")
        with self.strategy.scope():
            head = build_head(int(x.shape[1]), config, k)
        zero_output_layer(head)
        self.head_model = head
        self.compile(head, config.head_lr)
        if state and start > 0 and state.get("kind") == "head":
            head.set_weights(load_arrays(self.ckpt_dir / state["weights"]))
            if state.get("optimizer") and (self.ckpt_dir / state["optimizer"]).is_file():
                with self.strategy.scope():
                    restore_optimizer(head.optimizer, head.trainable_variables, load_arrays(self.ckpt_dir / state["optimizer"]))
        w = self.sample_weight_per_class[y]
        train_ds = (
            tf.data.Dataset.from_tensor_slices((x, np.eye(k, dtype=np.float32)[y], w))
            .shuffle(len(x), seed=int(config.seed), reshuffle_each_iteration=True)
            .batch(int(config.batch_size))
            .prefetch(tf.data.AUTOTUNE)
        )
        smoothing = float(config.label_smoothing)
        target = np.eye(k, dtype=np.float64)[yv] * (1.0 - smoothing) + smoothing / k

        def validate() -> tuple[float, float]:
            # One eager call of the small head: cheaper than tracing Keras's test function.
            probs = np.asarray(head(xv, training=False), dtype=np.float64)
            loss = -np.sum(target * np.log(np.clip(probs, 1e-7, 1.0)), axis=1).mean()
            return float(loss), float((probs.argmax(axis=1) == yv).mean())
        steps = math.ceil(len(x) / int(config.batch_size))
        self.emit(PhaseStarted(phase=PHASE_HEAD, epochs=int(config.head_epochs), steps_per_epoch=steps))
        if start < config.head_epochs:
            bridge = make_bridge(
                phase=PHASE_HEAD,
                epochs=int(config.head_epochs),
                steps=steps,
                emit=self.emit,
                cancel=self.cancel,
                progress=self.progress,
                skip_log=self.skip_log,
                on_epoch=self.on_epoch(phase=PHASE_HEAD, epochs=int(config.head_epochs), model=head, kind="head"),
                validate=validate,
            )
            if self.strategy.num_replicas_in_sync == 1:
                import keras

                fit_small_model(
                    head,
                    train_ds,
                    epochs=int(config.head_epochs),
                    initial_epoch=start,
                    callback=bridge,
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
                )
            else:
                head.fit(
                    train_ds,
                    epochs=int(config.head_epochs),
                    initial_epoch=start,
                    callbacks=[bridge],
                    shuffle=False,
                    verbose=0,
                )
            self.cancelled = self.cancelled or bridge.interrupted
        self.stop_clock()

    # -- end-to-end phases ---------------------------------------------------------------------
    def datasets(self, phase: str) -> tuple[Any, Any, int]:
        import tensorflow as tf

        config = self.config
        assert config is not None
        k = len(self.classes)
        train_fs, val_fs = self.files["train"], self.files["val"]
        train = make_dataset(
            train_fs,
            image_size=self.size,
            resize_policy=config.resize_policy,
            batch_size=int(config.batch_size),
            shuffle=True,
            seed=int(config.seed) + (1 if phase == PHASE_FINE_TUNE else 0),
            sample_weights=self.sample_weight_per_class[train_fs.labels],
            skip_log=self.skip_log,
            augment=self.augmenter,
        )
        val = make_dataset(
            val_fs,
            image_size=self.size,
            resize_policy=config.resize_policy,
            batch_size=int(config.batch_size),
            skip_log=self.skip_log,
        )

        def onehot(images: Any, labels: Any, weights: Any) -> tuple[Any, Any, Any]:
            return images, tf.one_hot(labels, k), weights

        steps = math.ceil(len(train_fs) / int(config.batch_size))
        return train.map(onehot), val.map(onehot), steps

    def fit_full(self, phase: str, epochs: int, lr: float, start: int, state: dict[str, Any] | None) -> None:
        self.compile(self.model, lr)
        if state and start > 0 and state.get("kind") == "full":
            self.model.set_weights(load_arrays(self.ckpt_dir / state["weights"]))
            if state.get("optimizer") and (self.ckpt_dir / state["optimizer"]).is_file():
                with self.strategy.scope():
                    ok = restore_optimizer(
                        self.model.optimizer,
                        self.model.trainable_variables,
                        load_arrays(self.ckpt_dir / state["optimizer"]),
                    )
                if not ok:
                    self.log("the optimizer state could not be restored; it starts afresh", "warning")
        train_ds, val_ds, steps = self.datasets(phase)
        self.emit(PhaseStarted(phase=phase, epochs=int(epochs), steps_per_epoch=steps))
        if start >= epochs:
            return
        self.start_clock()
        bridge = make_bridge(
            phase=phase,
            epochs=int(epochs),
            steps=steps,
            emit=self.emit,
            cancel=self.cancel,
            progress=self.progress,
            skip_log=self.skip_log,
            on_epoch=self.on_epoch(phase=phase, epochs=int(epochs), model=self.model, kind="full"),
        )
        try:
            self.model.fit(
                train_ds, validation_data=val_ds, epochs=int(epochs), initial_epoch=start, callbacks=[bridge],
                shuffle=False, verbose=0,
            )
        finally:
            self.stop_clock()
        self.cancelled = self.cancelled or bridge.interrupted

    def end_head_phase(self) -> None:
        """Put the best head (or whole model) of phase 1 into the classifier and checkpoint that."""
        config = self.config
        assert config is not None
        b = self.best
        if b.best_weights is not None:
            if b.best_kind == "head":
                self.head_layer.set_weights(b.best_weights)
            else:
                self.model.set_weights(b.best_weights)
        elif self.use_cache and getattr(self, "head_model", None) is not None:
            self.head_layer.set_weights(self.head_model.get_weights())
        if b.best_kind == "head" or b.best_weights is None:
            # From here on the best weights are those of the whole classifier.
            if b.best_weights is not None:
                b.best_weights = [np.array(w, copy=True) for w in self.model.get_weights()]
                b.best_kind = "full"
        if config.fine_tune_epochs > 0 and not self.cancelled:
            name = "head-final.npz"
            save_arrays(self.ckpt_dir / name, self.model.get_weights())
            if b.best_weights is not None:
                b.best_file = name
            self.extra_ckpt_files = {name}
            self.write_checkpoint_state(
                phase=PHASE_FINE_TUNE, epochs_done=0, phase_done=False, weights=name, opt="", kind="full"
            )
            b.wait = 0

    # -- the end -------------------------------------------------------------------------------
    def restore_best_final(self) -> None:
        b = self.best
        if b.best_weights is None:
            return
        if b.best_kind == "head":
            self.head_layer.set_weights(b.best_weights)
        else:
            self.model.set_weights(b.best_weights)

    def export_model(self) -> Path:
        target = self.run_dir / run_folder.MODEL_FILE
        model = self.model
        if self._policy_to_restore is not None:
            # Trained in mixed precision: save a float32 twin, which runs anywhere.
            import keras

            from tlstudio.core.models import catalogue as base_models
            keras.mixed_precision.set_dtype_policy("float32")
            twin = base_models.build_classifier(self.config, len(self.classes))  # type: ignore[arg-type]
            twin.set_weights(model.get_weights())
            model = twin
        with atomic_path(target) as tmp:
            model.save(tmp)
        return target

    def evaluate(self) -> dict[str, Any]:
        from tlstudio.core.evaluate import build_evaluation, evaluate_predictions, predict_probs

        config = self.config
        assert config is not None
        names = ["val"] + (["test"] if len(self.files["test"]) else [])
        total = sum(len(self.files[n]) for n in names)
        self.emit(PhaseStarted(phase=PHASE_EVALUATING, epochs=0, steps_per_epoch=total))
        results: dict[str, dict[str, Any]] = {}
        last_phase_cached = self.use_cache and config.fine_tune_epochs == 0
        for name in names:
            fs = self.files[name]
            if last_phase_cached and name in self.cached:
                x, y, kept = self.cached[name]
                probs = np.asarray(self.head_layer.predict(x, verbose=0, batch_size=1024), dtype=np.float32) if len(x) else np.zeros((0, len(self.classes)), np.float32)
            else:
                ds = make_dataset(
                    fs,
                    image_size=self.size,
                    resize_policy=config.resize_policy,
                    batch_size=max(32, int(config.batch_size)),
                    skip_log=self.skip_log,
                )
                probs, y, kept_arr = predict_probs(self.model, ds)
                kept = [int(i) for i in kept_arr]
                self.drain_skips()
            results[name] = evaluate_predictions(y, probs, self.classes, [fs.rel_paths[i] for i in kept])
        return build_evaluation(self.classes, str(self.root), results)

    def finish(self) -> TrainResult:
        status = run_folder.STATUS_CANCELLED if self.cancelled else run_folder.STATUS_FINISHED
        if self.cancelled:
            self.log("training was cancelled: keeping the best weights so far")
        self.restore_best_final()
        self.drain_skips()
        model_path = self.export_model()
        evaluation = self.evaluate()
        for w in evaluation.get("warnings", []):
            self.log(w, "warning")
        val_acc = evaluation["splits"]["val"]["accuracy"] if evaluation["splits"]["val"]["n"] else None
        test = evaluation["splits"].get("test")
        test_acc = test["accuracy"] if test and test["n"] else None
        skipped = self.scan_skipped + [{"path": s.path, "reason": s.reason} for s in self.skip_log.all()]
        write_json(self.run_dir / run_folder.HISTORY_FILE, self.progress.history())
        write_json(self.run_dir / run_folder.EVALUATION_FILE, evaluation)
        write_json(self.run_dir / run_folder.SKIPPED_FILE, skipped)
        run_folder.write_summary(self.run_dir, self.summary(status, val_accuracy=val_acc, test_accuracy=test_acc))
        if status == run_folder.STATUS_FINISHED:
            prune_checkpoints(self.ckpt_dir, set())
        warnings = list(dict.fromkeys(self.warnings))
        result = TrainResult(
            run_dir=self.run_dir,
            status=status,
            model_path=model_path,
            val_accuracy=val_acc,
            test_accuracy=test_acc,
            epochs_run=self.progress.run_epoch,
            train_seconds=self.progress.train_seconds,
            warnings=warnings,
            cache_hits=self.cache_hits,
            cache_computed=self.cache_computed,
        )
        self.emit(
            TrainFinished(
                run_dir=str(self.run_dir),
                status=status,
                model_path=str(model_path),
                val_accuracy=val_acc,
                test_accuracy=test_acc,
                epochs_run=result.epochs_run,
                train_seconds=result.train_seconds,
                warnings=tuple(warnings),
            )
        )
        return result


def skips_from_json(items: list[dict[str, str]]) -> list[Skip]:
    return [Skip(i["path"], i["reason"]) for i in items]
