"""The Train page: training settings in plain words, a Train button, live plots, progress and a log.

The run happens in the engine process (:class:`~tlstudio.workers.train_worker.TrainWorker` asks it); the page
only reacts to the worker's signals, queued to the GUI thread, so the window stays responsive.
"""
from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.config import ConfigError
from tlstudio.core.humanize import format_seconds
from tlstudio.gui import training_plan
from tlstudio.gui.run_records import INTERRUPTED, finished_record, interrupted_record
from tlstudio.gui.text import percent
from tlstudio.gui.widgets.plots import TrainingPlots
from tlstudio.gui.widgets.run_log import RunLog
from tlstudio.gui.widgets.train_controls import TrainControls
from tlstudio.gui.widgets.train_settings import TrainSettingsForm
from tlstudio.workers.base import WorkerHandle, registry, start_worker
from tlstudio.workers.train_worker import TrainWorker

PHASE_TITLES = {
    ev.PHASE_CACHING: "Caching features",
    ev.PHASE_HEAD: "Training the classifier",
    ev.PHASE_FINE_TUNE: "Fine-tuning",
    ev.PHASE_EVALUATING: "Evaluating",
}


class TrainPage(QWidget):
    """Training settings, the Train / Cancel buttons, live plots, progress and a log."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._handle: WorkerHandle | None = None
        self._worker: TrainWorker | None = None
        self.run_dir: Path | None = None
        self.last_run_dir: Path | None = None
        self.last_result: Any = None
        self.last_finished: ev.TrainFinished | None = None
        self.last_error: str | None = None
        self._run_info: ev.RunStarted | None = None
        self._phase: ev.PhaseStarted | None = None
        self._phase_t0 = 0.0
        self._run_t0 = 0.0
        self._epochs_done = 0
        self._last_batch: ev.BatchEnded | None = None
        self._last_progress_paint = 0.0
        self._skipped = 0

        self.settings = settings = TrainSettingsForm(state, self)
        scroll = QScrollArea(self)
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Up and down only: the column is never narrower than its content, so no setting is cut off.
        scroll.setMinimumWidth(settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())

        right = QWidget(self)
        rlayout = QVBoxLayout(right)
        rlayout.setContentsMargins(0, 0, 0, 0)
        self.controls = controls = TrainControls(right)
        self.train_button, self.cancel_button = controls.train_button, controls.cancel_button
        self.resume_button, self.open_folder_button = controls.resume_button, controls.open_folder_button
        self.context_label = controls.context_label
        self.train_button.clicked.connect(self.start_training)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume_training)
        self.open_folder_button.clicked.connect(self.open_run_folder)
        self.interrupted_run: Path | None = None  # a run the engine's death interrupted

        self.progress = QProgressBar(right)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.plan_label = QLabel(right)
        self.plan_label.setWordWrap(True)
        self.plan_label.setToolTip("What learns in each phase of the next run. The classifier is the new layer on "
                                   "top of the base model (the 'head'); fine-tuning also adjusts base layers.")
        self.status_label = QLabel("Ready to train.", right)
        self.status_label.setWordWrap(True)
        self.result_label = QLabel(right)
        self.result_label.setWordWrap(True)
        self.result_label.hide()

        self.plots = TrainingPlots(right)
        self.log = RunLog(right)
        lower = QSplitter(Qt.Orientation.Vertical, right)
        lower.addWidget(self.plots)
        lower.addWidget(self.log)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 1)

        rlayout.addWidget(controls)
        rlayout.addWidget(self.plan_label)
        rlayout.addWidget(self.progress)
        rlayout.addWidget(self.status_label)
        rlayout.addWidget(self.result_label)
        rlayout.addWidget(lower, 1)

        # A splitter, not a box layout: at the smallest window the two columns share the width instead
        # of being drawn over one another.
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([settings.sizeHint().width() + 24, 700])
        layout = QHBoxLayout(self)
        layout.addWidget(splitter)

        state.train_config_changed.connect(self._update_context)
        state.project_changed.connect(self._update_context)
        state.dataset_changed.connect(self._update_context)
        state.model_changed.connect(self._update_context)
        state.training_changed.connect(self._update_buttons)
        state.project_changed.connect(self.show_last_run)
        self._update_context()
        self.show_last_run()

    # --- context and buttons ---------------------------------------------------------------------
    def _update_context(self) -> None:
        self.plan_label.setText(training_plan.plan_text(self.state.train_config()))
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        running = self.is_training()
        reason = training_plan.cannot_train_reason(self.state)
        self.train_button.setEnabled(not running and not self.state.training and reason is None)
        self.train_button.setToolTip(reason or "Start training with these settings (Ctrl+Enter)")
        # Why Train is off, where the person looks before pressing it.
        self.context_label.setText(reason or training_plan.context_text(self.state))
        self.context_label.setStyleSheet("color: #c0392b;" if reason else "color: palette(mid);")
        self.cancel_button.setEnabled(running and not (self._worker is not None and self._worker.cancel_event.is_set()))
        self.settings.reset_button.setEnabled(not running)
        self.open_folder_button.setEnabled(self.last_run_dir is not None)

    def show_last_run(self) -> None:
        """After a project is opened: the curves and result of its last run, instead of "Not started"."""
        if self.is_training():
            return
        runs = self.state.project.runs
        self.plots.clear()
        self.last_run_dir = self.interrupted_run = None
        self.resume_button.hide()
        self.result_label.hide()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        if not runs:
            self._update_buttons()
            return
        from tlstudio.core.run_folder import load_run

        record = runs[-1]
        try:
            info = load_run(record.run_dir)
        except Exception as exc:  # a missing or broken run folder: say so instead of drawing nothing
            self.status_label.setText(f"The last run ({record.name or Path(record.run_dir).name}) cannot be read: "
                                      f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            self._update_buttons()
            return
        self.plots.show_history(info.history.get("epochs", []))
        self.last_run_dir = Path(record.run_dir)
        self.progress.setValue(1)
        self.progress.setFormat("Last run: " + (record.status or "finished"))
        name = record.name or self.last_run_dir.name
        if record.status == INTERRUPTED:  # stopped part-way: one click continues it
            self.interrupted_run = self.last_run_dir
            self.status_label.setText(f"Last run: {name} was stopped after {record.epochs_run} epoch(s); "
                                      "Resume continues it from its last checkpoint.")
        else:
            self.status_label.setText(f"Last run: {name}, validation accuracy {percent(record.val_accuracy)}.")
        self.resume_button.setVisible(self.interrupted_run is not None)
        self._update_buttons()

    # --- training --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        """True while a run's thread is alive (for the main window's close question)."""
        return self._handle is not None and self._handle.is_running()

    def start_training(self) -> bool:
        """Start a run with the current settings; False (with a message) when it cannot start."""
        if self.is_training() or self.state.training:
            return False
        config = self.state.train_config()
        reason = training_plan.cannot_train_reason(self.state)
        if reason:
            self._error(reason)
            return False
        try:
            config.validate()
            run_dir = Path(self.state.new_run_dir())
        except (ConfigError, OSError) as exc:
            self._error(str(exc) if isinstance(exc, ConfigError) else f"Cannot create a folder for the run: {exc}")
            return False
        return self._start(config, run_dir)

    def resume_training(self) -> bool:
        """Continue an interrupted run (the engine died, or the window was closed) from its last checkpoint."""
        unable = self.interrupted_run is None or self.is_training() or self.state.training
        return False if unable else self._start(None, self.interrupted_run, resume=True)

    def _start(self, config: Any, run_dir: Path, resume: bool = False) -> bool:
        self.run_dir, self.interrupted_run = run_dir, None
        self.resume_button.hide()
        self.last_result = self.last_finished = self.last_error = None
        self._run_info = self._phase = self._last_batch = None
        self._epochs_done = 0
        self._skipped = 0
        self._run_t0 = self._phase_t0 = time.monotonic()
        self.plots.clear()
        self.log.clear()
        self.result_label.hide()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self.status_label.setText("Starting: loading TensorFlow and the base model…")
        self._log(f"{'Resuming' if resume else 'Run folder:'} {self.run_dir}")

        worker = TrainWorker(config, self.run_dir, scan=self.state.scan, resume=resume, cluster=self.settings.cluster_address())
        worker.interrupted.connect(self._on_interrupted)
        for name in ("run_started", "phase_started", "cache_progress", "batch_ended", "epoch_ended", "file_skipped",
                     "log_message", "event"):
            getattr(worker, name).connect(getattr(self, f"_on_{name}"))
        self._worker = worker
        self._handle = start_worker(worker, name="training", owner=self, connect={
            "finished": self._on_result, "failed": self._on_worker_failed, "cancelled": self._on_worker_cancelled})
        self.state.set_training(True)
        self.state.message("Training started")
        self._update_buttons()
        return True

    def record_interrupted(self) -> None:
        """List the run being stopped as interrupted in the project (saved with it; Resume when reopened)."""
        if self.run_dir is not None and self._epochs_done >= 1:  # a run stopped earlier leaves no folder
            config = (self._worker.config if self._worker is not None else None) or self.state.project.train
            self.state.add_run(interrupted_record(self.run_dir, config, self._epochs_done), current=False)

    def _on_interrupted(self, run: str) -> None:
        self.interrupted_run = Path(run)
        self.record_interrupted()

    def cancel(self) -> None:
        """Ask the run to stop after the current batch (the best weights so far are kept)."""
        if self._handle is None or not self.is_training():
            return
        self._handle.cancel()
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling: finishing the current batch and saving the best weights…")
        self._log("Cancel requested")

    def cancel_and_wait(self, msecs: int = 30000) -> bool:
        """Cancel a running run and block until its thread has ended; True when it has.

        For the main window's close event. Signals already queued by the worker (the run's result)
        are delivered before returning, so a cancelled run still lands in the project's run list.
        """
        if self._handle is None:
            return True
        self._handle.cancel()
        ended = self._handle.wait(msecs)
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
        return ended

    def shutdown(self, msecs: int = 30000) -> bool:
        """Stop everything this page runs (training and preview workers) and wait for the threads."""
        ended = self.cancel_and_wait(msecs)
        registry.shutdown(owner=self.settings.preview, msecs=5000)
        return ended

    def open_run_folder(self) -> None:
        if self.last_run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_run_dir)))

    # --- worker signals (GUI thread) -------------------------------------------------------------
    def _on_run_started(self, event: ev.RunStarted) -> None:
        self._run_info = event
        self.plots.set_epoch_budget(event.total_epochs)
        self._run_t0 = time.monotonic()
        splits = f"{event.num_train} training, {event.num_val} validation"
        if event.num_test:
            splits += f", {event.num_test} test"
        self._log(f"Run started: {len(event.classes)} classes ({', '.join(event.classes)}); {splits} images; "
                  f"batch size {event.batch_size}; up to {event.total_epochs} epochs")

    def _on_phase_started(self, event: ev.PhaseStarted) -> None:
        self._phase = event
        self._phase_t0 = time.monotonic()
        self._last_batch = None
        self.plots.on_phase_started(event)
        title = PHASE_TITLES.get(event.phase, event.phase)
        self._log(f"— {title}" + (f" ({event.epochs} epochs of {event.steps_per_epoch} batches)" if event.epochs else ""))
        if self._open_ended(event.epochs):  # early stopping ends it: a bar towards the cap would promise every epoch
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{title}: until it stops improving (at most {event.epochs} epochs)")
        elif event.epochs > 0:
            self.progress.setRange(0, max(1, event.epochs * max(1, event.steps_per_epoch)))
            self.progress.setValue(0)
            self.progress.setFormat(f"{title}: %p%")
        elif event.steps_per_epoch > 0:
            self.progress.setRange(0, event.steps_per_epoch)
            self.progress.setValue(0)
            self.progress.setFormat(f"{title}: %v / %m")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(title)
        self.status_label.setText(f"{title}…")

    def _on_cache_progress(self, event: ev.CacheProgress) -> None:
        if event.total > 0:
            self.progress.setRange(0, event.total)
            self.progress.setValue(min(event.done, event.total))
        now = time.monotonic()
        if now - self._last_progress_paint >= 0.1 or event.done >= event.total:
            self._last_progress_paint = now
            hits = f", {event.hits} from the cache" if event.hits else ""
            eta = ""
            computed = event.done - event.hits
            elapsed = now - self._phase_t0
            if 0 < computed and event.done < event.total and elapsed > 0.5:
                eta = f" · about {format_seconds(elapsed / computed * (event.total - event.done))} left"
            self.status_label.setText(f"Caching features: {event.done} / {event.total} images{hits}{eta}")

    def _on_batch_ended(self, event: ev.BatchEnded) -> None:
        self.plots.on_batch_ended(event)
        self._last_batch = event
        now = time.monotonic()
        if now - self._last_progress_paint < 0.1:
            return  # at most ten text updates a second
        self._last_progress_paint = now
        self._paint_progress(event, now)

    def _paint_progress(self, event: ev.BatchEnded, now: float) -> None:
        phase = self._phase
        epochs = phase.epochs if phase is not None and phase.phase == event.phase else 0
        steps = max(1, event.steps)
        done_in_phase = event.epoch * steps + event.batch + 1
        open_ended = self._open_ended(epochs)
        if epochs and not open_ended:
            self.progress.setMaximum(max(1, epochs * steps))
            self.progress.setValue(min(done_in_phase, epochs * steps))
        title = PHASE_TITLES.get(event.phase, event.phase)
        of = f" (until it stops improving, at most {epochs})" if open_ended else f"/{epochs or '?'}"
        text = (f"{title} · epoch {event.epoch + 1}{of} · batch {event.batch + 1}/{steps}"
                f" · loss {event.loss:.3f} · accuracy {percent(event.accuracy)}")
        eta = None if open_ended else self.eta_seconds(event, now)
        if eta is not None:
            text += f" · about {format_seconds(eta)} left"
        self.status_label.setText(text)

    def _open_ended(self, epochs: int) -> bool:
        """Whether a phase of ``epochs`` ends when validation stops improving rather than at its last epoch."""
        return epochs > 0 and bool(self.state.project.train.early_stopping)

    def eta_seconds(self, event: ev.BatchEnded, now: float | None = None) -> float | None:
        """Time left if every remaining epoch runs (early stopping may end sooner)."""
        now = time.monotonic() if now is None else now
        phase = self._phase
        if phase is None or phase.epochs <= 0:
            return None
        steps = max(1, event.steps)
        done = event.epoch * steps + event.batch + 1
        elapsed = now - self._phase_t0
        if done < 2 or elapsed <= 0:
            return None
        per_batch = elapsed / done
        remaining = phase.epochs * steps - done
        if self._run_info is not None:
            later_epochs = max(0, self._run_info.total_epochs - self._epochs_done - (phase.epochs - event.epoch))
            remaining += later_epochs * steps
        return per_batch * remaining

    def _on_epoch_ended(self, event: ev.EpochEnded) -> None:
        self._epochs_done = event.run_epoch
        self.plots.on_epoch_ended(event)
        title = PHASE_TITLES.get(event.phase, event.phase)
        val = ""
        if event.val_loss is not None:
            val = f", validation loss {event.val_loss:.3f}, validation accuracy {percent(event.val_accuracy)}"
        self._log(f"Epoch {event.epoch + 1}/{event.epochs} ({title}): loss {event.loss:.3f}, "
                  f"accuracy {percent(event.accuracy)}{val} ({event.seconds:.1f} s)")
        if self._last_batch is not None:
            self._paint_progress(self._last_batch, time.monotonic())

    def _on_file_skipped(self, event: ev.FileSkipped) -> None:
        self._skipped += 1
        if self._skipped <= 50:
            self._log(f"Skipped {event.path}: {event.reason}", "warning")
        elif self._skipped == 51:
            self._log(f"More files were skipped; the run folder's {run_folder.SKIPPED_FILE} lists them all.", "warning")

    def _on_log_message(self, event: ev.LogMessage) -> None:
        self._log(event.text, event.level)

    def _on_train_finished(self, event: ev.TrainFinished) -> None:
        self.last_finished = event
        shown = self.log_text()
        for w in event.warnings:
            if w not in shown:  # a warning the run already logged as it happened is not repeated
                self._log(w, "warning")
        verb = "Finished" if event.status == "finished" else "Cancelled; the best weights so far were kept"
        self._log(f"{verb}: {event.epochs_run} epochs in {format_seconds(event.train_seconds)}, "
                  f"validation accuracy {percent(event.val_accuracy)}"
                  + (f", test accuracy {percent(event.test_accuracy)}" if event.test_accuracy is not None else ""))

    def _on_event(self, event: ev.Event) -> None:
        # The end-of-run events carry the warnings for the log; the outcome itself comes once, from the worker.
        if isinstance(event, ev.TrainFinished):
            self._on_train_finished(event)
        elif isinstance(event, ev.TrainFailed):
            self.last_error = event.message

    def _on_result(self, result: Any) -> None:
        """The run left a model behind (finished or cancelled): list it in the project."""
        self.last_result = result
        self.last_run_dir = Path(result.run_dir)
        config = (self._worker.config if self._worker is not None else None) or self.state.project.train
        self.state.add_run(finished_record(result, config))  # replaces the entry of the run it resumed
        text = (f"<b>{'Finished' if result.status == 'finished' else 'Cancelled (best weights kept)'}</b>: "
                f"validation accuracy <b>{percent(result.val_accuracy)}</b>")
        if result.test_accuracy is not None:
            text += f", test accuracy <b>{percent(result.test_accuracy)}</b>"
        text += (f" after {result.epochs_run} epochs in {format_seconds(result.train_seconds)}. "
                 "See the Evaluate page for details.")
        self.result_label.setText(text)
        self.result_label.show()
        self._on_worker_done()

    def _on_worker_failed(self, message: str) -> None:
        self.resume_button.setVisible(self.interrupted_run is not None)
        self.last_error = message
        self._error(f"Training failed: {message}")
        self.result_label.setText(f"<b>Training failed:</b> {html.escape(message)}")
        self.result_label.show()
        self._on_worker_done()

    def _on_worker_cancelled(self) -> None:
        if self.last_result is None:
            self._log("Cancelled before any weights were saved; nothing was added to the runs.")
            self.result_label.setText("<b>Cancelled</b> before the first epoch ended: no model was saved.")
            self.result_label.show()
        self._on_worker_done()

    def _on_worker_done(self) -> None:
        self.plots.flush()
        if self._last_batch is not None:
            self._paint_progress(self._last_batch, time.monotonic())
        self._handle = None
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.last_result is not None else 0)
        if self.last_result is not None:
            self.progress.setFormat("Finished" if self.last_result.status == "finished" else "Cancelled")
            self.status_label.setText(f"Run saved in {self.last_run_dir}")
        elif self.last_error is not None:
            self.progress.setFormat("Failed")
        else:
            self.progress.setFormat("Cancelled")
        self.state.set_training(False)
        self.state.message("Training ended")
        self._update_buttons()

    # --- log -------------------------------------------------------------------------------------
    def _log(self, text: str, level: str = "info") -> None:
        self.log.log(text, level)

    def _error(self, message: str) -> None:
        self._log(message, "error")
        self.status_label.setText(message)
        self.state.message(message)

    def log_text(self) -> str:
        return self.log.toPlainText()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

