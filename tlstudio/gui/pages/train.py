"""The Train page: training settings in plain words, a Train button, live plots, progress and a log.

Training runs core ``train()`` in a :class:`~tlstudio.workers.train_worker.TrainWorker` on its own
QThread. The page only reacts to the worker's signals (queued to the GUI thread), so the window
stays responsive; batch points are drawn at most ten times a second by the plot widget.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QDoubleValidator, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.config import AugmentConfig, ConfigError, TrainConfig
from tlstudio.core.project import RunRecord
from tlstudio.gui.widgets.gallery import prune_finished, rgb_pixmap
from tlstudio.gui.widgets.plots import TrainingPlots
from tlstudio.workers.base import WorkerHandle, start_worker
from tlstudio.workers.evaluation_loader import AugmentPreviewWorker
from tlstudio.workers.train_worker import TrainWorker

PHASE_TITLES = {
    ev.PHASE_CACHING: "Caching features",
    ev.PHASE_HEAD: "Training the classifier",
    ev.PHASE_FINE_TUNE: "Fine-tuning",
    ev.PHASE_EVALUATING: "Evaluating",
}
RESIZE_CHOICES = [
    ("stretch", "Stretch to a square", "Squash or stretch every image to the model's square input. Keeps everything in view."),
    ("crop", "Crop the centre", "Cut the largest centred square, then scale it. Keeps proportions but may cut edges off."),
    ("pad", "Fit and pad", "Scale the whole image to fit and fill the rest with black. Keeps everything and its shape."),
]
OPTIMIZER_CHOICES = [
    ("adam", "Adam (a safe default)"),
    ("adamw", "AdamW (Adam with weight decay)"),
    ("sgd", "SGD with momentum"),
]
LR_PRESETS = ["0.01", "0.003", "0.001", "0.0003", "0.0001", "3e-05", "1e-05", "3e-06", "1e-06"]
# The TrainConfig fields this page edits; "Reset to defaults" resets exactly these.
PAGE_FIELDS = ("head_epochs", "fine_tune_epochs", "batch_size", "head_lr", "fine_tune_lr", "optimizer",
               "early_stopping", "patience", "augment", "class_weights", "resize_policy", "label_smoothing")
PREVIEW_IMAGES = 3
PREVIEW_VARIANTS = 3
PREVIEW_SIZE = 64


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _pct(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _read_summary(run_dir: Path) -> run_folder.Summary:
    try:
        return run_folder.read_summary(run_dir)
    except run_folder.RunError:
        return run_folder.Summary()


class LearningRateBox(QComboBox):
    """An editable combo of common learning rates that accepts any positive number."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.addItems(LR_PRESETS)
        validator = QDoubleValidator(1e-9, 10.0, 10, self)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.setValidator(validator)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)

    def value(self) -> float | None:
        try:
            v = float(self.currentText())
        except ValueError:
            return None
        return v if v > 0 else None

    def set_value(self, value: float) -> None:
        text = f"{value:g}"
        index = self.findText(text)
        if index >= 0:
            self.setCurrentIndex(index)
        else:
            self.setEditText(text)


