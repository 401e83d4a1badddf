"""The Train page's settings form in plain words, bound to ``project.train``.

Every field writes to the project when the person commits a value (see :mod:`tlstudio.gui.widgets.fields`),
and :meth:`TrainSettingsForm.refresh` shows the project's values without echoing them back.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.config import TrainConfig
from tlstudio.gui import settings as ui_settings
from tlstudio.gui import training_plan
from tlstudio.gui.widgets.augment_preview import AugmentPreview, preview_paths
from tlstudio.gui.widgets.common import hint
from tlstudio.gui.widgets.fields import combo_box, decimal_box, guard_wheel, set_quietly, spin_box

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
#: The TrainConfig fields this form edits; "Reset to defaults" resets exactly these.
PAGE_FIELDS = ("head_epochs", "fine_tune_epochs", "batch_size", "head_lr", "fine_tune_lr", "optimizer",
               "early_stopping", "patience", "augment", "class_weights", "resize_policy", "label_smoothing",
               "dropout", "threshold", "auto_head_lr", "auto_dropout", "auto_epochs", "auto_fine_tune_lr",
               "auto_threshold")
#: (auto_* switch name, the field it frees) of the settings tlstudio can choose by itself (TrainConfig.is_auto).
AUTO_SETTINGS = (("head_lr", "head_lr"), ("dropout", "dropout"), ("epochs", "head_epochs"),
                 ("fine_tune_lr", "fine_tune_lr"), ("threshold", "threshold"))
AUGMENT_FACTORS = ("rotation", "zoom", "translation", "contrast", "brightness")


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
        guard_wheel(self)

    def value(self) -> float | None:
        try:
            v = float(self.currentText())
        except ValueError:
            return None
        return v if v > 0 else None

    def set_value(self, value: float) -> None:
        if self.hasFocus():
            return  # the person is typing here
        blocked = self.blockSignals(True)
        text = f"{value:g}"
        index = self.findText(text)
        if index >= 0:
            self.setCurrentIndex(index)
        else:
            self.setEditText(text)
        self.blockSignals(blocked)

    def show_auto(self, text: str) -> None:
        """Show ``text`` (e.g. "Automatic") instead of a rate; "" leaves the rate :meth:`set_value` shows."""
        if text:
            blocked = self.blockSignals(True)
            self.setEditText(text)
            self.blockSignals(blocked)


class TrainSettingsForm(QWidget):
    """``TrainSettingsForm(state)``: how long, how it learns, images and augmentation, with a live preview."""

    def cluster_address(self) -> str:
        """Where the next run computes features and fine-tunes: a Ray address, or "" for this computer."""
        return self.cluster.text().strip() if self.cluster.isEnabled() else ""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._preview_seed = 0
        self.chosen: dict[str, str] = {}  # what the current run chose for its automatic settings
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 4, 0)

        def form_group(title: str) -> QFormLayout:
            group = QGroupBox(title, self)
            form = QFormLayout(group)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            outer.addWidget(group)
            return form

        def add(form: QFormLayout, label: str, widget: QWidget, tip: str) -> QWidget:
            widget.setToolTip(tip)
            lab = QLabel(label)
            lab.setToolTip(tip)
            form.addRow(lab, widget)
            return widget

        form = form_group("How long to train")
        self.head_epochs = add(form, "Classifier epochs", spin_box(0, 1000, auto=True), (
            "Passes over the training images while only the new classifier on top of the base learns.\n"
            "Fast (features can be cached); 5-20 is usual."))
        self.fine_tune_epochs = add(form, "Fine-tuning epochs", spin_box(0, 1000), (
            "Passes that also adjust the unfrozen layers of the base model (set on the Model page), at a low "
            "learning rate,\nafter the classifier has finished. Slower. 0: only when blocks of the base are unfrozen on "
            "the Model page\n(unfreezing turns fine-tuning on); the run keeps whichever of the two phases did better."))
        self.early_stopping = add(form, "Stop early", QCheckBox("when validation stops improving"), (
            "End a phase when the validation loss has not improved for 'patience' epochs and keep the best "
            "weights. Saves time and avoids overfitting."))
        self.patience = add(form, "Patience (epochs)", spin_box(1, 100),
                            "How many epochs without improvement to wait before stopping early.")

        form = form_group("How it learns")
        self.batch_size = add(form, "Batch size", spin_box(1, 4096), (
            "Images per training step. Larger is faster per image but needs more memory; 16-64 is usual.\n"
            "Lower it if training runs out of memory."))
        self.head_lr = add(form, "Classifier learning rate", LearningRateBox(), (
            "Step size while training the new classifier. 0.001 suits Adam; too large makes the loss jump "
            "around, too small learns slowly."))
        self.fine_tune_lr = add(form, "Fine-tuning learning rate", LearningRateBox(), (
            "Step size while fine-tuning the base: keep it small (about 100x lower than the classifier's) so "
            "the pretrained features are not destroyed."))
        self.optimizer = add(form, "Optimizer", combo_box(), "The rule that turns errors into weight changes.")
        for key, text in OPTIMIZER_CHOICES:
            self.optimizer.addItem(text, key)
        self.label_smoothing = add(form, "Label smoothing", decimal_box(0.0, 0.5, 0.05), (
            "Trains towards slightly softened targets (e.g. 0.1) so the model is less over-confident.\n"
            "Helps when some labels may be wrong; 0 switches it off."))
        self.class_weights = add(form, "Class balance", combo_box(), (
            "Automatic: when some classes have many more images than others, mistakes on rare classes count "
            "more, so the model does not just learn to say the common class.\nOff: every image counts the same."))
        self.class_weights.addItem("Automatic (balance rare classes)", "auto")
        self.class_weights.addItem("Off", "none")

        form = form_group("Chosen for you")
        self.dropout = add(form, "Dropout", decimal_box(0.0, 0.9, 0.05, auto=True), (
            "Randomly ignores part of the features while the classifier learns, so it cannot lean on a few "
            "of them.\n0 switches it off."))
        self.threshold = add(form, '"Not sure" below', decimal_box(0.0, 1.0, 0.05, auto=True), (
            'When the best class gets less than this probability, the model answers "not sure".'))
        self.auto_boxes: dict[str, QCheckBox] = {}
        for name, words in (("head_lr", "the classifier's learning rate"), ("dropout", "dropout"),
                            ("epochs", "how many classifier epochs (until it stops improving)"),
                            ("fine_tune_lr", "the fine-tuning learning rate (1/100 of the classifier's)"),
                            ("threshold", 'the "not sure" threshold, on the validation images')):
            box = QCheckBox(f"Choose {words}")
            box.setToolTip("Automatic: tlstudio tries a few values on the validation images and keeps the best; "
                           "the value it chose is shown after the run.\nUntick to set the value yourself.")
            box.toggled.connect(lambda on, n=name: self._set(**{f"auto_{n}": bool(on)}))
            form.addRow(box)
            self.auto_boxes[name] = box
        self.chosen_label = hint("")  # what the latest run chose, in plain words (run.json "settings")
        self.chosen_label.setWordWrap(True)
        form.addRow(self.chosen_label)

        form = form_group("Images")
        self.resize_policy = add(form, "Fit to the model by", combo_box(),
                                 "How images of any shape are brought to the model's square input size.")
        for key, text, tip in RESIZE_CHOICES:
            self.resize_policy.addItem(text, key)
            self.resize_policy.setItemData(self.resize_policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

        self.augment_group = QGroupBox("Vary the training images", self)
        self.augment_group.setCheckable(True)
        self.augment_group.setToolTip(
            "Augmentation: shows the model slightly changed copies of the training images each epoch (flipped, "
            "turned, zoomed...),\nso it learns what matters rather than the exact pictures. Helps with few images.")
        outer.addWidget(self.augment_group)
        aform = QFormLayout(self.augment_group)
        self.aug_flip = QCheckBox("Mirror left-right", self.augment_group)
        self.aug_flip.setToolTip("Randomly mirror images. Switch off when left and right matter (e.g. text, arrows).")
        aform.addRow(self.aug_flip)
        for name, label, tip in (
                ("rotation", "Turn by up to", "Random rotation, as a fraction of a full turn (0.1 = 36°)."),
                ("zoom", "Zoom by up to", "Random zoom in or out, as a fraction of the size (0.1 = 10%)."),
                ("translation", "Shift by up to", "Random shift, as a fraction of the width and height."),
                ("contrast", "Contrast change", "Random contrast change (0.1 = up to 10%)."),
                ("brightness", "Brightness change", "Random brightness change (0.1 = up to 10%).")):
            spin = decimal_box(0.0, 0.5, 0.05, parent=self.augment_group)
            spin.setToolTip(tip + "\n0 switches it off.")
            lab = QLabel(label)
            lab.setToolTip(spin.toolTip())
            aform.addRow(lab, spin)
            setattr(self, f"aug_{name}", spin)

        self.preview_caption = hint("")  # kept short: a wrapped line in a form row may not get its height
        self.preview_caption.setToolTip("Left: a training image; right: random variations, as training would see them")
        self.preview = AugmentPreview(self.augment_group)
        self.preview_button = QPushButton("New random variations", self.augment_group)
        self.preview_button.clicked.connect(self._new_preview_seed)
        aform.addRow(self.preview_caption)
        aform.addRow(self.preview)
        aform.addRow(self.preview_button)

        form = form_group("Advanced: run on a cluster")
        self.cluster = add(form, "Ray cluster", QLineEdit(), (
            "Compute the image features and the fine-tuning on a Ray cluster instead of this computer.\n"
            "A Ray address (ray://host:10001, auto) or local:N for N worker processes here. Empty: this computer.\n"
            "Worth it for tens of thousands of images or more; small datasets are faster here."))
        self.cluster.setPlaceholderText("empty: this computer; e.g. ray://host:10001 or local:2")
        self.cluster.setText(ui_settings.get("train/cluster"))
        self.cluster.editingFinished.connect(lambda: ui_settings.put("train/cluster", self.cluster_address()))
        if importlib.util.find_spec("ray") is None:
            self.cluster.setEnabled(False)
            form.addRow(hint('Needs the cluster extra: pip install "tlstudio[cluster]"'))

        self.reset_button = QPushButton("Reset to defaults", self)
        self.reset_button.setToolTip("Put every setting on this page back to its recommended value")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        outer.addWidget(self.reset_button)
        outer.addStretch(1)

        # Committed values go straight to the project (spin boxes commit on Enter, focus out or arrows).
        self.head_epochs.valueChanged.connect(lambda v: self._set(head_epochs=int(v)))
        self.fine_tune_epochs.valueChanged.connect(lambda v: self._set(fine_tune_epochs=int(v)))
        self.early_stopping.toggled.connect(lambda v: self._set(early_stopping=bool(v)))
        self.patience.valueChanged.connect(lambda v: self._set(patience=int(v)))
        self.batch_size.valueChanged.connect(lambda v: self._set(batch_size=int(v)))
        for name in ("head_lr", "fine_tune_lr"):
            box: LearningRateBox = getattr(self, name)
            box.lineEdit().editingFinished.connect(lambda n=name: self._set_lr(n))
            box.activated.connect(lambda _i, n=name: self._set_lr(n))
        self.optimizer.currentIndexChanged.connect(lambda _i: self._set(optimizer=self.optimizer.currentData()))
        self.label_smoothing.valueChanged.connect(lambda v: self._set(label_smoothing=round(float(v), 4)))
        self.dropout.valueChanged.connect(lambda v: self._set(dropout=round(float(v), 4)))
        self.threshold.valueChanged.connect(lambda v: self._set(threshold=round(float(v), 4)))
        self.class_weights.currentIndexChanged.connect(
            lambda _i: self._set(class_weights=self.class_weights.currentData()))
        self.resize_policy.currentIndexChanged.connect(
            lambda _i: self._set(resize_policy=self.resize_policy.currentData()))
        self.augment_group.toggled.connect(lambda v: self._set(augment={"enabled": bool(v)}))
        self.aug_flip.toggled.connect(lambda v: self._set(augment={"flip": bool(v)}))
        for name in AUGMENT_FACTORS:
            getattr(self, f"aug_{name}").valueChanged.connect(
                lambda v, n=name: self._set(augment={n: round(float(v), 4)}))

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.refresh_preview)
        state.train_config_changed.connect(self.refresh)
        state.project_changed.connect(self.refresh)
        state.dataset_changed.connect(self._preview_timer.start)
        state.current_run_changed.connect(self.show_chosen)
        self.refresh()
        self.show_chosen(state.current_run or "")

    def _set(self, **changes: Any) -> None:
        self.state.update_train_config(**changes)

    def _set_lr(self, name: str) -> None:
        value = getattr(self, name).value()
        if value is not None and value != getattr(self.state.project.train, name):
            self._set(**{name: value})

    def refresh(self) -> None:
        """Show ``project.train`` in the form; a field being edited keeps its text."""
        c: TrainConfig = self.state.project.train
        for name in ("head_epochs", "fine_tune_epochs", "early_stopping", "patience", "batch_size", "optimizer",
                     "label_smoothing", "class_weights", "resize_policy", "dropout", "threshold"):
            set_quietly(getattr(self, name), getattr(c, name))
        self.patience.setEnabled(c.early_stopping)
        if self.head_lr.value() != c.head_lr:
            self.head_lr.set_value(c.head_lr)
        if self.fine_tune_lr.value() != c.fine_tune_lr:
            self.fine_tune_lr.set_value(c.fine_tune_lr)
        # 0 means none, unless base layers are ticked on the Model page: core then fine-tunes them anyway.
        fine = training_plan.fine_tune_epochs(c)
        self.fine_tune_epochs.setSpecialValueText(f"{fine} (layers ticked on the Model page)" if fine else "")
        self.fine_tune_lr.setEnabled(fine > 0)
        self._show_automatic(c)
        a = c.augment
        blocked = self.augment_group.blockSignals(True)
        self.augment_group.setChecked(a.enabled)
        self.augment_group.blockSignals(blocked)
        set_quietly(self.aug_flip, a.flip)
        for name in AUGMENT_FACTORS:
            set_quietly(getattr(self, f"aug_{name}"), getattr(a, name))
        self._preview_timer.start()

    def _show_automatic(self, c: TrainConfig) -> None:
        # An automatic field rests and says "Automatic" (with the value the current run chose), never
        # a default number that the run will not use.
        for name, field_name in AUTO_SETTINGS:
            auto = c.is_auto(name)
            set_quietly(self.auto_boxes[name], auto)
            if name == "epochs":  # with varied images (no cache) the run uses the number as it is
                auto = training_plan.runs_to_convergence(c)
            field = getattr(self, field_name)
            field.show_auto(self.auto_text(name) if auto else "")
            field.setEnabled(not auto and (field_name != "fine_tune_lr" or training_plan.fine_tune_epochs(c) > 0))

    def auto_text(self, name: str) -> str:
        """What the field of the automatic setting ``name`` shows: "Automatic", and the last run's choice."""
        chosen = self.chosen.get(name)
        return f"Automatic (last run: {chosen})" if chosen else "Automatic"

    def show_chosen(self, run_dir: str) -> None:
        """Say in plain words what the run in ``run_dir`` chose for the automatic settings."""
        self.chosen_label.setText(describe_chosen(run_dir) if run_dir else "")
        self.chosen = chosen_values(run_dir) if run_dir else {}
        self._show_automatic(self.state.project.train)

    def reset_to_defaults(self) -> None:
        """Every setting of this form back to the TrainConfig default."""
        defaults = TrainConfig()
        self.state.update_train_config(**{name: getattr(defaults, name) for name in PAGE_FIELDS})

    # --- augmentation preview ------------------------------------------------------------------
    def _new_preview_seed(self) -> None:
        self._preview_seed += 1
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Make new augmented samples of a few training images, on a worker thread."""
        train = self.state.project.train
        paths = preview_paths(self.state.scan)
        self.preview_button.setEnabled(train.augment.enabled and bool(paths))
        if not paths:
            self.preview_caption.setText("Choose a dataset to see variations here.")
        elif not train.augment.enabled:
            self.preview_caption.setText("Switch this on to see the variations.")
        else:
            self.preview_caption.setText("Left: the image. Right: random variations.")
        self.preview.refresh(paths, train.augment, train.resize_policy, self._preview_seed)


def chosen_values(run_dir: str) -> dict[str, str]:
    """The value the run in ``run_dir`` chose for each automatic setting (AUTO_SETTINGS names), as text."""
    from tlstudio.core.errors import TlstudioError
    from tlstudio.core.run_folder import read_summary

    try:
        summary = read_summary(run_dir)
    except (TlstudioError, OSError, ValueError):
        return {}
    settings = summary.get("settings") or {}
    auto = set(settings.get("automatic") or []) if isinstance(settings, dict) else set()
    found: dict[str, Any] = {key: settings.get(key) for key in ("head_lr", "fine_tune_lr", "dropout")}
    head = summary.get("head_only")
    found["epochs"] = head.get("run_epoch") if isinstance(head, dict) else None  # the epoch it kept
    threshold = summary.get("threshold")
    found["threshold"] = threshold.get("value") if isinstance(threshold, dict) else None
    formats = {"head_lr": "{:g}", "fine_tune_lr": "{:g}", "dropout": "{:.2f}", "epochs": "{:d}", "threshold": "{:.2f}"}
    return {name: formats[name].format(value) for name, value in found.items()
            if name in auto and isinstance(value, (int, float)) and not isinstance(value, bool)
            and (name != "epochs" or isinstance(value, int))}


def describe_chosen(run_dir: str) -> str:
    """``"The last run chose: learning rate 0.01, ..."`` from its run.json, or "" when it chose nothing yet."""
    from tlstudio.core.errors import TlstudioError
    from tlstudio.core.run_folder import read_summary

    try:
        summary = read_summary(run_dir)
    except (TlstudioError, OSError, ValueError):
        return ""
    settings = summary.get("settings") or {}
    if not isinstance(settings, dict) or not settings:
        return ""
    auto = set(settings.get("automatic") or [])
    parts = []
    for key, words in (("head_lr", "learning rate"), ("dropout", "dropout"), ("fine_tune_lr", "fine-tuning learning rate")):
        value = settings.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{words} {value:g}" + (" (chosen)" if key in auto else ""))
    if summary.get("epochs_run"):
        parts.append(f"{summary.get('epochs_run')} epochs")
    threshold = summary.get("threshold")
    value = threshold.get("value") if isinstance(threshold, dict) else threshold
    if isinstance(value, (int, float)) and value > 0:
        parts.append(f'"not sure" below {value:.0%}')
    text = "The last run used: " + ", ".join(parts) + "."
    kept = summary.get("kept")
    if kept == "after fine-tuning":
        text += " Fine-tuning did better, so it kept the fine-tuned model."
    elif kept == "head only" and "fine_tune_lr" in settings:
        text += " Fine-tuning did not do better, so it kept the model from before fine-tuning."
    return text
