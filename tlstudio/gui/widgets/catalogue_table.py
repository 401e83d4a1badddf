"""The catalogue of base models as a table: name, size, input, speed and accuracy, in words."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from tlstudio.core.models import catalogue as base_models

HEADERS = (("Model", "A Keras application, pre-trained on ImageNet"),
           ("Size", "How many numbers the model learns (parameters): bigger is slower and needs more memory"),
           ("Image size", "The square size images are resized to by default"),
           ("Speed", "Relative speed on a laptop CPU"),
           ("Accuracy", "How often it named the right one of 1,000 ImageNet classes (top-1, as documented by Keras)"))


def params_text(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"


class CatalogueTable(QTableWidget):
    """One row per base model of :data:`tlstudio.core.models.catalogue.CATALOGUE`; one row can be selected."""

    def __init__(self, parent=None) -> None:
        super().__init__(len(base_models.CATALOGUE), len(HEADERS), parent)
        self.setHorizontalHeaderLabels([h for h, _ in HEADERS])
        for col, (_h, tip) in enumerate(HEADERS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        for row, spec in enumerate(base_models.CATALOGUE.values()):
            top1 = "" if spec.top1 is None else f"{spec.top1:.1f} %"
            tip = spec.description
            if spec.top1 is not None and spec.top1_alpha is not None:
                tip += f" (accuracy documented for width {spec.top1_alpha:g})"
            cells = [spec.name, params_text(spec.params), f"{spec.default_size} px", spec.speed, top1]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                item.setData(Qt.ItemDataRole.UserRole, spec.name)
                if col in (1, 2, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)
        header = self.horizontalHeader()
        for col in range(len(HEADERS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def select_base(self, name: str) -> None:
        for row in range(self.rowCount()):
            if self.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.selectRow(row)

    def chosen_base(self) -> str | None:
        items = self.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None
