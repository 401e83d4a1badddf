"""Images per class as horizontal bars, stacked by split when the folder is pre-split, in palette colours."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}


class ClassBarChart(QWidget):
    """Horizontal bars of images per class (stacked by split when the folder is pre-split), palette colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, list[int]]] = []  # (class, counts per series)
        self.series: list[str] = []
        self.setMinimumHeight(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_data(self, rows: list[tuple[str, list[int]]], series: list[str]) -> None:
        self.rows = rows
        self.series = series
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        legend = 20 if len(self.series) > 1 else 0
        return QSize(300, min(280, max(60, 8 + legend + 22 * len(self.rows))))

    def _colours(self) -> list[QColor]:
        base = self.palette().color(QPalette.ColorRole.Highlight)
        colours = [base]
        for factor in (160, 220):
            c = QColor(base)
            c.setAlpha(255 * 100 // factor)
            colours.append(c)
        return colours

    def paintEvent(self, event) -> None:
        if not self.rows:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = self.fontMetrics()
        text = self.palette().color(QPalette.ColorRole.WindowText)
        colours = self._colours()
        label_w = min(max(fm.horizontalAdvance(name) for name, _ in self.rows) + 10, self.width() // 3)
        number_w = fm.horizontalAdvance("000000") + 6
        top = 4
        if len(self.series) > 1:
            x = label_w
            for i, name in enumerate(self.series):
                p.fillRect(QRectF(x, top + 3, 10, 10), colours[i % len(colours)])
                p.setPen(text)
                label = SPLIT_LABELS.get(name, name)
                p.drawText(int(x + 14), int(top + 12), label)
                x += 24 + fm.horizontalAdvance(label)
            top += 20
        biggest = max(1, max(sum(c) for _, c in self.rows))
        span = max(10, self.width() - label_w - number_w - 4)
        row_h = max(6.0, min(22.0, (self.height() - top - 2) / len(self.rows)))
        for r, (name, counts) in enumerate(self.rows):
            y = top + r * row_h
            p.setPen(text)
            elided = fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w - 8)
            if row_h >= fm.height() - 2:
                p.drawText(QRectF(0, y, label_w - 8, row_h),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, elided)
            x = float(label_w)
            for i, n in enumerate(counts):
                w = span * n / biggest
                pad = min(4.0, row_h / 5)
                p.fillRect(QRectF(x, y + pad, w, row_h - 2 * pad), colours[i % len(colours)])
                x += w
            if row_h >= fm.height() - 2:
                p.setPen(text)
                p.drawText(QRectF(x + 4, y, number_w, row_h),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, str(sum(counts)))
        p.end()
