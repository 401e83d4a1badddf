"""The Test page: drop images or folders, paste an image, or open files, and see what the model says.

Each image becomes a :class:`~tlstudio.gui.widgets.prediction_card.PredictionCard`; a folder becomes a sortable
table (file, top-1, probability, note) that can be saved as CSV. One long-lived
:class:`~tlstudio.workers.predict_worker.PredictWorker` keeps the model loaded between requests, so only
the first prediction waits for the model.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QShortcut,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core import run_folder
from tlstudio.core.atomic import write_text
from tlstudio.gui.widgets.prediction_card import FlowLayout, PredictionCard, qimage_to_array
from tlstudio.workers.base import start_worker
from tlstudio.workers.predict_worker import PredictWorker

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
OTHER_MODEL = "__other__"
MODEL_SUFFIXES = {".keras", ".h5", ".hdf5"}


def _files_in(folder: Path) -> list[Path]:
    """Every visible file under ``folder`` (sorted); files that are not images get their reason later."""
    from tlstudio.core.deploy.batch import collect_files

    return collect_files([folder])


class FolderResults(QWidget):
    """The predictions for one dropped folder: a sortable table, progress, Cancel and Save CSV."""

    cancel_requested = Signal(int)

    COLUMNS = ("File", "Top-1", "Probability", "Note")

    def __init__(self, job_id: int, folder: Path, paths: list[Path], parent=None) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.folder = Path(folder)
        self.paths = list(paths)
        self.predictions: list = []
        self.finished = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.status_label = QLabel(f"{len(paths)} files in {self.folder}")
        bar.addWidget(self.status_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, len(paths)))
        self.progress.setMaximumWidth(220)
        bar.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel)
        bar.addWidget(self.cancel_button)
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_csv_dialog)
        bar.addWidget(self.save_button)
        layout.addLayout(bar)

        self.model = QStandardItemModel(0, len(self.COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(1, 140)
        self.table.setColumnWidth(2, 90)
        self.table.doubleClicked.connect(self._open_file)
        layout.addWidget(self.table)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status_label.setText(f"Predicting {done} / {total} files in {self.folder.name}…")

    def set_waiting(self, text: str) -> None:
        if not self.finished:
            self.status_label.setText(text)

    def set_results(self, predictions, cancelled: bool = False) -> None:
        self.finished = True
        self.predictions = list(predictions)
        self.model.setRowCount(0)
        for path, prediction in zip(self.paths, self.predictions, strict=False):
            self.model.appendRow(self._row(path, prediction))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        failed = sum(1 for p in self.predictions if p.error)
        text = f"{len(self.predictions)} files predicted"
        if failed:
            text += f", {failed} could not be read"
        if cancelled:
            text = f"Cancelled after {len(self.predictions)} of {len(self.paths)} files"
        self.status_label.setText(text)
        self.progress.setValue(self.progress.maximum() if not cancelled else len(self.predictions))
        self.cancel_button.setEnabled(False)
        self.save_button.setEnabled(bool(self.predictions))

    def _row(self, path: Path, prediction) -> list[QStandardItem]:
        rel = _relative(path, self.folder)
        file_item = QStandardItem(rel)
        file_item.setData(rel.lower(), SORT_ROLE)
        file_item.setData(str(path), PATH_ROLE)
        file_item.setToolTip(str(path))
        if prediction.error:
            top = QStandardItem("—")
            top.setData("", SORT_ROLE)
            prob = QStandardItem("")
            prob.setData(-1.0, SORT_ROLE)
            note = QStandardItem(prediction.error)
            note.setData(prediction.error, SORT_ROLE)
            note.setForeground(QBrush(QColor("#c0392b")))
            note.setToolTip(prediction.error)
        else:
            top = QStandardItem(prediction.label)
            top.setData(prediction.label.lower(), SORT_ROLE)
            prob = QStandardItem(f"{prediction.probability:.1%}")
            prob.setData(float(prediction.probability), SORT_ROLE)
            prob.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            others = ", ".join(f"{name} {p:.0%}" for name, p in prediction.top[1:])
            note = QStandardItem(others)
            note.setData(others, SORT_ROLE)
        return [file_item, top, prob, note]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table as shown (in the current sort order), for tests and copying."""
        out = []
        for r in range(self.proxy.rowCount()):
            out.append(tuple(self.proxy.index(r, c).data() or "" for c in range(len(self.COLUMNS))))
        return out

    def csv_text(self) -> str:
        """The predictions as CSV, in the format of ``tlstudio predict --csv``."""
        from tlstudio.core.deploy.batch import CSV_HEADER, csv_row

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for prediction in self.predictions:
            writer.writerow(csv_row(prediction))
        return buf.getvalue()

    def save_csv(self, path: str | Path) -> None:
        write_text(Path(path), self.csv_text())

    def save_csv_dialog(self) -> None:
        default = str(self.folder.parent / f"{self.folder.name}-predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Save predictions", default, "CSV files (*.csv)")
        if not path:
            return
        try:
            self.save_csv(path)
        except OSError as exc:
            QMessageBox.warning(self, "Save CSV", f"Cannot write {path}: {exc.strerror or exc}")
            return
        self.status_label.setText(f"Saved {Path(path).name}")

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling…")
        self.cancel_requested.emit(self.job_id)

    def _open_file(self, index) -> None:
        path = self.proxy.index(index.row(), 0).data(PATH_ROLE)
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


