"""The Evaluate page: how good is a trained run, and on which images does it go wrong?

For the run chosen in the selector (``state.current_run``) it shows overall accuracy, a per-class
precision / recall / F1 / support table and the confusion matrix as a clickable heat map. Clicking
a cell fills a gallery with exactly the images of that cell; a second gallery lists the images
with the highest loss (often mislabelled ones). Warnings such as "the model predicts (almost) one
class" are shown in a banner above everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core import run_folder
from tlstudio.gui.curation_hooks import install_on_gallery
from tlstudio.gui.widgets.confusion import ConfusionView
from tlstudio.gui.widgets.gallery import GalleryItem, ImageGallery

SPLIT_LABELS = {"val": "Validation", "test": "Test"}
ONE_CLASS_SHARE = 0.9


def read_evaluation(run_dir: str | Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(evaluation, summary)`` of a run folder; evaluation is None when the run has none or it is damaged."""
    try:
        evaluation = run_folder.read_evaluation(run_dir)
    except run_folder.RunError:
        evaluation = None
    try:
        summary = run_folder.read_summary(run_dir).to_dict()
    except run_folder.RunError:
        summary = {}
    return evaluation, summary


def one_class_warning(classes: list[str], confusion: list[list[int]], split_label: str) -> str | None:
    """A warning when one predicted class takes (almost) all predictions."""
    if len(classes) < 2 or not confusion:
        return None
    columns = [sum(row[c] for row in confusion) for c in range(len(confusion[0]))]
    total = sum(columns)
    if total < 5:
        return None
    top = max(range(len(columns)), key=columns.__getitem__)
    if columns[top] >= ONE_CLASS_SHARE * total:
        return (f"The model predicts '{classes[top]}' for {100 * columns[top] / total:.0f}% of the "
                f"{split_label.lower()} images: it has not learned to tell the classes apart. "
                "Train longer, use more images per class, or check that the classes really look different.")
    return None


