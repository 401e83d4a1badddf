"""The Train page's run buttons (Train, Cancel, Resume, "Open run folder") and, under them, a context line."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.gui.widgets.prediction_card import FlowLayout


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
        # The buttons wrap to a second row when the panel is narrow (Resume shown at 1024 px).
        row = QWidget(self)
        buttons = FlowLayout(row, spacing=6)
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.train_button, self.cancel_button, self.resume_button, self.open_folder_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(row)
        layout.addWidget(self.context_label)
