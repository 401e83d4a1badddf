"""Training: one call runs a whole transfer-learning run and leaves a run folder behind.

The plan of a run:

1. **caching** (augmentation off): the frozen base runs once per image and the pooled features go
   to the on-disk embedding cache (``cached_features``); cached images are not run again.
2. **head**: on the cached features, the "automatic" learning rate and dropout are chosen by a
   short search scored on validation (``head_search``), then the head trains to convergence
   (early stopping, best epoch kept), in seconds; with augmentation it trains end to end.
3. **fine_tune** (a budget given, or base blocks unfrozen: unfreezing always means fine-tuning,
   after the head has converged): the trainable blocks and the head train at about 1/100 of the
   head's learning rate, with early stopping; BatchNorm layers stay in inference mode. The run
   keeps whichever of "head only" and "after fine-tuning" did better on validation.
4. **evaluating**: metrics on the validation and test splits (from the cached features when the
   head-only classifier is kept), a 95 % interval, and the "not sure" threshold chosen on validation.

This module holds the phases only; their parts live beside it: ``run_data``, ``device``,
``freezing``, ``cached_features``, ``head_search``, ``head_fit``, ``checkpoints``, ``callbacks``, ``summary``.
Completed epochs are checkpointed (a head on cached features every 2 s) for ``resume=True``.
Cancelling (``cancel.set()``) stops within one batch, keeping the best weights so far.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import run_folder, run_lock
from tlstudio.core.config import (
    AUTO_HEAD_EPOCH_CAP,
    AUTO_HEAD_RELATIVE_DELTA,
    DEFAULT_FINE_TUNE_EPOCHS,
    FINE_TUNE_LR_FACTOR,
    TrainConfig,
)
from tlstudio.core.data.pipeline import SkipLog, make_augmenter
from tlstudio.core.errors import Interrupted, TlstudioError
from tlstudio.core.evaluate import reliability_warnings, run_threshold
from tlstudio.core.events import (
    PHASE_CACHING,
    PHASE_EVALUATING,
    PHASE_FINE_TUNE,
    PHASE_HEAD,
    Event,
    FileSkipped,
    LogMessage,
    PhaseStarted,
    RunStarted,
    TrainFailed,
    TrainFinished,
    quitting,
)
from tlstudio.core.train import freezing
from tlstudio.core.train.cached_features import start_prefetch
from tlstudio.core.train.checkpoints import BestTracker, Checkpointer, RunProgress, fine_tuning_did_better
from tlstudio.core.train.engines import Engines, fit_elsewhere
from tlstudio.core.train.head_fit import zero_output_layer
from tlstudio.core.train.result import TrainResult
from tlstudio.core.train.run_data import TrainingError, class_weights_for, image_datasets, prepare_data
from tlstudio.core.train.summary import StageClock, run_summary, write_run_files

Emit = Callable[[Event], None]
#: The settings a run can choose itself (``TrainConfig.auto_<name>``).
AUTO_NAMES = ("head_lr", "dropout", "epochs", "fine_tune_lr", "threshold")


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
    engines: Engines | None = None,
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
        TrainFinished, or TrainFailed before the exception is raised. BatchEnded and
        CacheProgress are rate-limited (about ten a second; the first and last batch of every
        epoch always come).
    cancel
        Set it to stop within one batch; the run then finishes with status "cancelled", the best
        weights so far and a complete run folder. A ``StopRequest`` stopped with reason "quit" (the app
        is closing) leaves it "interrupted" at its last completed epoch instead, and raises ``Interrupted``.
    scan
        The :class:`~tlstudio.core.data.scan.DatasetScan` of ``config.data_dir`` when already made.
    resume
        Continue the interrupted run in ``run_dir`` from its last completed epoch.
    engines
        Where missing features are computed and fine-tuning runs (None: here; ``tlstudio.cluster`` makes Ray ones).

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
    trainer.engines = engines or trainer.engines
    recorded = False
    try:
        # One writer per folder; a new run goes only into a new or empty folder and leaves none behind
        # when it fails before its first epoch; a signal leaves it "interrupted" (tlstudio.core.run_lock).
        with run_lock.writing(Path(run_dir), resume=resume):
            try:
                return trainer.run()
            except TlstudioError as exc:
                recorded = True
                trainer.record_failure(exc)
                raise
            except Exception as exc:
                recorded = True
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                message = f"training failed: {type(exc).__name__}: {first}"
                trainer.record_failure(TrainingError(message), tb=traceback.format_exc())
                raise TrainingError(message) from exc
    except TlstudioError as exc:
        if not recorded:  # the folder was refused before training started
            trainer.record_failure(exc)
        raise
    finally:
        if trainer.prefetch is not None:
            trainer.prefetch.stop()
        if trainer.device is not None:
            trainer.device.restore()


class _Trainer:
    engines = Engines()  # where features and fine-tuning are computed: here unless train() is given others
    def __init__(
        self, config: TrainConfig | None, run_dir: Path, emit: Emit, cancel: threading.Event, scan: Any, resume: bool
    ) -> None:
        self.config, self.run_dir, self.emit, self.cancel, self.scan, self.resume = config, run_dir, emit, cancel, scan, resume
        self.progress, self.skip_log = RunProgress(), SkipLog()
        self.warnings: list[str] = []
        self.cancelled = self.started_config = self.use_cache = False
        self.size: int | None = None
        # Device, RunData, CachedSplits, the standalone head, ImagePrefetch
        self.device: Any = None
        self.data = self.cached = self.head_model = self.prefetch = None  # type: Any
        self.frozen_summary = self.kept = ""  # kept: "head only" | "after fine-tuning"
        self.outcome: dict[str, Any] = {}  # what finish() adds to run.json
        self.settings: dict[str, Any] = {}  # the values trained with (chosen or given)
        self.search: dict[str, Any] | None = None
        self.ft_epochs = 0
        self.best = BestTracker(patience=3)
        self.clock = StageClock()  # wall seconds per stage, in run.json
        self.ckpt = Checkpointer(run_dir, self.progress, self.best, self.skip_log, self.progress.seconds)

    # -- events and bookkeeping --------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        if level == "warning":
            self.warnings.append(text)
        self.emit(LogMessage(text=text, level=level))

    def drain_skips(self) -> None:
        for s in self.skip_log.drain():
            self.emit(FileSkipped(path=s.path, reason=s.reason))

    def record_failure(self, exc: TlstudioError, tb: str | None = None) -> None:
        status = run_folder.failure_status(exc, quitting(self.cancel))
        try:
            if self.started_config:
                if tb:
                    run_folder.write_error_log(self.run_dir, tb)
                summary = self.summary(status)
                summary.update({} if status == run_folder.STATUS_INTERRUPTED else {"error": str(exc)})
                run_folder.write_summary(self.run_dir, summary)
        except Exception:  # noqa: BLE001 - reporting the original error matters more
            pass
        self.emit(TrainFailed(message=str(exc), run_dir=str(self.run_dir)))

    def summary(self, status: str, **extra: Any) -> dict[str, Any]:
        return run_summary(self, status, **extra)

    # -- preparation -------------------------------------------------------------------------
    def prepare(self) -> TrainConfig:
        """The run's own configuration and data; writes config.json and run.json for a new run."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        saved = None
        if self.resume:
            config, classes, split_paths = run_folder.read_run_config(self.run_dir)
            summary = run_folder._read_json(self.run_dir / run_folder.RUN_FILE, {}) or {}
            if summary.get("status") == run_folder.STATUS_FINISHED:
                raise TrainingError(f"{self.run_dir} has already finished; start a new run instead")
            self.config = config
            saved = (classes, split_paths)
        else:
            if self.config is None:
                raise TrainingError("no training configuration given")
            if (self.run_dir / run_folder.CONFIG_FILE).exists():
                raise TrainingError(f"{self.run_dir} already holds a run; choose another output folder or resume it")
            self.config = TrainConfig.from_dict(self.config.to_dict())  # a private copy
        config = self.config
        if self.scan is not None and not config.data_dir:
            config.data_dir = str(self.scan.root)
        if not config.data_dir:
            raise TrainingError("no dataset folder given")
        config.data_dir = str(Path(config.data_dir).expanduser().resolve())
        config.validate()
        self.data = prepare_data(
            config, scan=self.scan, skip_log=self.skip_log, log=self.log, cancel=self.cancel, saved=saved
        )
        if not self.resume:
            run_folder.write_run_config(self.run_dir, config, self.data.classes, self.data.split_paths)
            run_folder.write_summary(self.run_dir, self.summary(run_folder.STATUS_RUNNING))
        self.started_config = True  # a resume refused before this point leaves run.json as it was
        return config

    def build(self, config: TrainConfig) -> None:
        import keras

        from tlstudio.core.models import catalogue

        keras.utils.set_random_seed(int(config.seed))
        with self.device.scope():
            self.model = catalogue.build_classifier(config, len(self.data.classes), cancel=self.cancel)
        self.size = int(self.model.inputs[0].shape[1])
        self.head_layer = self.model.get_layer("head")
        zero_output_layer(self.head_layer)

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        from tlstudio.core.train.device import setup_device

        with self.clock("data"):
            config = self.prepare()
        if config.use_cache and not config.augment.enabled and config.head_epochs > 0 and not self.resume:
            self.prefetch = start_prefetch(config, self.data.files)  # the second core decodes while TensorFlow loads
        state = self.ckpt.read() if self.resume else None
        if state:
            self.ckpt.restore_progress(state)
        self.augmenter = make_augmenter(config, int(config.seed))
        with self.clock("tensorflow"):
            self.device = setup_device()
        if self.device.on_gpu:
            self.log(f"training on {self.device.gpus} GPU(s) with mixed precision")
        with self.clock("build"):
            self.build(config)
        freezing.set_head_phase_trainable(self.model, config)
        self.ft_epochs = 0
        if freezing.fine_tune_wanted(self.model, config):
            self.ft_epochs = int(config.fine_tune_epochs) or DEFAULT_FINE_TUNE_EPOCHS
            if not config.fine_tune_epochs:
                self.log(f"some base blocks are unfrozen: they are fine-tuned after the classifier has learned "
                         f"(up to {self.ft_epochs} epochs)")
        self.use_cache = bool(config.use_cache and self.augmenter is None and config.head_epochs > 0)
        self.head_epochs = AUTO_HEAD_EPOCH_CAP if self.use_cache and config.is_auto("epochs") else int(config.head_epochs)
        auto = [n for n in ("fine_tune_lr", "threshold") if config.is_auto(n)]
        self.settings = dict(self.ckpt.notes.get("settings") or {"head_lr": float(config.head_lr), "automatic": auto})
        self.search = self.ckpt.notes.get("search")
        phases = ([PHASE_CACHING] if self.use_cache else []) + ([PHASE_HEAD] if config.head_epochs > 0 else [])
        phases += ([PHASE_FINE_TUNE] if self.ft_epochs > 0 else []) + [PHASE_EVALUATING]
        files = self.data.files
        self.emit(RunStarted(
            run_dir=str(self.run_dir), classes=tuple(self.data.classes), num_train=len(files["train"]),
            num_val=len(files["val"]), num_test=len(files["test"]), phases=tuple(phases),
            total_epochs=int((self.head_epochs if config.head_epochs > 0 else 0) + self.ft_epochs),
            batch_size=int(config.batch_size),
        ))
        if self.data.scan_skipped:
            self.log(f"{len(self.data.scan_skipped)} file(s) were skipped by the scan (see {run_folder.SKIPPED_FILE})")
        if self.resume:
            self.log(f"resuming after {self.progress.run_epoch} completed epoch(s)")
        if not self.use_cache and config.use_cache and config.head_epochs > 0:
            self.log("training end to end without the embedding cache: augmentation is on")
        self.sample_weight_per_class = class_weights_for(
            self.data.files["train"].labels, self.data.classes, config.class_weights, self.log
        )
        self.best.patience, self.best.enabled = int(config.patience), bool(config.early_stopping)
        if state:
            self.ckpt.restore_best(state)
        self.frozen_summary = freezing.describe_freezing(self.model, cached=self.use_cache)

        phase = state.get("phase") if state else None
        phase_done = bool(state.get("phase_done")) if state else False
        epochs_done = int(state.get("epochs_done", 0)) if state else 0

        # Phase 1: the head.
        if config.head_epochs > 0 and phase in (None, PHASE_HEAD):
            start = epochs_done if phase == PHASE_HEAD else 0
            if phase == PHASE_HEAD and phase_done:
                start = self.head_epochs
            head_state = state if phase == PHASE_HEAD else None
            if self.use_cache:
                self.head_on_cache(config, start, head_state)
            else:
                self.fit_full(PHASE_HEAD, config.head_epochs, config.head_lr, start, head_state)
            self.end_head_phase(config)
        elif phase == PHASE_FINE_TUNE and state:
            self.ckpt.load_weights(self.model, state)

        # Phase 2: fine-tuning.
        if self.ft_epochs > 0 and not self.cancelled:
            start = epochs_done if phase == PHASE_FINE_TUNE else 0
            if phase == PHASE_FINE_TUNE and phase_done:
                start = self.ft_epochs
            ft_state = state if phase == PHASE_FINE_TUNE else None
            self.ckpt.fine_tune_flags = freezing.set_fine_tune_trainable(
                self.model, config, (ft_state or {}).get("trainable")
            )
            self.frozen_summary = freezing.describe_freezing(self.model, fine_tune=True)
            if freezing.base_trainable_params(self.model) == 0:
                self.log("fine-tuning with no trainable base layer: only the new classifier keeps learning", "warning")
            lr = self.settings["head_lr"] * FINE_TUNE_LR_FACTOR if config.is_auto("fine_tune_lr") else config.fine_tune_lr
            self.settings["fine_tune_lr"] = float(lr)
            self.best.patience, self.best.relative_delta = int(config.patience), 0.0
            self.fit_full(PHASE_FINE_TUNE, self.ft_epochs, lr, start, ft_state)

        return self.finish(config)

    # -- phase 1 on cached features ------------------------------------------------------------
    def head_on_cache(self, config: TrainConfig, start: int, state: dict[str, Any] | None) -> None:
        from tlstudio.core.models.catalogue import feature_model
        from tlstudio.core.train.cached_features import fill_cache
        from tlstudio.core.train.head_fit import choose_head_settings, set_dropout, train_head_on_features

        self.progress.start_clock()
        files = self.data.files
        splits = ["train", "val"] + (["test"] if len(files["test"]) else [])
        assert self.size is not None
        with self.clock("features"):
            self.cached = fill_cache(
                files, splits, feature_model=feature_model(self.model), config=config, size=self.size,
                skip_log=self.skip_log, emit=self.emit, log=self.log, cancel=self.cancel, engine=self.engines.features,
                prefetch=self.prefetch if self.prefetch is not None and self.prefetch.size == self.size else None,
            )
        if self.prefetch is not None:
            self.prefetch.stop()
        with self.clock("search"):
            settings, self.search = choose_head_settings(
                self.cached, config, num_classes=len(self.data.classes), class_weights=self.sample_weight_per_class,
                cancel=self.cancel, log=self.log,
            )
        self.settings = {**settings.to_json(), "automatic": [n for n in AUTO_NAMES if config.is_auto(n)]}
        self.ckpt.notes.update(settings=self.settings, search=self.search)  # for a resume
        self.best.patience, self.best.relative_delta = settings.patience, AUTO_HEAD_RELATIVE_DELTA if config.is_auto("epochs") else 0.0
        set_dropout(self.head_layer, settings.dropout)
        with self.clock(PHASE_HEAD):
            head, interrupted = train_head_on_features(
                self.cached, config, settings, num_classes=len(self.data.classes), device=self.device,
                class_weights=self.sample_weight_per_class, start=start, state=state, ckpt=self.ckpt,
                emit=self.emit, cancel=self.cancel, skip_log=self.skip_log, log=self.log,
            )
        self.head_model, self.cancelled = head, self.cancelled or interrupted
        if interrupted:  # its last epoch's state too, before the phase's end turns the best into the classifier's
            self.ckpt.flush()
        self.progress.stop_clock()

    def fit_full(self, phase: str, epochs: int, lr: float, start: int, state: dict[str, Any] | None) -> None:
        from tlstudio.core.train.callbacks import CancelOnRequest, TrainingEvents
        from tlstudio.core.train.device import compile_model

        config = self.config
        assert config is not None
        compile_model(self.model, config, lr, self.device)
        if state and start > 0 and state.get("kind") == "full":
            self.ckpt.restore_model(self.model, state, self.device.strategy, self.log)
        assert self.size is not None
        train_ds, val_ds, steps = image_datasets(
            self.data.files, config, size=self.size, phase_seed=int(config.seed) + (1 if phase == PHASE_FINE_TUNE else 0),
            class_weights=self.sample_weight_per_class, skip_log=self.skip_log, augmenter=self.augmenter,
        )
        self.emit(PhaseStarted(phase=phase, epochs=int(epochs), steps_per_epoch=steps))
        if start >= epochs:
            return
        self.progress.start_clock()
        events = TrainingEvents(
            phase=phase, emit=self.emit, cancel=self.cancel, progress=self.progress, skip_log=self.skip_log,
            on_epoch=self.ckpt.on_epoch(phase=phase, epochs=int(epochs), model=self.model, kind="full", log=self.log),
            steps=steps, epochs=int(epochs),
        )
        stopper = CancelOnRequest(self.cancel)
        tuner = self.engines.fine_tuner if phase == PHASE_FINE_TUNE else None  # a cluster's, or None: here
        fit = fit_elsewhere(tuner, self, config, lr=lr, steps=steps) if tuner is not None else self.model.fit
        try:
            with self.clock(phase):
                fit(train_ds, validation_data=val_ds, epochs=int(epochs), initial_epoch=start,
                    callbacks=[events, stopper], shuffle=False, verbose=0)
        finally:
            self.progress.stop_clock()
        self.cancelled = self.cancelled or stopper.interrupted

    def end_head_phase(self, config: TrainConfig) -> None:
        """Put the best head (or whole model) of phase 1 into the classifier, note its score, checkpoint it."""
        b = self.best
        if b.best_weights is not None:
            b.put_into(self.model, self.head_layer)
            record = next((e for e in self.progress.epochs if e["run_epoch"] == b.best_run_epoch), {})
            self.ckpt.notes["head_only"] = {
                "val_loss": b.best_loss, "val_accuracy": record.get("val_accuracy"), "run_epoch": b.best_run_epoch
            }
        elif self.use_cache and self.head_model is not None:
            self.head_layer.set_weights(self.head_model.get_weights())
        if b.best_weights is not None and b.best_kind == "head":
            # From here on the best weights are those of the whole classifier.
            b.best_weights = [np.array(w, copy=True) for w in self.model.get_weights()]
            b.best_kind = "full"
        if self.ft_epochs > 0 and not self.cancelled:
            self.ckpt.save_head_final(self.model.get_weights())

    def keep_better_phase(self, config: TrainConfig) -> str:
        """Load the weights the run keeps: "head only" or "after fine-tuning", whichever did better on validation."""
        ft_done = any(e["phase"] == PHASE_FINE_TUNE for e in self.progress.epochs)
        if ft_done and fine_tuning_did_better(self.progress, self.best, self.ckpt.notes.get("head_only")):
            self.best.put_into(self.model, self.head_layer)
            return "after fine-tuning"
        weights = self.ckpt.head_final() if self.ft_epochs else None
        if weights is not None:
            self.model.set_weights(weights)
            if ft_done:
                self.log("fine-tuning did not do better on the validation images: keeping the classifier from before it")
        else:
            self.best.put_into(self.model, self.head_layer)
        return "head only" if config.head_epochs > 0 else "after fine-tuning"

    # -- the end -------------------------------------------------------------------------------
    def evaluate(self, config: TrainConfig) -> dict[str, Any]:
        from tlstudio.core.evaluate import evaluate_files

        files = self.data.files
        names = ["val"] + (["test"] if len(files["test"]) else [])
        self.emit(PhaseStarted(phase=PHASE_EVALUATING, epochs=0, steps_per_epoch=sum(len(files[n]) for n in names)))
        # A frozen run ends with the head on the cached features: the base need not run again.
        cached = self.cached.arrays if self.use_cache and self.kept == "head only" and self.cached else {}
        assert self.size is not None
        evaluation = evaluate_files(
            self.model, {n: files[n] for n in names}, self.data.classes, str(self.data.root), image_size=self.size,
            resize_policy=config.resize_policy, batch_size=max(32, int(config.batch_size)), skip_log=self.skip_log,
            head=self.head_layer, features=cached,
        )
        self.drain_skips()
        return evaluation

    def finish(self, config: TrainConfig) -> TrainResult:
        from tlstudio.core.train.device import save_classifier

        if self.cancelled and quitting(self.cancel):  # closing the app: no model, no evaluation; the checkpoints stay
            raise Interrupted(f"interrupted; it resumes from its last completed epoch (--resume {self.run_dir})")
        status = run_folder.STATUS_CANCELLED if self.cancelled else run_folder.STATUS_FINISHED
        if self.cancelled:
            self.log("training was cancelled: keeping the best weights so far")
        self.kept = self.keep_better_phase(config)
        self.drain_skips()
        with self.clock("save"):
            model_path = save_classifier(self.model, config, len(self.data.classes), self.device, self.run_dir / run_folder.MODEL_FILE)
        with self.clock("evaluate"):
            evaluation = self.evaluate(config)
        val = evaluation["splits"]["val"]
        for w in [*evaluation.get("warnings", []), *reliability_warnings(val, self.data.classes)]:
            self.log(w, "warning")
        threshold = run_threshold(val, float(config.threshold) if not config.is_auto("threshold") else None)
        self.outcome = {
            "settings": self.settings, "search": self.search, "kept": self.kept,
            "head_only": self.ckpt.notes.get("head_only"), "threshold": threshold,
            "val_accuracy_ci95": val.get("accuracy_ci95"),
        }
        val_acc, test_acc = write_run_files(self, status, evaluation)
        if status == run_folder.STATUS_FINISHED:
            self.ckpt.finish()
        warnings = list(dict.fromkeys(self.warnings))
        hits, computed = (self.cached.hits, self.cached.computed) if self.cached is not None else (0, 0)
        result = TrainResult(
            run_dir=self.run_dir, status=status, model_path=model_path, val_accuracy=val_acc, test_accuracy=test_acc,
            epochs_run=self.progress.run_epoch, train_seconds=self.progress.train_seconds, warnings=warnings,
            cache_hits=hits, cache_computed=computed, settings=dict(self.settings), kept=self.kept,
            threshold=float(threshold["value"]),
        )
        self.emit(
            TrainFinished(
                run_dir=str(self.run_dir), status=status, model_path=str(model_path), val_accuracy=val_acc,
                test_accuracy=test_acc, epochs_run=result.epochs_run, train_seconds=result.train_seconds,
                warnings=tuple(warnings),
            )
        )
        return result
