"""The predictions for one folder of images on the Test page: a sortable table, progress, Cancel and Save CSV.

The table and the CSV follow the page's "Not sure below" threshold: changing it relabels the rows from the
probabilities already predicted, without asking the model again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.atomic import write_text
from tlstudio.gui import file_dialogs

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
NOT_SURE = "not sure"  # core.deploy.predict.NOT_SURE, spelled here so the page opens before numpy loads


def relabelled(prediction, threshold: float):
    """``prediction`` answered under ``threshold``: "not sure" below it, else its best class (0: never not sure)."""
    if prediction.error or not prediction.top:
        return prediction
    label = NOT_SURE if threshold and prediction.probability < threshold else prediction.top[0][0]
    return prediction if label == prediction.label else replace(prediction, label=label)


class FolderResults(QWidget):
    """The predictions for one dropped folder: a sortable table, progress, Cancel and Save CSV."""

    cancel_requested = Signal(int)

    COLUMNS = ("File", "Top-1", "Probability", "Note")

    def __init__(self, job_id: int, folder: Path, paths: list[Path], parent=None, threshold: float = 0.0) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.folder = Path(folder)
        self.paths = list(paths)
        self.predictions: list = []  # as shown: relabelled under ``threshold``
        self.threshold = float(threshold or 0.0)
        self.finished = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.status_label = QLabel(f"{len(paths)} files in {self.folder}")
        bar.addWidget(self.status_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, len(paths)))
        self.progress.setMaximumWidth(220)
        bar.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel)
        bar.addWidget(self.cancel_button)
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_csv_dialog)
        bar.addWidget(self.save_button)
        layout.addLayout(bar)

        self.model = QStandardItemModel(0, len(self.COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(1, 140)
        self.table.setColumnWidth(2, 90)
        self.table.doubleClicked.connect(self._open_file)
        layout.addWidget(self.table)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status_label.setText(f"Predicting {done} / {total} files in {self.folder.name}…")

    def set_waiting(self, text: str) -> None:
        if not self.finished:
            self.status_label.setText(text)

    def set_threshold(self, threshold: float) -> None:
        """Answer "not sure" below ``threshold`` (0-1, 0: never): rows and CSV relabelled, nothing predicted again."""
        self.threshold = float(threshold or 0.0)
        self.predictions = [relabelled(p, self.threshold) for p in self.predictions]
        for r, (path, prediction) in enumerate(zip(self.paths, self.predictions, strict=False)):
            for c, item in enumerate(self._row(path, prediction)[1:], start=1):
                self.model.setItem(r, c, item)

    def set_results(self, predictions, cancelled: bool = False) -> None:
        self.finished = True
        self.predictions = [relabelled(p, self.threshold) for p in predictions]
        self.model.setRowCount(0)
        for path, prediction in zip(self.paths, self.predictions, strict=False):
            self.model.appendRow(self._row(path, prediction))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        failed = sum(1 for p in self.predictions if p.error)
        text = f"{len(self.predictions)} files predicted"
        if failed:
            text += f", {failed} could not be read"
        if cancelled:
            text = f"Cancelled after {len(self.predictions)} of {len(self.paths)} files"
        self.status_label.setText(text)
        self.progress.setValue(self.progress.maximum() if not cancelled else len(self.predictions))
        self.cancel_button.setEnabled(False)
        self.save_button.setEnabled(bool(self.predictions))

    def _row(self, path: Path, prediction) -> list[QStandardItem]:
        rel = _relative(path, self.folder)
        file_item = QStandardItem(rel)
        file_item.setData(rel.lower(), SORT_ROLE)
        file_item.setData(str(path), PATH_ROLE)
        file_item.setToolTip(str(path))
        if prediction.error:
            top = QStandardItem("—")
            top.setData("", SORT_ROLE)
            prob = QStandardItem("")
            prob.setData(-1.0, SORT_ROLE)
            note = QStandardItem(prediction.error)
            note.setData(prediction.error, SORT_ROLE)
            note.setForeground(QBrush(QColor("#c0392b")))
            note.setToolTip(prediction.error)
        else:
            unsure = prediction.label == NOT_SURE
            top = QStandardItem(prediction.label)  # "not sure" as in the CSV and `tlstudio predict`
            top.setData(prediction.label.lower(), SORT_ROLE)
            prob = QStandardItem(f"{prediction.probability:.1%}")
            prob.setData(float(prediction.probability), SORT_ROLE)
            prob.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            guesses = prediction.top if unsure else prediction.top[1:]
            others = ("Best guess: " if unsure else "") + ", ".join(f"{name} {p:.0%}" for name, p in guesses)
            note = QStandardItem(others)
            note.setData(others, SORT_ROLE)
            if unsure:
                top.setForeground(QBrush(QColor("#9a6700")))
                top.setToolTip(f"The best class is under the {self.threshold:.0%} threshold")
        return [file_item, top, prob, note]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table as shown (in the current sort order), for tests and copying."""
        out = []
        for r in range(self.proxy.rowCount()):
            out.append(tuple(self.proxy.index(r, c).data() or "" for c in range(len(self.COLUMNS))))
        return out

    def csv_text(self) -> str:
        """The predictions as CSV, in the format of ``tlstudio predict --csv``."""
        from tlstudio.core.deploy.batch import CSV_HEADER, csv_row

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for prediction in self.predictions:
            writer.writerow(csv_row(prediction))
        return buf.getvalue()

    def save_csv(self, path: str | Path) -> None:
        write_text(Path(path), self.csv_text())

    def save_csv_dialog(self) -> None:
        path = file_dialogs.save_file(self, "Save predictions", f"{self.folder.name}-predictions.csv",
                                      file_dialogs.CSV_FILTER, start=self.folder.parent)
        if not path:
            return
        try:
            self.save_csv(path)
        except OSError as exc:
            QMessageBox.warning(self, "Save CSV", f"Cannot write {path}: {exc.strerror or exc}")
            return
        self.status_label.setText(f"Saved {Path(path).name}")

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling…")
        self.cancel_requested.emit(self.job_id)

    def _open_file(self, index) -> None:
        path = self.proxy.index(index.row(), 0).data(PATH_ROLE)
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


