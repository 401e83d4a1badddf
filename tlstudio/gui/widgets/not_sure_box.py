"""The Test page's "Not sure below N %" control: the run's threshold by default, adjustable."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget


class NotSureBox(QWidget):
    """A percentage under which an answer reads "Not sure"; ``changed`` carries it as 0-1 (0: never)."""

    changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Not sure below"))
        self.spin = QSpinBox()
        self.spin.setRange(0, 99)
        self.spin.setSuffix(" %")
        self.spin.setSpecialValueText("off")
        self.spin.valueChanged.connect(lambda value: self.changed.emit(value / 100.0))
        layout.addWidget(self.spin)
        self.run_threshold: float | None = None
        self._explain()

    def value(self) -> float:
        """The threshold, 0-1 (0: every answer names a class)."""
        return self.spin.value() / 100.0

    def set_run_threshold(self, threshold: float | None) -> None:
        """Start from the loaded run's own threshold (chosen on its validation images); None turns it off."""
        self.run_threshold = threshold
        self.spin.setValue(round((threshold or 0.0) * 100))
        self._explain()

    def _explain(self) -> None:
        run = (f"This model's run chose {self.run_threshold:.0%} on its validation images."
               if self.run_threshold else "This model came without a threshold.")
        self.setToolTip('When the best class gets less than this, the card says "Not sure" and shows '
                        f"its best guess. {run}")
