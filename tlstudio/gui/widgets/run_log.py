"""The Train page's log: time-stamped lines, warnings and errors marked, bounded in length."""

from __future__ import annotations

import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget


class RunLog(QPlainTextEdit):
    """Read-only; :meth:`log` appends one line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.setFont(QFont("monospace", 9))
        self.setPlaceholderText("Events of the run (phases, epochs, skipped files, warnings) appear here.")

    def log(self, text: str, level: str = "info") -> None:
        prefix = {"warning": "⚠ ", "error": "✖ "}.get(level, "")
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {prefix}{text}")