class TestPage(QWidget):
    """Drag-and-drop testing of a trained model (or of a model file opened from disk)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setAcceptDrops(True)
        self._worker: PredictWorker | None = None
        self._handle = None
        self._loaded_model: str | None = None
        self._loading = False
        self._ready_text = ""
        self._preload_requested: str | None = None
        self._next_id = 1
        self.cards: dict[int, PredictionCard] = {}
        self.folders: dict[int, FolderResults] = {}
        self._card_model: dict[int, str] = {}
        self._gradcam_requested: set[int] = set()
        self._other_models: list[str] = []

        layout = QVBoxLayout(self)

        # Two rows, so nothing overlaps at the default window width: which model, then what to test.
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(280)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.activated.connect(self._on_model_activated)
        top.addWidget(self.model_combo, 1)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the chosen model: .keras, SavedModel, TFLite, ONNX")
        self.export_button.clicked.connect(self.open_export_dialog)
        top.addWidget(self.export_button)
        layout.addLayout(top)

        actions = QHBoxLayout()
        self.open_files_button = QPushButton("Open images…")
        self.open_files_button.clicked.connect(self.open_files_dialog)
        actions.addWidget(self.open_files_button)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        actions.addWidget(self.open_folder_button)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Test an image from the clipboard (Ctrl+V)")
        self.paste_button.clicked.connect(self.paste)
        actions.addWidget(self.paste_button)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        actions.addWidget(self.clear_button)
        actions.addStretch(1)
        actions.addWidget(QLabel("Show the top"))
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 10)
        self.top_k.setValue(3)
        actions.addWidget(self.top_k)
        self.gradcam_all = QCheckBox("Show Grad-CAM")
        self.gradcam_all.setToolTip("Overlay on every card the regions that drove the top prediction")
        self.gradcam_all.toggled.connect(self._on_gradcam_all)
        actions.addWidget(self.gradcam_all)
        layout.addLayout(actions)

        self.model_status = QLabel()
        self.model_status.setWordWrap(True)
        layout.addWidget(self.model_status)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.cards_area = QScrollArea()
        self.cards_area.setWidgetResizable(True)
        self.cards_host = QWidget()
        self.cards_layout = FlowLayout(self.cards_host)
        self.cards_area.setWidget(self.cards_host)
        self.hint = QLabel(
            "Drop images or folders here, paste an image (Ctrl+V), or use Open images… / Open folder…"
        )
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: palette(mid); font-size: 15px; padding: 40px;")
        cards_box = QWidget()
        cards_layout = QVBoxLayout(cards_box)
        cards_layout.setContentsMargins(0, 0, 0, 0)
        cards_layout.addWidget(self.hint)
        cards_layout.addWidget(self.cards_area, 1)
        self.splitter.addWidget(cards_box)
        self.folder_tabs = QTabWidget()
        self.folder_tabs.setTabsClosable(True)
        self.folder_tabs.tabCloseRequested.connect(self._close_folder_tab)
        self.folder_tabs.hide()
        self.splitter.addWidget(self.folder_tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.cards_area.setMinimumHeight(200)
        layout.addWidget(self.splitter, 1)
        self._update_hint()

        self._paste_shortcut = QShortcut(QKeySequence.StandardKey.Paste, self)
        self._paste_shortcut.activated.connect(self.paste)

        state.runs_changed.connect(self.refresh_models)
        state.current_run_changed.connect(self._on_current_run_changed)
        state.project_changed.connect(self.refresh_models)
        if hasattr(state, "opened_model_changed"):
            state.opened_model_changed.connect(self._on_opened_model_changed)
        app = QGuiApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.refresh_models()
        opened = getattr(state, "opened_model", None)
        if opened:  # a model the user opened explicitly (File > Open model) wins over the latest run
            self.set_model_source(opened)

    # --- model choice ------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Fill the model list: the project's runs (newest first), the opened model, other files."""
        previous = self.model_source()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for run in reversed(self.state.project.runs):
            run_dir = Path(run.run_dir)
            extra = []
            if run.base:
                extra.append(run.base)
            if run.val_accuracy is not None:
                extra.append(f"val {run.val_accuracy:.1%}")
            if run.status and run.status != "finished":
                extra.append(run.status)
            label = (run.name or f"Run {run_dir.name}") + (f"  ({', '.join(extra)})" if extra else "")
            self.model_combo.addItem(label, str(run_dir))
            if not run_folder.has_model(run_dir):
                idx = self.model_combo.count() - 1
                self.model_combo.setItemData(
                    idx, "The run folder holds no trained model", Qt.ItemDataRole.ToolTipRole
                )
        opened = getattr(self.state, "opened_model", None)
        for path in ([opened] if opened else []) + self._other_models:
            if self.model_combo.findData(str(path)) < 0:
                self.model_combo.addItem(f"Model file {Path(path).name}", str(path))
        self.model_combo.addItem("Other model file…", OTHER_MODEL)
        wanted = previous or self.state.current_run or opened
        idx = self.model_combo.findData(str(wanted)) if wanted else -1
        self.model_combo.setCurrentIndex(idx if idx >= 0 else 0)
        self.model_combo.blockSignals(False)
        self._update_model_status()

    def model_source(self) -> str | None:
        """The run folder or model file that new predictions use."""
        data = self.model_combo.currentData()
        return None if data in (None, OTHER_MODEL) else str(data)

    def set_model_source(self, source: str | Path) -> None:
        source = str(source)
        if self.model_combo.findData(source) < 0:
            self._other_models.append(source)
            self.refresh_models()
        self.model_combo.setCurrentIndex(self.model_combo.findData(source))
        self._model_choice_changed()

    def _on_model_activated(self, index: int) -> None:
        if self.model_combo.itemData(index) == OTHER_MODEL:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open a model to test", "", "Keras models (*.keras *.h5);;All files (*)"
            )
            if path:
                self.set_model_source(path)
            else:
                self.refresh_models()
            return
        self._model_choice_changed()

    def _on_current_run_changed(self, run_dir: str) -> None:
        if run_dir:
            idx = self.model_combo.findData(str(run_dir))
            if idx < 0:
                self.refresh_models()
                idx = self.model_combo.findData(str(run_dir))
            if idx >= 0:
                self.model_combo.setCurrentIndex(idx)
        self._model_choice_changed()

    def _on_opened_model_changed(self, path: str) -> None:
        self.refresh_models()
        if path:
            self.set_model_source(path)

    def _update_model_status(self) -> None:
        source = self.model_source()
        if source is None:
            self._set_status("No model to test yet: train a run, or choose Other model file….")
        elif source == self._loaded_model and not self._loading:
            self._set_status(self._ready_text)
        elif self._loading:
            pass  # "Loading…" stays until the worker says it is ready
        else:
            self._set_status("The model is loaded on the first prediction (this takes a few seconds).")

    def preload(self) -> None:
        """Start loading the chosen model in the background, so the first prediction does not wait for it."""
        source = self.model_source()
        if source is None or source == self._loaded_model or source == self._preload_requested:
            return
        if not Path(source).exists():
            return
        worker = self._ensure_worker()
        self._preload_requested = source
        worker.submit_load(source)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.preload()

    def _model_choice_changed(self) -> None:
        self._update_model_status()
        if self.isVisible():
            self.preload()

    def _display_name(self, source: str) -> str:
        run = self.state.find_run(source) if hasattr(self.state, "find_run") else None
        if run is not None and run.name:
            return run.name
        return Path(source).name

    def _set_status(self, text: str, error: bool = False) -> None:
        self.model_status.setText(text)
        self.model_status.setStyleSheet("color: #c0392b;" if error else "")

    def open_export_dialog(self):
        """Open the Export dialog for the model chosen here; returns the dialog."""
        from tlstudio.gui.dialogs.export import ExportDialog

        dialog = ExportDialog(self.state, self, run_dir=self.model_source())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # --- input: drop, paste, open --------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        urls = list(mime.urls() or [])
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        if paths:
            self.add_paths(paths)
        elif mime.hasImage():
            image = mime.imageData()
            if image is not None and not image.isNull():
                self.add_array(qimage_to_array(image), "Dropped image")
        event.acceptProposedAction()

    def paste(self) -> None:
        """Test the clipboard: image data, or files copied in a file manager."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if paths:
            self.add_paths(paths)
        elif mime.hasImage():
            image = QGuiApplication.clipboard().image()
            if not image.isNull():
                self.add_array(qimage_to_array(image), "Pasted image")
        else:
            self.state.message("The clipboard holds no image.")

    def open_files_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images to test", "", f"Images ({patterns});;All files (*)"
        )
        if files:
            self.add_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images to test")
        if folder:
            self.add_paths([Path(folder)])

    def add_paths(self, paths: list[Path]) -> None:
        """Files become cards, folders become tables."""
        files = []
        for path in paths:
            if path.is_dir():
                self.add_folder(path)
            elif path.suffix.lower() in MODEL_SUFFIXES:
                # A dropped model file is the model to test, not an image.
                if hasattr(self.state, "set_opened_model"):
                    self.state.set_opened_model(path)
                else:
                    self.set_model_source(path)
            else:
                files.append(path)
        if files:
            self.add_images(files)

    def add_images(self, paths: list[Path]) -> list[int]:
        return self._submit_items([(str(p), p.name) for p in paths])

    def add_array(self, array, title: str) -> int:
        return self._submit_items([(array, title)])[0]

    def _submit_items(self, items: list) -> list[int]:
        model = self._require_model()
        if model is None:
            return []
        worker = self._ensure_worker()
        requests, ids = [], []
        for source, title in items:
            item_id = self._new_id()
            card = PredictionCard(item_id, title, source)
            card.gradcam_toggled.connect(self._on_card_gradcam)
            card.close_requested.connect(self.remove_card)
            card.set_waiting(self._waiting_text(model))
            if not isinstance(source, str):
                from PIL import Image

                card.set_thumbnail(Image.fromarray(source))
            self.cards_layout.addWidget(card)
            self.cards[item_id] = card
            self._card_model[item_id] = model
            requests.append((item_id, source))
            ids.append(item_id)
        self._update_hint()
        worker.submit_images(model, requests, top_k=self.top_k.value())
        return ids

    def add_folder(self, folder: Path) -> int | None:
        model = self._require_model()
        if model is None:
            return None
        paths = _files_in(folder)
        if not paths:
            self.state.message(f"{folder} holds no files.")
            QMessageBox.information(self, "Test a folder", f"{folder} holds no files to test.")
            return None
        job_id = self._new_id()
        panel = FolderResults(job_id, folder, paths)
        panel.cancel_requested.connect(self._cancel_folder)
        panel.set_waiting(self._waiting_text(model))
        self.folders[job_id] = panel
        self.folder_tabs.addTab(panel, folder.name or str(folder))
        self.folder_tabs.setCurrentWidget(panel)
        if self.folder_tabs.isHidden():
            self.folder_tabs.show()
            total = max(400, sum(self.splitter.sizes()))
            self.splitter.setSizes([int(total * 0.6), total - int(total * 0.6)])
        self._update_hint()
        self._ensure_worker().submit_folder(model, job_id, [str(p) for p in paths], top_k=self.top_k.value())
        return job_id

    def _require_model(self) -> str | None:
        model = self.model_source()
        if model is None:
            QMessageBox.information(
                self,
                "Nothing to test with",
                "There is no model to test yet. Train a run first, or choose “Other model file…” in the model list.",
            )
        return model

    def _waiting_text(self, model: str) -> str:
        if model == self._loaded_model and not self._loading:
            return "Predicting…"
        return "Waiting for the model to load (the first prediction takes a few seconds)…"

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- cards and folders ------------------------------------------------------------------------

    def remove_card(self, item_id: int) -> None:
        card = self.cards.pop(item_id, None)
        self._card_model.pop(item_id, None)
        self._gradcam_requested.discard(item_id)
        if card is not None:
            self.cards_layout.removeWidget(card)
            card.deleteLater()
        self._update_hint()

    def clear(self) -> None:
        """Remove every card and table and forget queued work."""
        if self._worker is not None:
            self._worker.cancel_pending()
        for item_id in list(self.cards):
            self.remove_card(item_id)
        while self.folder_tabs.count():
            self._close_folder_tab(0)
        self._update_hint()

    def _close_folder_tab(self, index: int) -> None:
        panel = self.folder_tabs.widget(index)
        self.folder_tabs.removeTab(index)
        if isinstance(panel, FolderResults):
            if not panel.finished and self._worker is not None:
                self._worker.cancel_folder(panel.job_id)
            self.folders.pop(panel.job_id, None)
            panel.deleteLater()
        if not self.folder_tabs.count():
            self.folder_tabs.hide()
        self._update_hint()

    def _cancel_folder(self, job_id: int) -> None:
        if self._worker is not None:
            self._worker.cancel_folder(job_id)

    def _update_hint(self) -> None:
        empty = not self.cards
        self.hint.setVisible(empty)
        self.cards_area.setVisible(not empty)

    def _on_gradcam_all(self, on: bool) -> None:
        for card in self.cards.values():
            card.set_gradcam_checked(on)

    def _on_card_gradcam(self, item_id: int, on: bool) -> None:
        card = self.cards.get(item_id)
        if not on or card is None or card.has_gradcam() or item_id in self._gradcam_requested:
            return
        self._gradcam_requested.add(item_id)
        self._ensure_worker().submit_gradcam(self._card_model[item_id], item_id, card.source)

    # --- worker ----------------------------------------------------------------------------------

    def _ensure_worker(self) -> PredictWorker:
        if self._worker is None or self._handle is None or not self._handle.is_running():
            worker = PredictWorker()
            worker.model_loading.connect(self._on_model_loading)
            worker.model_ready.connect(self._on_model_ready)
            worker.model_failed.connect(self._on_model_failed)
            worker.image_done.connect(self._on_image_done)
            worker.gradcam_done.connect(self._on_gradcam_done)
            worker.gradcam_failed.connect(self._on_gradcam_failed)
            worker.folder_progress.connect(self._on_folder_progress)
            worker.folder_done.connect(self._on_folder_done)
            worker.failed.connect(self._on_worker_failed)
            self._worker = worker
            self._loaded_model = None  # a new worker has nothing loaded yet
            self._preload_requested = None
            self._handle = start_worker(worker, name="predict")
        return self._worker

    def is_busy(self) -> bool:
        return self._handle is not None and self._handle.is_running()

    def shutdown(self, msecs: int = 30000) -> None:
        """Stop the prediction worker and wait for its thread (window close, app quit, tests)."""
        handle, self._handle, self._worker = self._handle, None, None
        self._preload_requested = None
        self._loaded_model = None
        self._loading = False
        if handle is not None:
            handle.cancel()
            # ``done -> thread.quit`` is queued to this (blocked) thread: ask the thread to quit
            # directly, so its event loop ends as soon as the worker's loop returns.
            try:
                handle.thread.quit()
            except RuntimeError:  # already deleted: it has finished
                pass
            handle.wait(msecs)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def _on_model_loading(self, source: str) -> None:
        self._loading = True
        self._loaded_model = None
        self._set_status(
            f"Loading the model {self._display_name(source)}… the first prediction waits for it."
        )
        for item_id, card in self.cards.items():
            if self._card_model.get(item_id) == source:
                card.set_waiting("Waiting for the model to load…")

    def _on_model_ready(self, info) -> None:
        self._loading = False
        self._loaded_model = info.source
        labels = list(info.labels)
        shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
        size = info.input_size
        size_text = (
            f", input {size[0]}×{size[1]} px"
            if isinstance(size, tuple | list) and len(size) == 2
            else (f", input {size}×{size} px" if isinstance(size, int) else "")
        )
        self._ready_text = (
            f"Model ready: {self._display_name(info.source)}: {len(labels)} classes ({shown}){size_text}."
        )
        self._set_status(self._ready_text)
        for item_id, card in self.cards.items():
            if self._card_model.get(item_id) == info.source:
                card.set_waiting("Predicting…")

    def _on_model_failed(self, source: str, message: str) -> None:
        self._loading = False
        self._preload_requested = None  # choosing it again retries
        self._loaded_model = None
        self._set_status(f"Cannot load the model {Path(source).name}: {message}", error=True)
        for item_id, card in self.cards.items():
            if card.prediction is None and self._card_model.get(item_id) == source:
                card.set_error("The model could not be loaded.")
        for panel in self.folders.values():
            if not panel.finished:
                panel.set_waiting("The model could not be loaded.")

    def _on_image_done(self, outcome) -> None:
        card = self.cards.get(outcome.item_id)
        if card is None:
            return
        card.set_prediction(outcome.prediction, outcome.thumbnail)
        if self.gradcam_all.isChecked() and not outcome.prediction.error:
            card.set_gradcam_checked(True)

    def _on_gradcam_done(self, outcome) -> None:
        card = self.cards.get(outcome.item_id)
        if card is not None:
            card.set_gradcam(outcome.overlay, outcome.label)

    def _on_gradcam_failed(self, item_id: int, message: str) -> None:
        self._gradcam_requested.discard(item_id)
        card = self.cards.get(item_id)
        if card is not None:
            card.gradcam_failed(message)

    def _on_folder_progress(self, job_id: int, done: int, total: int) -> None:
        panel = self.folders.get(job_id)
        if panel is not None:
            panel.set_progress(done, total)

    def _on_folder_done(self, outcome) -> None:
        panel = self.folders.get(outcome.job_id)
        if panel is not None:
            panel.set_results(outcome.predictions, cancelled=outcome.cancelled)

    def _on_worker_failed(self, message: str) -> None:
        self._set_status(f"Prediction stopped: {message}", error=True)

    # --- queries for tests and the main window ----------------------------------------------------

    def card_list(self) -> list[PredictionCard]:
        return list(self.cards.values())

    def folder_list(self) -> list[FolderResults]:
        return list(self.folders.values())
