"""The Export dialog: pick formats, a destination and "verify"; see each file with its size and check.

The export runs on an :class:`~tlstudio.workers.export_worker.ExportWorker` with progress and Cancel.
A format that needs an optional package that is not installed (ONNX needs tf2onnx) is explained in
the result table and the note below it, never as a traceback.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui import file_dialogs
from tlstudio.gui.widgets.model_source import ModelSourceBox
from tlstudio.workers.base import registry, start_worker
from tlstudio.workers.export_worker import PROGRESS_SCALE, ExportWorker

#: (format key of core.export, label, explanation, optional modules it needs)
FORMAT_CHOICES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("keras", "Keras (.keras)", "The full model, for Python and for tlstudio itself.", ()),
    ("savedmodel", "TensorFlow SavedModel", "A folder for TensorFlow Serving and TF.js converters.", ()),
    ("tflite", "TFLite float32", "For phones and small devices; same accuracy as the original.", ()),
    ("tflite-f16", "TFLite float16", "Half the size; nearly identical results.", ()),
    ("tflite-int8", "TFLite int8", "A quarter of the size, fastest on CPUs; calibrated on your images.", ()),
    ("onnx", "ONNX", "For ONNX Runtime, C#, C++ and other runtimes.", ("tf2onnx", "onnx")),
    ("web", "Web page", "A folder that runs the model in any browser, offline (ONNX Runtime Web).", ("tf2onnx", "onnx")),
)
DEFAULT_FORMATS = ("keras", "tflite")
INSTALL_HINT = {
    "onnx": "pip install 'tlstudio[onnx]'  (tf2onnx, onnx, onnxruntime)",
    "web": "pip install 'tlstudio[web]'  (tf2onnx, onnx; Playwright and Chromium to verify)",
}


def human_size(size) -> str:
    """``1.4 MB`` style sizes (powers of 1000, as file managers show them)."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        return ""
    if value < 1000:
        return f"{int(value)} bytes"
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}"
    return ""


def _missing_modules(modules: tuple[str, ...]) -> list[str]:
    missing = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


