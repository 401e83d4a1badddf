"""The confusion matrix as a clickable heat map: rows are true classes, columns predicted ones.

A QTableView over a small model; a delegate paints each cell's heat colour (the share of that
row, so rare classes read as clearly as common ones) with the count on top. Clicking a cell emits
``cell_clicked(true_index, pred_index)``.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

ROW_SHARE_ROLE = Qt.ItemDataRole.UserRole + 1


def heat_colour(share: float, diagonal: bool) -> QColor:
    """White to deep blue on the diagonal (right answers), white to red off it (mistakes)."""
    share = min(1.0, max(0.0, share))
    if diagonal:
        target = (33, 102, 172)
    else:
        target = (203, 24, 29)
    r = round(255 + (target[0] - 255) * share)
    g = round(255 + (target[1] - 255) * share)
    b = round(255 + (target[2] - 255) * share)
    return QColor(r, g, b)


class ConfusionModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrix: list[list[int]] = []

    def set_matrix(self, classes: list[str], matrix: list[list[int]]) -> None:
        self.beginResetModel()
        self.classes = list(classes)
        self.matrix = [[int(v) for v in row] for row in matrix]
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.matrix)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or not self.matrix else len(self.matrix[0])

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        count = self.matrix[r][c]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(count)
        if role == ROW_SHARE_ROLE:
            total = sum(self.matrix[r])
            return count / total if total else 0.0
        if role == Qt.ItemDataRole.ToolTipRole:
            total = sum(self.matrix[r])
            share = f" ({100 * count / total:.0f}% of the {total} '{self.classes[r]}' images)" if total else ""
            return f"true: {self.classes[r]}\npredicted: {self.classes[c]}\n{count} image(s){share}\nClick to see them."
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole) and 0 <= section < len(self.classes):
            return self.classes[section]
        return None


class HeatDelegate(QStyledItemDelegate):
    """Paints the heat colour and the count; the count turns white on dark cells."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        share = float(index.data(ROW_SHARE_ROLE) or 0.0)
        colour = heat_colour(share, index.row() == index.column())
        painter.save()
        painter.fillRect(option.rect, colour)
        if option.state & QStyle.StateFlag.State_Selected:
            pen = painter.pen()
            pen.setColor(QColor(0, 0, 0))
            pen.setWidth(3)
            painter.setPen(pen)
            painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
        light = colour.lightness() < 140
        painter.setPen(QColor(255, 255, 255) if light else QColor(20, 20, 20))
        font = QFont(option.font)
        font.setBold(index.row() == index.column())
        painter.setFont(font)
        painter.drawText(QRect(option.rect), int(Qt.AlignmentFlag.AlignCenter), str(index.data()))
        painter.restore()


class ConfusionView(QWidget):
    """Heat-map table of a confusion matrix with axis captions; emits ``cell_clicked(true, pred)``."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ConfusionModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setItemDelegate(HeatDelegate(self.table))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(36)
        self.table.verticalHeader().setMinimumSectionSize(26)
        self.table.setShowGrid(True)
        self.table.clicked.connect(self._on_clicked)
        caption = QLabel("Rows: true class  ·  Columns: predicted class  ·  Click a cell to see its images", self)
        caption.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(caption)
        layout.addWidget(self.table, 1)

    def set_matrix(self, classes: list[str], matrix: list[list[int]]) -> None:
        self.model.set_matrix(classes, matrix)

    def cell_rect(self, true_index: int, pred_index: int) -> QRect:
        """Where a cell is drawn, in the table's viewport coordinates (for tests and tours)."""
        return self.table.visualRect(self.model.index(true_index, pred_index))

    def select_cell(self, true_index: int, pred_index: int) -> None:
        index = self.model.index(true_index, pred_index)
        self.table.setCurrentIndex(index)
        self._on_clicked(index)

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.cell_clicked.emit(index.row(), index.column())
