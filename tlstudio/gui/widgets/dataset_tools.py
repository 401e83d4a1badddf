"""The Data page's editing bar: new dataset, classes, add pictures (files, drop, paste, webcam), find problems.

One widget so the page only places it: every action goes through the app's
:class:`~tlstudio.gui.curation.DatasetEditor` (undoable, announced with ``changed``), and the page
rescans when the dataset changes. :meth:`DatasetTools.add_from_mime` is the one place dropped or
pasted pictures come in: file URLs are copied into the class, raw image data (a screenshot, a
picture copied from a browser) is saved as JPEG through the same path as webcam frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data import webcam
from tlstudio.core.data.scan import IMAGE_EXTENSIONS
from tlstudio.core.errors import TlstudioError
from tlstudio.gui import file_dialogs
from tlstudio.gui.curation import DatasetEditor, ask_new_class
from tlstudio.gui.widgets.common import button, hint

ClassGetter = Callable[[], str | None]


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """An RGB uint8 array of a QImage (any format)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return data[:, : 3 * w].reshape(h, w, 3).copy()


class DatasetTools(QWidget):
    """Buttons for editing the dataset; ``current_class()`` says which class the page has selected."""

    dataset_created = Signal(str)  # the folder of a new dataset, for the page to open
    audit_requested = Signal()

    def __init__(self, editor: DatasetEditor, current_class: ClassGetter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.current_class = current_class
        self.new_button = button("New dataset...", self.new_dataset)
        self.classes_button = button("Classes", self._classes_menu)
        self.add_button = button("Add pictures...", self.add_files,
                                 "Copy picture files into the selected class (or drop them, or paste)")
        self.webcam_button = button("Webcam...", self.open_webcam,
                                    webcam.camera_support() or "Take pictures with a webcam into a class")
        self.audit_button = button(
            "Find problems...",
            self.audit_requested,
            "Suspected label errors, near-duplicates across splits, and a map of the dataset",
        )
        # The last change stays in view here: the status bar is soon taken by the rescan it causes.
        self.note_label = hint("")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for b in (self.new_button, self.classes_button, self.add_button, self.webcam_button, self.audit_button):
            row.addWidget(b)
        row.addWidget(self.note_label, 1)
        editor.undo_changed.connect(lambda _t: self._update())
        editor.noted.connect(self.note_label.setText)
        self._update()

    def _update(self) -> None:
        has = self.editor.root is not None
        for b in (self.classes_button, self.add_button, self.webcam_button, self.audit_button):
            b.setEnabled(has)

    def set_root(self, root: str | Path | None) -> None:
        self.editor.set_root(root)
        self._update()

    # --- actions ----------------------------------------------------------------------------------------
    def new_dataset(self) -> Path | None:
        from tlstudio.gui.dialogs.new_dataset import NewDatasetDialog

        start = self.editor.root.parent if self.editor.root is not None else None
        dialog = NewDatasetDialog(self, location=start)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.created is not None:
            self.dataset_created.emit(str(dialog.created))
            return dialog.created
        return None

    def _target_class(self) -> str | None:
        name = self.current_class()
        if name:
            return name
        classes = self.editor.classes()
        if not classes:
            return ask_new_class(self)
        name, ok = QInputDialog.getItem(self, "Add pictures", "Into class:", classes, 0, True)
        return name.strip() if ok and name.strip() else None

    def add_files(self, files: list[str] | None = None, class_name: str | None = None) -> dict | None:
        if files is None:
            patterns = " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
            files = file_dialogs.open_files(self, "Add pictures", f"Images ({patterns})")
        if not files:
            return None
        class_name = class_name or self._target_class()
        if not class_name:
            return None
        return self.editor.add_images(files, class_name)

    def add_from_mime(self, mime: QMimeData, class_name: str | None = None) -> int:
        """Add dropped or pasted pictures (files or image data) to a class; returns how many."""
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        files = [f for f in files if Path(f).suffix.lower() in IMAGE_EXTENSIONS and Path(f).is_file()]
        if files:
            op = self.add_files(files, class_name)
            return len(op.get("copies", [])) if op else 0
        if mime.hasImage():
            image = QImage(mime.imageData())
            if image.isNull():
                return 0
            class_name = class_name or self._target_class()
            if not class_name or self.editor.root is None:
                return 0
            try:
                capture = webcam.Capture(self.editor.root, class_name, prefix="pasted")
                capture.add(qimage_to_rgb(image))
            except (OSError, TlstudioError) as exc:
                self.editor.failed.emit(str(exc))
                return 0
            return 1 if self.editor.commit_capture(capture) else 0
        return 0

    def open_webcam(self) -> None:
        from tlstudio.gui.widgets.webcam import WebcamPanel

        dialog = QDialog(self)
        dialog.setWindowTitle("Webcam")
        panel = WebcamPanel(self.editor, dialog)
        current = self.current_class()
        if current:
            panel.class_combo.setCurrentText(current)
        if webcam.camera_support() is None:
            panel.find_cameras()
        layout = QVBoxLayout(dialog)
        layout.addWidget(panel)
        dialog.finished.connect(lambda _r: panel.shutdown())
        dialog.open()

    # --- classes ----------------------------------------------------------------------------------------
    def _classes_menu(self) -> None:
        menu = QMenu(self)
        menu.addAction("Add class...", self.add_class)
        current = self.current_class()
        rename = menu.addAction(f"Rename {current}..." if current else "Rename class...", self.rename_class)
        remove = menu.addAction(f"Remove {current}" if current else "Remove class", self.remove_class)
        rename.setEnabled(bool(current))
        remove.setEnabled(bool(current))
        menu.exec(self.classes_button.mapToGlobal(self.classes_button.rect().bottomLeft()))

    def add_class(self) -> None:
        name = ask_new_class(self)
        if name:
            self.editor.add_class(name)

    def rename_class(self) -> None:
        old = self.current_class()
        if not old:
            return
        new, ok = QInputDialog.getText(self, "Rename class", f"New name for {old}:", text=old)
        if ok and new.strip() and new.strip() != old:
            self.editor.rename_class(old, new.strip())

    def remove_class(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        name = self.current_class()
        if not name:
            return
        answer = QMessageBox.question(
            self, "Remove class",
            f"Remove the class {name}? Its pictures are moved to the excluded folder beside the dataset "
            "(nothing is deleted; Edit > Undo brings them back).",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.editor.remove_class(name)