class EvaluatePage(QWidget):
    """Evaluation of ``state.current_run``: numbers, heat map, galleries."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_dir: str | None = None
        self.evaluation: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {}
        self.split: str | None = None
        self.selected_cell: tuple[int, int] | None = None
        self._filling = False

        # Top bar: run selector, split switch, open folder.
        self.run_combo = QComboBox(self)
        self.run_combo.setToolTip("The training run to evaluate")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.currentIndexChanged.connect(self._on_run_chosen)
        self.split_label = QLabel("Images:", self)
        self.split_combo = QComboBox(self)
        self.split_combo.setToolTip("Evaluate on the validation images or on the held-out test images")
        self.split_combo.currentIndexChanged.connect(self._on_split_chosen)
        self.open_button = QPushButton("Open run folder", self)
        self.open_button.clicked.connect(self.open_run_folder)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:", self))
        top.addWidget(self.run_combo, 1)
        top.addWidget(self.split_label)
        top.addWidget(self.split_combo)
        top.addWidget(self.open_button)

        self.warning_label = QLabel(self)
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextFormat(Qt.TextFormat.PlainText)
        self.warning_label.setStyleSheet(
            "QLabel { background: #fff3cd; color: #7a4b00; border: 2px solid #e0a800; border-radius: 4px;"
            " padding: 8px; font-weight: bold; }")
        self.warning_label.hide()

        self.accuracy_label = QLabel(self)
        font = self.accuracy_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.accuracy_label.setFont(font)
        self.details_label = QLabel(self)
        self.details_label.setStyleSheet("color: #444;")

        self.confusion = ConfusionView(self)
        self.confusion.cell_clicked.connect(self.show_cell)
        self.class_table = QTableWidget(0, 4, self)
        self.class_table.setHorizontalHeaderLabels(["Precision", "Recall", "F1", "Images"])
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.class_table.setToolTip(
            "Precision: of the images predicted as this class, the share that really are.\n"
            "Recall: of the images of this class, the share the model found.\n"
            "F1: the balance of the two. Images: how many of this class were evaluated.")
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(self.confusion)
        left.addWidget(self.class_table)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)

        self.cell_gallery = ImageGallery(self, empty_text="Click a cell of the confusion matrix to see its images.")
        self.loss_gallery = ImageGallery(self, empty_text="No images.")
        for gallery in (self.cell_gallery, self.loss_gallery):
            install_on_gallery(gallery, state, self)  # select several, then move to class / exclude
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.cell_gallery, "Selected cell")
        self.tabs.addTab(self.loss_gallery, "Highest loss")
        self.tabs.setTabToolTip(1, "The images the model finds hardest: often mislabelled or unusual ones")

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)

        content = QWidget(self)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addWidget(self.warning_label)
        content_layout.addWidget(self.accuracy_label)
        content_layout.addWidget(self.details_label)
        content_layout.addWidget(split, 1)

        self.empty_label = QLabel(self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: #666; font-size: 14px;")
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(content)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)

        state.runs_changed.connect(self._fill_runs)
        state.project_changed.connect(self._fill_runs)
        state.current_run_changed.connect(self._on_current_run_changed)
        self._fill_runs()

    # --- run selection ---------------------------------------------------------------------------
    def _fill_runs(self) -> None:
        self._filling = True
        try:
            self.run_combo.clear()
            for run in reversed(self.state.project.runs):
                label = run.name or Path(run.run_dir).name
                extra = []
                if run.val_accuracy is not None:
                    extra.append(f"val {100 * run.val_accuracy:.1f}%")
                if run.status and run.status != "finished":
                    extra.append(run.status)
                if run.base:
                    extra.append(run.base)
                self.run_combo.addItem(f"{label}  ({', '.join(extra)})" if extra else label, run.run_dir)
            current = self.state.current_run
            index = self.run_combo.findData(current) if current else -1
            if index < 0 and current:
                self.run_combo.addItem(Path(current).name, current)
                index = self.run_combo.count() - 1
            self.run_combo.setCurrentIndex(index)
        finally:
            self._filling = False
        self.load_run(self.state.current_run)

    def _on_run_chosen(self, index: int) -> None:
        if self._filling or index < 0:
            return
        self.state.set_current_run(self.run_combo.itemData(index))

    def _on_current_run_changed(self, run_dir: str) -> None:
        index = self.run_combo.findData(run_dir) if run_dir else -1
        if index >= 0 and index != self.run_combo.currentIndex():
            self._filling = True
            self.run_combo.setCurrentIndex(index)
            self._filling = False
        elif index < 0 and run_dir:
            self._fill_runs()
            return
        self.load_run(run_dir or None)

    # --- loading ---------------------------------------------------------------------------------
    def load_run(self, run_dir: str | None) -> None:
        """Show the evaluation of ``run_dir`` (None: the empty state)."""
        if run_dir == self.run_dir and self.evaluation is not None:
            return
        self.run_dir = run_dir
        self.evaluation, self.summary = (None, {}) if not run_dir else read_evaluation(run_dir)
        self.open_button.setEnabled(bool(run_dir))
        splits = [s for s in ("val", "test") if (self.evaluation or {}).get("splits", {}).get(s)]
        self._filling = True
        self.split_combo.clear()
        for s in splits:
            self.split_combo.addItem(SPLIT_LABELS[s], s)
        self._filling = False
        both = len(splits) > 1
        self.split_combo.setVisible(both)
        self.split_label.setVisible(both)
        if not splits:
            if not run_dir:
                text = "No trained run yet.\nTrain a model on the Train page; its evaluation appears here."
            elif not Path(run_dir).is_dir():  # moved or deleted since the project listed it
                text = f"Run folder not found: {run_dir}"
            elif self.evaluation is None:
                text = (f"This run has no evaluation yet ({Path(run_dir).name}).\n"
                        "A run that was cancelled before its first epoch ended, or failed, has none.")
            else:
                text = "This run's evaluation holds no validation or test results."
            self.empty_label.setText(text)
            self.stack.setCurrentIndex(0)
            self.split = None
            self.cell_gallery.clear()
            self.loss_gallery.clear()
            return
        self.stack.setCurrentIndex(1)
        self.split_combo.setCurrentIndex(0)
        self.show_split(splits[0])

    def _on_split_chosen(self, index: int) -> None:
        if not self._filling and index >= 0:
            self.show_split(self.split_combo.itemData(index))

    def classes(self) -> list[str]:
        return list((self.evaluation or {}).get("classes") or self.summary.get("classes") or [])

    def split_data(self) -> dict[str, Any]:
        return (self.evaluation or {}).get("splits", {}).get(self.split or "", {}) or {}

    def show_split(self, split: str) -> None:
        self.split = split
        self.selected_cell = None
        data = self.split_data()
        classes = self.classes()
        label = SPLIT_LABELS.get(split, split)
        confusion = data.get("confusion") or []
        n = sum(sum(row) for row in confusion) or len(data.get("samples") or [])
        acc = data.get("accuracy")
        from tlstudio.core.data.holdout import format_accuracy

        # With the 95 % interval: 9 of 10 right is not the same news as 900 of 1,000.
        self.accuracy_label.setText(
            f"{label} accuracy: {format_accuracy(round(acc * n), n)}" if acc is not None and n
            else f"{label}: no accuracy")
        details = []
        if data.get("loss") is not None:
            details.append(f"loss {data['loss']:.3f}")
        if data.get("macro_f1") is not None:
            details.append(f"macro F1 {data['macro_f1']:.3f}")
        if self.summary.get("base"):
            details.append(f"base {self.summary['base']}")
        if self.summary.get("epochs_run"):
            details.append(f"{self.summary['epochs_run']} epochs")
        if self.summary.get("status") and self.summary.get("status") != "finished":
            details.append(f"run {self.summary['status']}")
        self.details_label.setText("  ·  ".join(details))

        warnings = [str(w) for w in (self.evaluation or {}).get("warnings") or []]
        if not warnings:
            local = one_class_warning(classes, confusion, label)
            if local:
                warnings.append(local)
        if acc is not None and n and isinstance(data.get("per_class"), dict):
            from tlstudio.core.evaluate import reliability_warnings

            warnings += [w[:1].upper() + w[1:] for w in reliability_warnings({**data, "n": n}, classes)]
        self.warning_label.setText("⚠  " + "\n⚠  ".join(warnings) if warnings else "")
        self.warning_label.setVisible(bool(warnings))

        self.confusion.set_matrix(classes, confusion)
        per_class = data.get("per_class") or {}
        self.class_table.setRowCount(len(classes))
        self.class_table.setVerticalHeaderLabels(classes)
        for r, name in enumerate(classes):
            stats = per_class.get(name) or {}
            for c, key in enumerate(("precision", "recall", "f1", "support")):
                value = stats.get(key)
                text = "" if value is None else (str(int(value)) if key == "support" else f"{value:.3f}")
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(r, c, item)
        # As tall as its rows (up to ten), so the heat map gets the room.
        table = self.class_table
        rows_height = sum(table.rowHeight(r) for r in range(min(len(classes), 10)))
        table.setMaximumHeight(table.horizontalHeader().sizeHint().height() + rows_height + 2 * table.frameWidth() + 4)

        self.cell_gallery.clear()
        self.tabs.setCurrentWidget(self.cell_gallery)
        top = data.get("top_losses") or sorted(data.get("samples") or [], key=lambda s: -float(s.get("loss", 0)))
        self.loss_gallery.set_items([self._gallery_item(s, with_loss=True) for s in top],
                                    f"The {len(top)} images with the highest loss, hardest first. "
                                    "Wrong labels often show up here.")

    # --- galleries -------------------------------------------------------------------------------
    def _abs_path(self, rel: str) -> str:
        data_dir = (self.evaluation or {}).get("data_dir") or ""
        p = Path(rel)
        return str(p if p.is_absolute() or not data_dir else Path(data_dir) / p)

    def _gallery_item(self, sample: dict[str, Any], *, with_loss: bool = False) -> GalleryItem:
        classes = self.classes()

        def name(i: int) -> str:
            return classes[i] if 0 <= i < len(classes) else str(i)

        true, pred = name(int(sample["true"])), name(int(sample["pred"]))
        prob = float(sample.get("prob", 0.0))
        mark = "✓" if sample["true"] == sample["pred"] else "✗"
        caption = f"{mark} {true} → {pred}\n{100 * prob:.0f}% sure"
        if with_loss and sample.get("loss") is not None:
            caption += f" · loss {float(sample['loss']):.2f}"
        path = self._abs_path(str(sample["path"]))
        tooltip = f"{sample['path']}\ntrue: {true}\npredicted: {pred} ({100 * prob:.1f}%)"
        if sample.get("loss") is not None:
            tooltip += f"\nloss: {float(sample['loss']):.3f}"
        return GalleryItem(path=path, caption=caption, tooltip=tooltip + "\nDouble-click to open its folder.")

    def cell_samples(self, true_index: int, pred_index: int) -> list[dict[str, Any]]:
        samples = [s for s in self.split_data().get("samples") or []
                   if int(s["true"]) == true_index and int(s["pred"]) == pred_index]
        return sorted(samples, key=lambda s: -float(s.get("prob", 0.0)))

    def show_cell(self, true_index: int, pred_index: int) -> None:
        """Fill the cell gallery with exactly the images of one confusion-matrix cell."""
        self.selected_cell = (true_index, pred_index)
        classes = self.classes()
        samples = self.cell_samples(true_index, pred_index)
        t = classes[true_index] if true_index < len(classes) else str(true_index)
        p = classes[pred_index] if pred_index < len(classes) else str(pred_index)
        if true_index == pred_index:
            title = f"{len(samples)} '{t}' image(s) recognised correctly, most confident first"
        else:
            title = f"{len(samples)} '{t}' image(s) mistaken for '{p}', most confident first"
        self.cell_gallery.set_items([self._gallery_item(s) for s in samples], title)
        self.tabs.setCurrentWidget(self.cell_gallery)

    def open_run_folder(self) -> None:
        if self.run_dir:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.run_dir))

    def shutdown(self, msecs: int = 5000) -> None:
        """Stop thumbnail work (the window is closing)."""
        self.cell_gallery.shutdown(msecs)
        self.loss_gallery.shutdown(msecs)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
