"""The Train page's run buttons (Train, Cancel, Resume, "Open run folder") and, under them, a context line."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


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
        # The context line goes under the buttons: beside them it was squeezed into a tall narrow column,
        # and the row's width pushed the right panel over the settings at 1024 px.
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_folder_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.context_label)
