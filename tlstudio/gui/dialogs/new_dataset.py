"""New dataset: a folder with one sub-folder per class, made from nothing (as Teachable Machine starts).

The result is an ordinary dataset folder, usable by tlstudio or anything else; pictures are then
added from files, by drag-and-drop or from the webcam.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data import curate
from tlstudio.core.errors import TlstudioError
from tlstudio.gui import file_dialogs
from tlstudio.gui.widgets.common import MessageBanner, hint

DEFAULT_CLASSES = ("Class 1", "Class 2")


class NewDatasetDialog(QDialog):
    """Asks where, what name and which classes; ``created`` is the new folder after ``accept``."""

    def __init__(self, parent: QWidget | None = None, *, location: str | Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New dataset")
        self.created: Path | None = None
        self.location_edit = QLineEdit(str(location or Path.home()))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.location_edit, 1)
        where.addWidget(browse)
        self.name_edit = QLineEdit("my-dataset")
        self.classes = QListWidget()
        for name in DEFAULT_CLASSES:
            self._add_row(name)
        add = QPushButton("Add class")
        add.clicked.connect(lambda: self._add_row(f"Class {self.classes.count() + 1}", edit=True))
        remove = QPushButton("Remove class")
        remove.clicked.connect(self._remove_row)
        class_buttons = QHBoxLayout()
        class_buttons.addWidget(add)
        class_buttons.addWidget(remove)
        class_buttons.addStretch(1)
        self.error = MessageBanner("error")
        form = QFormLayout()
        form.addRow("Location", where)
        form.addRow("Name", self.name_edit)
        form.addRow("Classes", self.classes)
        form.addRow("", class_buttons)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint("A folder with one sub-folder per class. Double-click a class to rename it; "
                              "add pictures afterwards from files or the webcam."))
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def _add_row(self, name: str, edit: bool = False) -> None:
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.classes.addItem(item)
        if edit:
            self.classes.setCurrentItem(item)
            self.classes.editItem(item)

    def _remove_row(self) -> None:
        row = self.classes.currentRow()
        if row >= 0:
            self.classes.takeItem(row)

    def _browse(self) -> None:
        folder = file_dialogs.open_folder(self, "Where to create the dataset", self.location_edit.text())
        if folder:
            self.location_edit.setText(folder)

    def class_names(self) -> list[str]:
        return [self.classes.item(i).text().strip() for i in range(self.classes.count())]

    def target(self) -> Path:
        return Path(self.location_edit.text().strip() or ".").expanduser() / self.name_edit.text().strip()

    def accept(self) -> None:
        if not self.name_edit.text().strip():
            self.error.set_messages(["Give the dataset a name."])
            return
        try:
            self.created = curate.new_dataset(self.target(), self.class_names())
        except (OSError, TlstudioError) as exc:
            self.error.set_messages([str(exc)])
            return
        super().accept()