class TrainPage(QWidget):
    """Training settings, the Train / Cancel buttons, live plots, progress and a log."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._refreshing = False
        self._handle: WorkerHandle | None = None
        self._retired: list[WorkerHandle] = []  # ended runs whose thread may not have delivered finished yet
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
        self._preview_generation = 0
        self._preview_handles: list[WorkerHandle] = []
        self.preview_shown = 0  # images in the augmentation preview

        settings = self._build_settings()
        scroll = QScrollArea(self)
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(settings.sizeHint().width() + 24)

        right = QWidget(self)
        rlayout = QVBoxLayout(right)
        rlayout.setContentsMargins(0, 0, 0, 0)
        self.train_button = QPushButton("Train", right)
        self.train_button.setDefault(True)
        font = self.train_button.font()
        font.setBold(True)
        self.train_button.setFont(font)
        self.train_button.setMinimumWidth(110)
        self.train_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel", right)
        self.cancel_button.setToolTip("Stop after the current batch; the best weights so far are kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_folder_button = QPushButton("Open run folder", right)
        self.open_folder_button.setToolTip("Show the folder of the last run (model, labels, history, evaluation)")
        self.open_folder_button.setEnabled(False)
        self.open_folder_button.clicked.connect(self.open_run_folder)
        self.context_label = QLabel(right)
        self.context_label.setWordWrap(True)
        self.context_label.setStyleSheet("color: #555;")
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.context_label, 1)
        buttons.addWidget(self.open_folder_button)

        self.progress = QProgressBar(right)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.status_label = QLabel("Ready to train.", right)
        self.result_label = QLabel(right)
        self.result_label.setWordWrap(True)
        self.result_label.hide()

        self.plots = TrainingPlots(right)
        self.log = QPlainTextEdit(right)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFont(QFont("monospace", 9))
        self.log.setPlaceholderText("Events of the run (phases, epochs, skipped files, warnings) appear here.")
        lower = QSplitter(Qt.Orientation.Vertical, right)
        lower.addWidget(self.plots)
        lower.addWidget(self.log)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 1)

        rlayout.addLayout(buttons)
        rlayout.addWidget(self.progress)
        rlayout.addWidget(self.status_label)
        rlayout.addWidget(self.result_label)
        rlayout.addWidget(lower, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.refresh_preview)

        state.train_config_changed.connect(self._refresh_from_state)
        state.project_changed.connect(self._refresh_from_state)
        state.dataset_changed.connect(self._on_dataset_changed)
        state.model_changed.connect(self._update_context)
        state.training_changed.connect(self._update_buttons)
        self._refresh_from_state()
        self._on_dataset_changed()

    # --- the settings form -----------------------------------------------------------------------
    def _build_settings(self) -> QWidget:
        box = QWidget(self)
        outer = QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 4, 0)

        def form_group(title: str) -> tuple[QGroupBox, QFormLayout]:
            group = QGroupBox(title, box)
            form = QFormLayout(group)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            outer.addWidget(group)
            return group, form

        def add(form: QFormLayout, label: str, widget: QWidget, tip: str) -> QWidget:
            widget.setToolTip(tip)
            lab = QLabel(label)
            lab.setToolTip(tip)
            form.addRow(lab, widget)
            return widget

        _, form = form_group("How long to train")
        self.head_epochs = add(form, "Classifier epochs", QSpinBox(), (
            "Passes over the training images while only the new classifier on top of the base learns.\n"
            "Fast (features can be cached); 5-20 is usual."))
        self.head_epochs.setRange(0, 1000)
        self.fine_tune_epochs = add(form, "Fine-tuning epochs", QSpinBox(), (
            "Passes that also adjust the unfrozen layers of the base model (set on the Model page), at a low "
            "learning rate.\nSlower; 0 switches fine-tuning off."))
        self.fine_tune_epochs.setRange(0, 1000)
        self.early_stopping = add(form, "Stop early", QCheckBox("when validation stops improving"), (
            "End a phase when the validation loss has not improved for 'patience' epochs and keep the best "
            "weights. Saves time and avoids overfitting."))
        self.patience = add(form, "Patience (epochs)", QSpinBox(), (
            "How many epochs without improvement to wait before stopping early."))
        self.patience.setRange(1, 100)

        _, form = form_group("How it learns")
        self.batch_size = add(form, "Batch size", QSpinBox(), (
            "Images per training step. Larger is faster per image but needs more memory; 16-64 is usual.\n"
            "Lower it if training runs out of memory."))
        self.batch_size.setRange(1, 4096)
        self.head_lr = add(form, "Classifier learning rate", LearningRateBox(), (
            "Step size while training the new classifier. 0.001 suits Adam; too large makes the loss jump "
            "around, too small learns slowly."))
        self.fine_tune_lr = add(form, "Fine-tuning learning rate", LearningRateBox(), (
            "Step size while fine-tuning the base: keep it small (about 100x lower than the classifier's) so "
            "the pretrained features are not destroyed."))
        self.optimizer = add(form, "Optimizer", QComboBox(), "The rule that turns errors into weight changes.")
        for key, text in OPTIMIZER_CHOICES:
            self.optimizer.addItem(text, key)
        self.label_smoothing = add(form, "Label smoothing", QDoubleSpinBox(), (
            "Trains towards slightly softened targets (e.g. 0.1) so the model is less over-confident.\n"
            "Helps when some labels may be wrong; 0 switches it off."))
        self.label_smoothing.setRange(0.0, 0.5)
        self.label_smoothing.setSingleStep(0.05)
        self.label_smoothing.setDecimals(2)
        self.class_weights = add(form, "Class balance", QComboBox(), (
            "Automatic: when some classes have many more images than others, mistakes on rare classes count "
            "more, so the model does not just learn to say the common class.\nOff: every image counts the same."))
        self.class_weights.addItem("Automatic (balance rare classes)", "auto")
        self.class_weights.addItem("Off", "none")

        _, form = form_group("Images")
        self.resize_policy = add(form, "Fit to the model by", QComboBox(),
                                 "How images of any shape are brought to the model's square input size.")
        for key, text, tip in RESIZE_CHOICES:
            self.resize_policy.addItem(text, key)
            self.resize_policy.setItemData(self.resize_policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

        self.augment_group = QGroupBox("Vary the training images (augmentation)", box)
        self.augment_group.setCheckable(True)
        self.augment_group.setToolTip(
            "Shows the model slightly changed copies of the training images each epoch (flipped, turned, "
            "zoomed...),\nso it learns what matters rather than the exact pictures. Helps with few images.")
        outer.addWidget(self.augment_group)
        aform = QFormLayout(self.augment_group)
        self.aug_flip = QCheckBox("Mirror left-right", self.augment_group)
        self.aug_flip.setToolTip("Randomly mirror images. Switch off when left and right matter (e.g. text, arrows).")
        aform.addRow(self.aug_flip)

        def factor(label: str, tip: str) -> QDoubleSpinBox:
            spin = QDoubleSpinBox(self.augment_group)
            spin.setRange(0.0, 0.5)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setToolTip(tip + "\n0 switches it off.")
            lab = QLabel(label)
            lab.setToolTip(spin.toolTip())
            aform.addRow(lab, spin)
            return spin

        self.aug_rotation = factor("Turn by up to", "Random rotation, as a fraction of a full turn (0.1 = 36°).")
        self.aug_zoom = factor("Zoom by up to", "Random zoom in or out, as a fraction of the size (0.1 = 10%).")
        self.aug_translation = factor("Shift by up to", "Random shift, as a fraction of the width and height.")
        self.aug_contrast = factor("Contrast change", "Random contrast change (0.1 = up to 10%).")
        self.aug_brightness = factor("Brightness change", "Random brightness change (0.1 = up to 10%).")

        self.preview_caption = QLabel(self.augment_group)
        self.preview_caption.setWordWrap(True)
        self.preview_caption.setStyleSheet("color: #555;")
        preview = QWidget(self.augment_group)
        grid = QGridLayout(preview)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        self.preview_labels: list[list[QLabel]] = []
        for r in range(PREVIEW_IMAGES):
            row = []
            for c in range(PREVIEW_VARIANTS + 1):
                lab = QLabel(preview)
                lab.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
                lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
                lab.setStyleSheet("background: #eee;" + ("border: 1px solid #999;" if c == 0 else ""))
                lab.setToolTip("Original" if c == 0 else "A random variation, as training would see it")
                grid.addWidget(lab, r, c)
                row.append(lab)
            self.preview_labels.append(row)
        self.preview_button = QPushButton("New random variations", self.augment_group)
        self.preview_button.clicked.connect(self._new_preview_seed)
        self._preview_seed = 0
        aform.addRow(self.preview_caption)
        aform.addRow(preview)
        aform.addRow(self.preview_button)

        self.reset_button = QPushButton("Reset to defaults", box)
        self.reset_button.setToolTip("Put every setting on this page back to its recommended value")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        outer.addWidget(self.reset_button)
        outer.addStretch(1)

        # Changes go straight to the project.
        self.head_epochs.valueChanged.connect(lambda v: self._set(head_epochs=int(v)))
        self.fine_tune_epochs.valueChanged.connect(lambda v: self._set(fine_tune_epochs=int(v)))
        self.early_stopping.toggled.connect(lambda v: self._set(early_stopping=bool(v)))
        self.patience.valueChanged.connect(lambda v: self._set(patience=int(v)))
        self.batch_size.valueChanged.connect(lambda v: self._set(batch_size=int(v)))
        self.head_lr.currentTextChanged.connect(lambda _t: self._set_lr("head_lr", self.head_lr))
        self.fine_tune_lr.currentTextChanged.connect(lambda _t: self._set_lr("fine_tune_lr", self.fine_tune_lr))
        self.optimizer.currentIndexChanged.connect(lambda _i: self._set(optimizer=self.optimizer.currentData()))
        self.label_smoothing.valueChanged.connect(lambda v: self._set(label_smoothing=round(float(v), 4)))
        self.class_weights.currentIndexChanged.connect(
            lambda _i: self._set(class_weights=self.class_weights.currentData()))
        self.resize_policy.currentIndexChanged.connect(
            lambda _i: self._set(resize_policy=self.resize_policy.currentData()))
        self.augment_group.toggled.connect(lambda v: self._set_augment(enabled=bool(v)))
        self.aug_flip.toggled.connect(lambda v: self._set_augment(flip=bool(v)))
        for name in ("rotation", "zoom", "translation", "contrast", "brightness"):
            spin = getattr(self, f"aug_{name}")
            spin.valueChanged.connect(lambda v, n=name: self._set_augment(**{n: round(float(v), 4)}))
        return box

    def _set(self, **changes: Any) -> None:
        if self._refreshing:
            return
        self.state.update_train_config(**changes)

    def _set_lr(self, name: str, box: LearningRateBox) -> None:
        value = box.value()
        if value is not None:
            self._set(**{name: value})

    def _set_augment(self, **changes: Any) -> None:
        self._set(augment=changes)

    def _refresh_from_state(self) -> None:
        """Show ``project.train`` in the form (without echoing the changes back)."""
        c: TrainConfig = self.state.project.train
        self._refreshing = True
        try:
            self.head_epochs.setValue(c.head_epochs)
            self.fine_tune_epochs.setValue(c.fine_tune_epochs)
            self.early_stopping.setChecked(c.early_stopping)
            self.patience.setValue(c.patience)
            self.patience.setEnabled(c.early_stopping)
            self.batch_size.setValue(c.batch_size)
            if self.head_lr.value() != c.head_lr:
                self.head_lr.set_value(c.head_lr)
            if self.fine_tune_lr.value() != c.fine_tune_lr:
                self.fine_tune_lr.set_value(c.fine_tune_lr)
            self.fine_tune_lr.setEnabled(c.fine_tune_epochs > 0)
            self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(c.optimizer)))
            self.label_smoothing.setValue(c.label_smoothing)
            self.class_weights.setCurrentIndex(max(0, self.class_weights.findData(c.class_weights)))
            self.resize_policy.setCurrentIndex(max(0, self.resize_policy.findData(c.resize_policy)))
            a = c.augment
            self.augment_group.setChecked(a.enabled)
            self.aug_flip.setChecked(a.flip)
            for name in ("rotation", "zoom", "translation", "contrast", "brightness"):
                getattr(self, f"aug_{name}").setValue(getattr(a, name))
        finally:
            self._refreshing = False
        self._update_context()
        self._schedule_preview()

    def reset_to_defaults(self) -> None:
        """Every setting on this page back to the TrainConfig default."""
        defaults = TrainConfig()
        self.state.update_train_config(**{name: getattr(defaults, name) for name in PAGE_FIELDS})

    # --- context and buttons ---------------------------------------------------------------------
    def _on_dataset_changed(self) -> None:
        self._update_context()
        self._schedule_preview()

    def _update_context(self) -> None:
        c = self.state.project.train
        scan = self.state.scan
        parts = []
        if scan is not None:
            try:
                usable = len(scan.usable())
                parts.append(f"{usable} images in {len(scan.classes)} classes")
            except Exception:  # a scan object from an older format: say nothing rather than fail
                pass
        elif c.data_dir:
            parts.append(f"data: {Path(c.data_dir).name}")
        else:
            parts.append("no dataset chosen yet (Dataset page)")
        base = c.base_model_path and Path(c.base_model_path).name or c.base
        if c.alpha is not None and not c.base_model_path:
            base += f" α {c.alpha:g}"
        parts.append(f"base {base}")
        epochs = c.head_epochs + c.fine_tune_epochs
        parts.append(f"up to {epochs} epoch{'s' if epochs != 1 else ''}")
        self.context_label.setText(" · ".join(parts))
        self._update_buttons()

    def _has_data(self) -> bool:
        return self.state.scan is not None or bool(self.state.project.train.data_dir)

    def _update_buttons(self, *_args) -> None:
        running = self.is_training()
        self.train_button.setEnabled(not running and not self.state.training and self._has_data())
        self.train_button.setToolTip("Start training with these settings" if self._has_data()
                                     else "Choose a dataset on the Dataset page first")
        self.cancel_button.setEnabled(running and not (self._worker is not None and self._worker.cancel_event.is_set()))
        self.reset_button.setEnabled(not running)
        self.open_folder_button.setEnabled(self.last_run_dir is not None)

    # --- augmentation preview ------------------------------------------------------------------
    def _schedule_preview(self) -> None:
        self._preview_timer.start()

    def _new_preview_seed(self) -> None:
        self._preview_seed += 1
        self.refresh_preview()

    def _preview_paths(self) -> list[str]:
        scan = self.state.scan
        if scan is None:
            return []
        try:
            records = scan.usable("train") or scan.usable()
        except Exception:
            return []
        by_class: dict[Any, list] = {}
        for rec in records:
            by_class.setdefault(rec.class_name, []).append(rec)
        picked = []
        # One image from each class in turn, so the preview shows the variety of the dataset.
        while len(picked) < PREVIEW_IMAGES and any(by_class.values()):
            for recs in by_class.values():
                if recs and len(picked) < PREVIEW_IMAGES:
                    picked.append(recs.pop(0))
        return [str(Path(scan.root) / rec.path) for rec in picked]

    def refresh_preview(self) -> None:
        """Make new augmented samples of a few training images, on a worker thread."""
        augment: AugmentConfig = self.state.project.train.augment
        enabled = augment.enabled
        paths = self._preview_paths()
        self.preview_button.setEnabled(enabled and bool(paths))
        if not paths:
            self.preview_caption.setText("Choose a dataset to preview the variations here.")
            self._clear_preview()
            return
        if not enabled:
            self.preview_caption.setText("Switch augmentation on to preview how training images would vary.")
        else:
            self.preview_caption.setText("Left: the image; right: random variations training would use.")
        self._preview_generation += 1
        for h in self._preview_handles:
            h.cancel()
        self._preview_handles = prune_finished(self._preview_handles)
        worker = AugmentPreviewWorker(paths, augment if enabled else AugmentConfig(enabled=False, flip=False,
                                      rotation=0, zoom=0, translation=0, contrast=0, brightness=0),
                                      size=PREVIEW_SIZE, variants=PREVIEW_VARIANTS,
                                      resize_policy=self.state.project.train.resize_policy,
                                      generation=self._preview_generation, seed=self._preview_seed)
        worker.preview_ready.connect(self._on_preview_ready)
        self._preview_handles.append(start_worker(worker, name="augment-preview"))

    def _clear_preview(self) -> None:
        for row in self.preview_labels:
            for lab in row:
                lab.clear()

    def _on_preview_ready(self, generation: int, rows: list) -> None:
        if generation != self._preview_generation:
            return
        self._clear_preview()
        enabled = self.state.project.train.augment.enabled
        for r, row in enumerate(rows[:PREVIEW_IMAGES]):
            for c, (data, w, h) in enumerate(row[: PREVIEW_VARIANTS + 1]):
                if c > 0 and not enabled:
                    continue
                self.preview_labels[r][c].setPixmap(rgb_pixmap(data, w, h))
        self.preview_shown = len(rows)

    # --- training --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        """True while a run's thread is alive (for the main window's close question)."""
        return self._handle is not None and self._handle.is_running()

    def start_training(self) -> bool:
        """Start a run with the current settings; False (with a message) when it cannot start."""
        if self.is_training() or self.state.training:
            return False
        config = self.state.train_config()
        if not config.data_dir:
            self._error("Choose a dataset on the Dataset page first.")
            return False
        try:
            config.validate()
        except ConfigError as exc:
            self._error(str(exc))
            return False
        try:
            run_dir = self.state.new_run_dir()
        except OSError as exc:
            self._error(f"Cannot create a folder for the run: {exc}")
            return False
        self.run_dir = Path(run_dir)
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
        self._log(f"Run folder: {self.run_dir}")

        worker = TrainWorker(config, self.run_dir, scan=self.state.scan)
        worker.run_started.connect(self._on_run_started)
        worker.phase_started.connect(self._on_phase_started)
        worker.cache_progress.connect(self._on_cache_progress)
        worker.batch_ended.connect(self._on_batch_ended)
        worker.epoch_ended.connect(self._on_epoch_ended)
        worker.file_skipped.connect(self._on_file_skipped)
        worker.log_message.connect(self._on_log_message)
        worker.train_finished.connect(self._on_train_finished)
        worker.train_failed.connect(self._on_train_failed)
        worker.result_ready.connect(self._on_result)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        worker.done.connect(self._on_worker_done)
        self._worker = worker
        self._handle = start_worker(worker, name="training")
        self.state.set_training(True)
        self.state.message("Training started")
        self._update_buttons()
        return True

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
        for h in self._preview_handles:
            h.cancel()
        for h in self._preview_handles:
            h.wait(5000)
        self._preview_handles = prune_finished(self._preview_handles)
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
        if event.epochs > 0:
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
                eta = f" · about {_fmt_seconds(elapsed / computed * (event.total - event.done))} left"
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
        if epochs:
            self.progress.setMaximum(max(1, epochs * steps))
            self.progress.setValue(min(done_in_phase, epochs * steps))
        title = PHASE_TITLES.get(event.phase, event.phase)
        text = (f"{title} · epoch {event.epoch + 1}/{epochs or '?'} · batch {event.batch + 1}/{steps}"
                f" · loss {event.loss:.3f} · accuracy {_pct(event.accuracy)}")
        eta = self.eta_seconds(event, now)
        if eta is not None:
            text += f" · about {_fmt_seconds(eta)} left"
        self.status_label.setText(text)

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
            val = f", validation loss {event.val_loss:.3f}, validation accuracy {_pct(event.val_accuracy)}"
        self._log(f"Epoch {event.epoch + 1}/{event.epochs} ({title}): loss {event.loss:.3f}, "
                  f"accuracy {_pct(event.accuracy)}{val} ({event.seconds:.1f} s)")
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
        for w in event.warnings:
            self._log(w, "warning")
        verb = "Finished" if event.status == "finished" else "Cancelled; the best weights so far were kept"
        self._log(f"{verb}: {event.epochs_run} epochs in {_fmt_seconds(event.train_seconds)}, "
                  f"validation accuracy {_pct(event.val_accuracy)}"
                  + (f", test accuracy {_pct(event.test_accuracy)}" if event.test_accuracy is not None else ""))

    def _on_train_failed(self, event: ev.TrainFailed) -> None:
        self.last_error = event.message  # the worker's ``failed`` repeats it: logged once, there

    def _on_result(self, result: Any) -> None:
        """The run left a model behind (finished or cancelled): list it in the project."""
        self.last_result = result
        run_dir = Path(result.run_dir)
        self.last_run_dir = run_dir
        summary = _read_summary(run_dir)
        config = self._worker.config if self._worker is not None else self.state.project.train
        record = RunRecord(
            run_dir=str(run_dir),
            name=run_dir.name,
            created=str(summary.get("created", "")),
            base=str(summary.get("base") or config.base),
            status=str(result.status),
            val_accuracy=result.val_accuracy,
            test_accuracy=result.test_accuracy,
            epochs_run=int(result.epochs_run),
            train_seconds=float(result.train_seconds),
            frozen_summary=str(summary.get("frozen_summary", "")),
        )
        self.state.add_run(record)
        text = (f"<b>{'Finished' if result.status == 'finished' else 'Cancelled (best weights kept)'}</b>: "
                f"validation accuracy <b>{_pct(result.val_accuracy)}</b>")
        if result.test_accuracy is not None:
            text += f", test accuracy <b>{_pct(result.test_accuracy)}</b>"
        text += (f" after {result.epochs_run} epochs in {_fmt_seconds(result.train_seconds)}. "
                 "See the Evaluate page for details.")
        self.result_label.setText(text)
        self.result_label.show()

    def _on_worker_failed(self, message: str) -> None:
        self.last_error = message
        self._error(f"Training failed: {message}")
        self.result_label.setText(f"<b>Training failed:</b> {html.escape(message)}")
        self.result_label.show()

    def _on_worker_cancelled(self) -> None:
        if self.last_result is None:
            self._log("Cancelled before any weights were saved; nothing was added to the runs.")
            self.result_label.setText("<b>Cancelled</b> before the first epoch ended: no model was saved.")
            self.result_label.show()

    def _on_worker_done(self) -> None:
        self.plots.flush()
        if self._last_batch is not None:
            self._paint_progress(self._last_batch, time.monotonic())
        if self._handle is not None:
            self._retired = prune_finished([*self._retired, self._handle])
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
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "⚠ ", "error": "✖ "}.get(level, "")
        self.log.appendPlainText(f"{stamp}  {prefix}{text}")

    def _error(self, message: str) -> None:
        self._log(message, "error")
        self.status_label.setText(message)
        self.state.message(message)

    def log_text(self) -> str:
        return self.log.toPlainText()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

