"""The Train page's row of run buttons: Train, Cancel, Resume, a context line and "Open run folder"."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget


class TrainControls(QWidget):
    """The buttons only; the page connects them and decides when each is enabled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train_button = QPushButton("Train", self)
        self.train_button.setDefault(True)
        font = self.train_button.font()
        font.setBold(True)
        self.train_button.setFont(font)
        self.train_button.setMinimumWidth(110)
        self.train_button.setToolTip("Start training with these settings (Ctrl+Enter)")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop after the current batch; the best weights so far are kept (Esc)")
        self.cancel_button.setEnabled(False)
        self.resume_button = QPushButton("Resume", self, visible=False,
                                         toolTip="Continue the interrupted run from its last saved epoch")
        self.open_folder_button = QPushButton("Open run folder", self)
        self.open_folder_button.setToolTip("Show the folder of the last run (model, labels, history, evaluation)")
        self.open_folder_button.setEnabled(False)
        self.context_label = QLabel(self)
        self.context_label.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.train_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.resume_button)
        layout.addWidget(self.context_label, 1)
        layout.addWidget(self.open_folder_button)
