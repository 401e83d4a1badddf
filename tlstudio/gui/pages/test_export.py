"""The Test page: drop images or folders, paste an image, or open files, and see what the model says.

Each image becomes a :class:`~tlstudio.gui.widgets.prediction_card.PredictionCard`; a folder becomes a sortable
table (file, top-1, probability, note) that can be saved as CSV. One long-lived
:class:`~tlstudio.workers.predict_worker.PredictWorker` keeps the model loaded between requests, so only
the first prediction waits for the model.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui import file_dialogs
from tlstudio.gui.widgets.drops import accept_copy, local_paths
from tlstudio.gui.widgets.fields import labelled, spin_box
from tlstudio.gui.widgets.folder_results import FolderResults, FolderTabs
from tlstudio.gui.widgets.model_source import ModelSourceBox, describe_loaded_model, display_name
from tlstudio.gui.widgets.not_sure_box import NotSureBox
from tlstudio.gui.widgets.prediction_card import FlowLayout, PredictionCard, qimage_to_array
from tlstudio.workers.base import registry, start_worker
from tlstudio.workers.predict_worker import PredictWorker

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MODEL_SUFFIXES = {".keras", ".h5", ".hdf5"}


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
        self._card_model: dict[int, str] = {}
        self._gradcam_requested: set[int] = set()

        layout = QVBoxLayout(self)

        # Two rows, so nothing overlaps at the default window width: which model, then what to test.
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        self.model_combo = ModelSourceBox(state)
        self.model_combo.source_changed.connect(self._model_choice_changed)
        top.addWidget(self.model_combo, 1)
        self.export_button = QPushButton("Export…", toolTip="Export the chosen model: .keras, SavedModel, TFLite, ONNX")
        self.export_button.clicked.connect(self.open_export_dialog)
        top.addWidget(self.export_button)
        layout.addLayout(top)

        # A row that wraps: at 1024 px the view options go under the buttons instead of being cut off.
        actions_row = QWidget()
        actions = FlowLayout(actions_row, spacing=6)
        actions.setContentsMargins(0, 0, 0, 0)
        for text, slot, tip in (("Open images…", self.open_files_dialog, "Test image files"),
                                ("Open folder…", self.open_folder_dialog, "Test every image of a folder, as a table"),
                                ("Paste", self.paste, "Test an image from the clipboard (Ctrl+V)"),
                                ("Clear", self.clear, "Remove every card and table")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            actions.addWidget(button)
        self.top_k = spin_box(1, 10)
        self.top_k.setValue(3)
        actions.addWidget(labelled("Show the top", self.top_k))
        self.gradcam_all = QCheckBox("Show what the model looked at",
                                     toolTip="Grad-CAM: overlay on every card the regions that drove the top prediction")
        self.gradcam_all.toggled.connect(self._on_gradcam_all)
        actions.addWidget(self.gradcam_all)
        self.not_sure = NotSureBox()
        self.not_sure.changed.connect(lambda value: [card.set_threshold(value) for card in self.cards.values()])
        actions.addWidget(self.not_sure)
        layout.addWidget(actions_row)

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
        self.folder_tabs = FolderTabs()
        self.folder_tabs.cancel_requested.connect(self._cancel_folder)
        self.folder_tabs.closed.connect(self._update_hint)
        self.not_sure.changed.connect(self.folder_tabs.set_threshold)  # tables relabelled, not predicted again
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
        state.opened_model_changed.connect(self._on_opened_model_changed)
        app = QGuiApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.refresh_models()
        opened = state.opened_model
        if opened:  # a model the user opened explicitly (File > Open model) wins over the latest run
            self.set_model_source(opened)

    # --- model choice ------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Refill the model list (the project's runs, the opened model, other files), keeping the choice."""
        self.model_combo.refresh()
        self.state.set_tested_model(self.model_source())
        self._update_model_status()

    def model_source(self) -> str | None:
        """The run folder or model file that new predictions use."""
        return self.model_combo.source()

    def set_model_source(self, source: str | Path) -> None:
        self.model_combo.set_source(source, notify=False)
        self._model_choice_changed()

    def _on_current_run_changed(self, run_dir: str) -> None:
        if run_dir:
            self.model_combo.refresh(preferred=run_dir)
            if self.model_combo.findData(str(run_dir)) >= 0:
                self.model_combo.set_source(run_dir, notify=False)
        self._model_choice_changed()

    def _on_opened_model_changed(self, path: str) -> None:
        self.refresh_models()
        if path:
            self.set_model_source(path)

    def _update_model_status(self) -> None:
        source = self.model_source()
        if source is None:
            self._set_status("No model to test yet: train a run, or choose Other model file….")
        elif not self._loading:  # while loading, "Loading…" stays until the worker says it is ready
            self._set_status(self._ready_text if source == self._loaded_model else
                             "The model is loaded on the first prediction (this takes a few seconds).")

    def preload(self) -> None:
        """Start loading the chosen model in the background, so the first prediction does not wait for it."""
        source = self.model_source()
        if source in (None, self._loaded_model, self._preload_requested) or not Path(source).exists():
            return
        worker = self._ensure_worker()
        self._preload_requested = source
        worker.submit_load(source)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.preload()

    def _model_choice_changed(self, *_args) -> None:
        self.state.set_tested_model(self.model_source())
        self._update_model_status()
        self._repredict_stale_cards()
        if self.isVisible():
            self.preload()

    def _display_name(self, source: str) -> str:
        return display_name(self.state, source)

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

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            accept_copy(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        accept_copy(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        accept_copy(event)
        self._take(event.mimeData(), "Dropped image")

    def paste(self) -> None:
        """Test the clipboard: image data, or files copied in a file manager."""
        if not self._take(QGuiApplication.clipboard().mimeData(), "Pasted image"):
            self.state.message("The clipboard holds no image.")

    def _take(self, mime, title: str) -> bool:
        """Test what ``mime`` holds (files, folders or image data); False when it holds none of them."""
        paths = local_paths(mime)
        if paths:
            self.add_paths(paths)
            return True
        image = mime.imageData() if mime is not None and mime.hasImage() else None
        if image is None or image.isNull():
            return False
        self.add_array(qimage_to_array(image), title)
        return True

    def open_files_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        files = file_dialogs.open_files(self, "Open images to test", f"Images ({patterns});;All files (*)")
        if files:
            self.add_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = file_dialogs.open_folder(self, "Open a folder of images to test")
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
                self.state.set_opened_model(path)
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
            card.set_model(self._display_name(model))
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
        from tlstudio.core.deploy.batch import collect_files  # lazily: the page opens before numpy loads
        paths = collect_files([folder])  # files that are not images get their reason later
        if not paths:
            self.state.message(f"{folder} holds no files.")
            QMessageBox.information(self, "Test a folder", f"{folder} holds no files to test.")
            return None
        job_id = self._new_id()
        was_hidden = self.folder_tabs.isHidden()
        self.folder_tabs.add(job_id, folder, paths, self._waiting_text(model))
        if was_hidden:
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

    def _repredict_stale_cards(self) -> None:
        """Ask cards answered by another model again, under new ids (a late old answer is then dropped)."""
        model = self.model_source()
        stale = [i for i, m in self._card_model.items() if m != model]
        if model is None or not stale:
            return
        requests = []
        for old_id in stale:
            card = self.cards.pop(old_id)
            del self._card_model[old_id]
            self._gradcam_requested.discard(old_id)
            card.item_id = self._new_id()
            self.cards[card.item_id], self._card_model[card.item_id] = card, model
            card.set_model(self._display_name(model))
            card.set_waiting(self._waiting_text(model))
            requests.append((card.item_id, card.source))
        self._ensure_worker().submit_images(model, requests, top_k=self.top_k.value())

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
        self.folder_tabs.close_all()
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
            names = ("model_loading", "model_ready", "model_failed", "image_done", "gradcam_done", "gradcam_failed",
                     "folder_progress", "folder_done")
            self._worker = worker
            self._loaded_model = None  # a new worker has nothing loaded yet
            self._preload_requested = None
            # Through the handle, so that what a shut-down worker still had queued is dropped (detach).
            self._handle = start_worker(worker, name="predict", owner=self, connect={
                "failed": self._on_worker_failed, **{n: getattr(self, f"_on_{n}") for n in names}})
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
            handle.detach()
        registry.shutdown(owner=self, msecs=msecs)

    def _on_model_loading(self, source: str) -> None:
        self._loading = True
        self._loaded_model = None
        self._set_status(f"Loading the model {self._display_name(source)}… the first prediction waits for it.")
        for item_id, card in self.cards.items():
            if self._card_model.get(item_id) == source:
                card.set_waiting("Waiting for the model to load…")

    def _on_model_ready(self, info) -> None:
        self._loading = False
        self._loaded_model = info.source
        self._ready_text = describe_loaded_model(info, self._display_name(info.source))
        self.not_sure.set_run_threshold(info.threshold)
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
        for panel in self.folder_tabs.panels.values():
            if not panel.finished:
                panel.set_waiting("The model could not be loaded.")

    def _on_image_done(self, outcome) -> None:
        card = self.cards.get(outcome.item_id)
        if card is None:
            return
        card.set_threshold(self.not_sure.value())
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
        panel = self.folder_tabs.panels.get(job_id)
        if panel is not None:
            panel.set_progress(done, total)

    def _on_folder_done(self, outcome) -> None:
        panel = self.folder_tabs.panels.get(outcome.job_id)
        if panel is not None:
            panel.set_results(outcome.predictions, cancelled=outcome.cancelled)

    def _on_worker_failed(self, message: str) -> None:
        self._set_status(f"Prediction stopped: {message}", error=True)

    # --- queries for tests and the main window ----------------------------------------------------

    def card_list(self) -> list[PredictionCard]:
        return list(self.cards.values())

    def folder_list(self) -> list[FolderResults]:
        return list(self.folder_tabs.panels.values())