class ExportDialog(QDialog):
    """Export a run's model (or an opened model file) to the chosen formats.

    ``ExportDialog(state, parent=None, run_dir=None)``: ``run_dir`` preselects the model to export,
    else the current run, else the opened model file.
    """

    COLUMNS = ("Format", "File", "Size", "Top-1 agreement", "Largest prob. difference", "Note")

    def __init__(self, state, parent: QWidget | None = None, run_dir: str | Path | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Export model")
        self.setMinimumWidth(760)
        self._handle = None
        self._worker: ExportWorker | None = None
        self.outcomes: list = []
        self.summary = None
        self._finished_state: str | None = None
        self._running = False
        self._close_when_done = False

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.source_combo = ModelSourceBox(state)
        self.source_combo.setMinimumWidth(420)
        self.source_combo.currentIndexChanged.connect(self._on_source_changed)
        form.addRow("Model:", self.source_combo)
        dest_row = QHBoxLayout()
        self.dest_edit = QLineEdit()
        self.dest_edit.setPlaceholderText("Folder to write the exported files into")
        dest_row.addWidget(self.dest_edit, 1)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        dest_row.addWidget(self.browse_button)
        form.addRow("Destination:", dest_row)
        layout.addLayout(form)

        formats_box = QGroupBox("Formats")
        grid = QGridLayout(formats_box)
        self.format_boxes: dict[str, QCheckBox] = {}
        self._missing: dict[str, list[str]] = {}
        for row, (key, label, text, needs) in enumerate(FORMAT_CHOICES):
            box = QCheckBox(label)
            box.setChecked(key in DEFAULT_FORMATS)
            box.toggled.connect(self._update_buttons)
            note = QLabel(text)
            note.setStyleSheet("color: palette(mid);")
            missing = _missing_modules(needs)
            if missing:
                self._missing[key] = missing
                note.setText(
                    f"{text}  Needs {', '.join(missing)} (not installed): {INSTALL_HINT.get(key, '')}"
                )
                note.setStyleSheet("color: #b9770e;")
                note.setWordWrap(True)
            grid.addWidget(box, row, 0)
            grid.addWidget(note, row, 1)
            self.format_boxes[key] = box
        grid.setColumnStretch(1, 1)
        layout.addWidget(formats_box)

        self.verify_box = QCheckBox(
            "Verify: run each exported file on sample images and compare it with the original model"
        )
        self.verify_box.setChecked(True)
        layout.addWidget(self.verify_box)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_SCALE)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        progress_row.addWidget(self.progress, 1)
        self.status_label = QLabel("")
        progress_row.addWidget(self.status_label, 2)
        layout.addLayout(progress_row)

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(150)
        layout.addWidget(self.table, 1)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note_label.hide()
        layout.addWidget(self.note_label)

        buttons = QDialogButtonBox()
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.cancel_button = buttons.addButton("Cancel export", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.open_button.clicked.connect(self.open_folder)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(buttons)

        self._fill_sources(run_dir)
        self._update_buttons()

    # --- the form ---------------------------------------------------------------------------------

    def _fill_sources(self, preferred) -> None:
        self.source_combo.blockSignals(True)
        self.source_combo.refresh()
        if preferred and Path(preferred).exists():
            self.source_combo.set_source(preferred, notify=False)
        self.source_combo.blockSignals(False)
        self._on_source_changed()

    def source(self) -> str | None:
        return self.source_combo.source()

    def set_destination(self, folder: str | Path) -> None:
        self.dest_edit.setText(str(folder))

    def set_formats(self, formats) -> None:
        for key, box in self.format_boxes.items():
            box.setChecked(key in formats)

    def selected_formats(self) -> list[str]:
        return [key for key, box in self.format_boxes.items() if box.isChecked()]

    def _on_source_changed(self, *_args) -> None:
        source = self.source()
        if source is None:
            self.status_label.setText("There is no trained model to export yet.")
        else:
            from tlstudio.core.deploy.export import free_folder  # exports never go into a non-empty folder

            base = Path(source) if Path(source).is_dir() else Path(source).parent
            self.dest_edit.setText(str(free_folder(base / "export")))
        self._update_buttons()

    def _browse(self) -> None:
        folder = file_dialogs.open_folder(self, "Export into", self.dest_edit.text())
        if folder:
            self.dest_edit.setText(folder)

    def _update_buttons(self, *_args) -> None:
        running = self.is_running()
        self.export_button.setEnabled(
            not running
            and self.source() is not None
            and bool(self.selected_formats())
            and bool(self.dest_edit.text())
        )
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(not running and self.summary is not None)
        for widget in (
            self.source_combo,
            self.dest_edit,
            self.browse_button,
            self.verify_box,
            *self.format_boxes.values(),
        ):
            widget.setEnabled(not running)

    # --- the export ---------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def start_export(self) -> None:
        source = self.source()
        formats = self.selected_formats()
        dest = self.dest_edit.text().strip()
        if not source or not formats or not dest or self.is_running():
            return
        self.table.setRowCount(0)
        self.outcomes = []
        self.summary = None
        self._finished_state = None
        self.note_label.hide()
        self.progress.setValue(0)
        self.status_label.setText("Starting… (the first export loads TensorFlow and the model)")
        worker = ExportWorker(source, formats, dest, verify=self.verify_box.isChecked())
        worker.format_done.connect(self._on_format_done)
        self._worker = worker
        self._running = True
        self._handle = start_worker(worker, name="export", owner=self, connect={
            "progress": self._on_progress, "message": self._on_message, "finished": self._on_succeeded,
            "failed": self._on_failed, "cancelled": self._on_cancelled})
        self._update_buttons()

    def cancel_export(self) -> None:
        if self._handle is not None:
            self.status_label.setText("Cancelling…")
            self._handle.cancel()

    def open_folder(self) -> None:
        folder = self.summary.destination if self.summary is not None else self.dest_edit.text()
        if folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def shutdown(self, msecs: int = 60000) -> None:
        """Cancel a running export and wait for its thread (closing the dialog or the app)."""
        registry.shutdown(owner=self, msecs=msecs)

    def reject(self) -> None:
        """Close; while an export runs, cancel it first and close once its current step has ended."""
        if self.is_running():
            self._close_when_done = True
            self.cancel_export()
            self.status_label.setText("Cancelling… the dialog closes when the current step ends.")
            return
        super().reject()

    def closeEvent(self, event) -> None:
        if self.is_running():
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    # --- worker signals ---------------------------------------------------------------------------

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_message(self, text: str) -> None:
        self.status_label.setText(text)

    def _on_format_done(self, outcome) -> None:
        self.outcomes.append(outcome)
        label = dict((k, lab) for k, lab, _t, _n in FORMAT_CHOICES).get(outcome.fmt, outcome.fmt)
        if outcome.error:
            note = outcome.error
            if outcome.missing_dependency and outcome.fmt in INSTALL_HINT and "pip install" not in note:
                note += f"  To enable it: {INSTALL_HINT[outcome.fmt]}"
            self._add_row([label, "", "", "", "", note], error=True)
            return
        v = outcome.verification or {}
        agreement = v.get("top1_agreement")
        diff = v.get("max_prob_diff")
        n = v.get("n")
        if outcome.verification is None:
            check = "not verified"
        elif v.get("ok", True):
            check = f"verified on {n} images" if n else "verified"
        else:
            check = "outputs differ from the original: check the figures"
        if outcome.notes:
            check += "; " + "; ".join(outcome.notes)
        files = outcome.files or (("", 0),)
        for i, (path, size) in enumerate(files):
            self._add_row(
                [
                    label if i == 0 else "",
                    Path(path).name if path else "",
                    human_size(size) if path else "",
                    "" if agreement is None or i else f"{agreement:.1%}",
                    "" if diff is None or i else f"{diff:.2g}",
                    check if i == 0 else "",
                ],
                error=bool(outcome.verification) and not v.get("ok", True) and i == 0,
                tooltip=path,
                muted=i > 0,  # labels.txt, model card and sample script beside the model
            )

    def _add_row(
        self, values: list[str], error: bool = False, tooltip: str = "", muted: bool = False
    ) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if muted:
                item.setForeground(QBrush(QColor("#777777")))
            if tooltip:
                item.setToolTip(tooltip)
            if col == len(values) - 1 and text:
                item.setToolTip(text)
            if col in (2, 3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if error and col == len(values) - 1:
                item.setForeground(QBrush(QColor("#c0392b")))
            self.table.setItem(row, col, item)

    def _on_succeeded(self, summary) -> None:
        self.summary = summary
        self._finished_state = "finished"
        ok = [o for o in summary.outcomes if o.ok]
        failed = [o for o in summary.outcomes if not o.ok]
        # A folder export (web) lists its folder and then what is in it: count each byte once.
        total = sum(size for o in ok for p, size in o.files if not any(Path(p).parent == Path(q) for q, _s in o.files))
        text = f"Exported {len(ok)} format{'s' if len(ok) != 1 else ''} ({human_size(total)}) to {summary.destination}"
        if failed:
            text += f"; {len(failed)} failed (see the table)"
        self.status_label.setText(text)
        self.progress.setValue(self.progress.maximum())
        missing = [o for o in failed if o.missing_dependency]
        if missing:
            self.note_label.setText(
                "Some formats need optional packages that are not installed: "
                + "; ".join(f"{o.fmt}: {o.error}" for o in missing)
            )
            self.note_label.setStyleSheet("color: #b9770e;")
            self.note_label.show()
        self._on_done()

    def _on_failed(self, message: str) -> None:
        self._finished_state = "failed"
        self.status_label.setText("Export failed.")
        self.note_label.setText(message)
        self.note_label.setStyleSheet("color: #c0392b;")
        self.note_label.show()
        self._on_done()

    def _on_cancelled(self) -> None:
        self._finished_state = "cancelled"
        self.status_label.setText("Export cancelled; the files already written are kept.")
        self._on_done()

    def _on_done(self) -> None:
        self._running = False
        self._worker = None
        if self._close_when_done:
            QTimer.singleShot(0, self.reject)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def finished_state(self) -> str | None:
        """ "finished", "failed", "cancelled", or None while running or before the first export."""
        return self._finished_state