class FolderTabs(QTabWidget):
    """One closable tab of :class:`FolderResults` per folder being tested; hidden while there is none.

    Closing an unfinished tab asks its job to stop (``cancel_requested(job_id)``); ``closed`` follows every close.
    """

    cancel_requested = Signal(int)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panels: dict[int, FolderResults] = {}
        self.threshold = 0.0  # the page's "Not sure below", for every table
        self.setTabsClosable(True)
        self.tabCloseRequested.connect(self.close_tab)
        self.hide()

    def add(self, job_id: int, folder: Path, paths: list[Path], waiting_text: str) -> FolderResults:
        panel = FolderResults(job_id, folder, paths, threshold=self.threshold)
        panel.cancel_requested.connect(self.cancel_requested)
        panel.set_waiting(waiting_text)
        self.panels[job_id] = panel
        self.addTab(panel, folder.name or str(folder))
        self.setCurrentWidget(panel)
        self.show()
        return panel

    def set_threshold(self, threshold: float) -> None:
        """Relabel every table under the "Not sure below" ``threshold`` (0-1)."""
        self.threshold = float(threshold or 0.0)
        for panel in self.panels.values():
            panel.set_threshold(self.threshold)

    def close_tab(self, index: int) -> None:
        panel = self.widget(index)
        self.removeTab(index)
        if isinstance(panel, FolderResults):
            if not panel.finished:
                self.cancel_requested.emit(panel.job_id)
            self.panels.pop(panel.job_id, None)
            panel.deleteLater()
        if not self.count():
            self.hide()
        self.closed.emit()

    def close_all(self) -> None:
        while self.count():
            self.close_tab(0)
