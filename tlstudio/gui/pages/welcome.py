"""The empty first screen: what to do, in one sentence, with the buttons to do it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui import settings
from tlstudio.gui.widgets.common import app_icon, heading, hint, icon


def sample_dataset_path() -> Path | None:
    """The small sample dataset shipped with the app, or None when this build has none."""
    import tlstudio.resources

    root = Path(tlstudio.resources.__file__).resolve().parent / "sample-signs"
    if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
        return root
    return None


LAYOUT_EXAMPLE = "my-photos/\n    cats/     cat1.jpg  cat2.jpg  ...\n    dogs/     dog1.jpg  dog2.jpg  ...\n    birds/    ..."


class WelcomeWidget(QWidget):
    """Shown until a dataset folder is open. Emits what the user asked for; the main window does it."""

    open_folder_requested = Signal()
    open_project_requested = Signal()
    folder_requested = Signal(str)  # a recent or sample folder
    project_requested = Signal(str)  # a recent project file

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.setSpacing(12)

        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(72, 72))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(logo)

        title = heading("Open a folder of images: one subfolder per class")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        column.addWidget(title)

        explain = hint(
            "Each subfolder's name is a class the model will learn to recognise. A few dozen pictures per class "
            "are enough to start. You can also drag a folder onto this window."
        )
        explain.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(explain)

        example = QLabel(LAYOUT_EXAMPLE)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        example.setFont(mono)
        example.setFrameShape(QFrame.Shape.StyledPanel)
        example.setContentsMargins(12, 8, 12, 8)
        example.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(example)
        row.addStretch(1)
        column.addLayout(row)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.open_button = QPushButton(icon("folder"), "Open folder...")
        self.open_button.setDefault(True)
        self.open_button.setMinimumHeight(34)
        self.open_button.clicked.connect(self.open_folder_requested)
        buttons.addWidget(self.open_button)
        self.sample_button = QPushButton("Try a sample")
        self.sample_button.setMinimumHeight(34)
        self.sample_button.setToolTip("Open a small set of photos of hand signs (one, two, three) to see how it works")
        self.sample_button.clicked.connect(self._open_sample)
        self.sample_path = sample_dataset_path()
        self.sample_button.setVisible(self.sample_path is not None)
        buttons.addWidget(self.sample_button)
        self.project_button = QPushButton("Open project...")
        self.project_button.setMinimumHeight(34)
        self.project_button.clicked.connect(self.open_project_requested)
        buttons.addWidget(self.project_button)
        buttons.addStretch(1)
        column.addLayout(buttons)

        self.recent_label = hint("Recent")
        self.recent = QListWidget()
        self.recent.setMaximumHeight(150)
        self.recent.setMaximumWidth(560)
        self.recent.itemClicked.connect(self._open_recent)
        recent_row = QHBoxLayout()
        recent_row.addStretch(1)
        recent_col = QVBoxLayout()
        recent_col.addWidget(self.recent_label)
        recent_col.addWidget(self.recent)
        recent_row.addLayout(recent_col, 3)
        recent_row.addStretch(1)
        column.addLayout(recent_row)

        wrapper = QHBoxLayout()
        wrapper.addStretch(1)
        wrapper.addLayout(column, 6)
        wrapper.addStretch(1)
        outer.addLayout(wrapper)
        outer.addStretch(2)
        self.refresh_recent()

    def refresh_recent(self) -> None:
        self.recent.clear()
        entries = [("project", p) for p in settings.get("recent/projects")[:4]]
        entries += [("folder", p) for p in settings.get("recent/folders")[:4]]
        for kind, path in entries:
            item = QListWidgetItem(icon("folder") if kind == "folder" else icon("image"), path)
            item.setData(Qt.ItemDataRole.UserRole, (kind, path))
            item.setToolTip(f"Open the {kind} {path}")
            self.recent.addItem(item)
        self.recent.setVisible(bool(entries))
        self.recent_label.setVisible(bool(entries))

    def _open_recent(self, item: QListWidgetItem) -> None:
        kind, path = item.data(Qt.ItemDataRole.UserRole)
        if kind == "folder":
            self.folder_requested.emit(path)
        else:
            self.project_requested.emit(path)

    def _open_sample(self) -> None:
        if self.sample_path is not None:
            self.folder_requested.emit(str(self.sample_path))
