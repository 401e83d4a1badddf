"""Find problems in the dataset: suspected label errors, near-duplicates and a map, each fixable in place.

The audit runs on a worker (:class:`~tlstudio.workers.audit_worker.AuditWorker`): features come
from the embedding cache when a run has already seen the pictures, otherwise the base model of
the current training settings computes them once. Every fix goes through the app's
:class:`~tlstudio.gui.curation.DatasetEditor` (undoable with Edit > Undo); when the dataset changes
the results say so, and "Run again" refreshes them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.config import TrainConfig
from tlstudio.gui.curation import DatasetEditor, add_curation_actions
from tlstudio.gui.widgets.common import BusyBanner, MessageBanner, hint
from tlstudio.gui.widgets.gallery import open_file_location
from tlstudio.gui.widgets.map_view import PREVIEW_SIZE, DatasetMap
from tlstudio.gui.widgets.suspects import SuspectsPanel
from tlstudio.workers.audit_worker import AuditOutcome, AuditWorker
from tlstudio.workers.base import WorkerHandle, registry, start_worker

PATH_ROLE = Qt.ItemDataRole.UserRole + 1


class DuplicatesPanel(QWidget):
    """Groups of near-duplicate pictures, leaks (across splits) and contradictions (across classes) first."""

    def __init__(self, editor: DatasetEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Pictures", "Similarity", "Problem"])
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.setColumnWidth(0, 420)
        self.tree.itemDoubleClicked.connect(self._open)
        self.tree.itemSelectionChanged.connect(self._show_selected)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.exclude_button = QPushButton("Exclude selected")
        self.exclude_button.setToolTip("Take the selected copies out of the dataset (keep one of each group)")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.open_button = QPushButton("Open file location")
        self.open_button.clicked.connect(lambda: [open_file_location(p) for p in self.selected_paths()[:1]])
        row = QHBoxLayout()
        row.addWidget(hint("A group across train/val/test inflates accuracy; across classes it contradicts itself."), 1)
        row.addWidget(self.open_button)
        row.addWidget(self.exclude_button)
        body = QHBoxLayout()
        body.addWidget(self.tree, 1)
        body.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(body, 1)

    def _show_selected(self) -> None:
        paths = self.selected_paths()
        self.preview.setPixmap(DatasetMap._thumbnail(paths[-1]) if paths else QPixmap())

    def set_groups(self, root: Path, groups, splits: dict[str, str | None], classes: dict[str, str]) -> None:
        self.tree.clear()
        for g in groups:
            problem = ", ".join(t for t, on in (("across splits", g.cross_split), ("across classes", g.cross_class)) if on)
            top = QTreeWidgetItem([f"{len(g.paths)} pictures", f"{g.similarity:.3f}", problem or "same split and class"])
            for p in g.paths:
                where = " / ".join(x for x in (splits.get(p), classes.get(p)) if x)
                child = QTreeWidgetItem([p, "", where])
                child.setData(0, PATH_ROLE, str(root / p))
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)

    def selected_paths(self) -> list[str]:
        return [i.data(0, PATH_ROLE) for i in self.tree.selectedItems() if i.data(0, PATH_ROLE)]

    def exclude_selected(self) -> None:
        paths = self.selected_paths()
        if paths and self.editor.exclude(paths, "near-duplicate") is not None:
            gone = set(paths)
            for i in range(self.tree.topLevelItemCount() - 1, -1, -1):
                top = self.tree.topLevelItem(i)
                for j in range(top.childCount() - 1, -1, -1):
                    if top.child(j).data(0, PATH_ROLE) in gone:
                        top.removeChild(top.child(j))
                if top.childCount() < 2:
                    self.tree.takeTopLevelItem(i)

    def _open(self, item: QTreeWidgetItem) -> None:
        path = item.data(0, PATH_ROLE)
        if path:
            open_file_location(path)


class AuditDialog(QDialog):
    """``AuditDialog(root, config, editor)``; :meth:`start` runs the audit."""

    def __init__(self, root: str | Path, config: TrainConfig, editor: DatasetEditor, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Find problems in the dataset")
        self.resize(1000, 700)
        self.root = Path(root)
        self.config = config
        self.editor = editor
        self.outcome: AuditOutcome | None = None
        self._handle: WorkerHandle | None = None

        self.busy = BusyBanner()
        self.busy.cancel_requested.connect(self.cancel)
        self.error = MessageBanner("error")
        self.stale = MessageBanner("info")
        self.summary = hint("")
        self.rerun_button = QPushButton("Run again")
        self.rerun_button.clicked.connect(self.start)
        self.suspects = SuspectsPanel(editor)
        self.duplicates = DuplicatesPanel(editor)
        self.map = DatasetMap()
        self.map_move = QPushButton("Move or exclude selected...")
        self.map_move.clicked.connect(self._map_menu)
        self.map.selection_changed.connect(lambda paths: self.map_move.setEnabled(bool(paths)))
        self.map_move.setEnabled(False)
        map_page = QWidget()
        mv = QVBoxLayout(map_page)
        mv.setContentsMargins(0, 0, 0, 0)
        mv.addWidget(self.map, 1)
        mrow = QHBoxLayout()
        mrow.addStretch(1)
        mrow.addWidget(self.map_move)
        mv.addLayout(mrow)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.suspects, "Suspected label errors")
        self.tabs.addTab(self.duplicates, "Near-duplicates")
        self.tabs.addTab(map_page, "Map")
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.rerun_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.busy)
        layout.addWidget(self.error)
        layout.addWidget(self.stale)
        layout.addWidget(self.tabs, 1)
        editor.changed.connect(self._dataset_changed)

    # --- running -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.cancel(wait=True)
        self.error.set_messages([])
        self.stale.set_messages([])
        worker = AuditWorker(self.root, self.config)
        self.busy.start(f"Looking at every picture of {self.root.name} (cached features are reused)...")
        self.rerun_button.setEnabled(False)
        self._handle = start_worker(worker, name="audit", owner=self, connect={
            "progress": self.busy.set_progress, "message": self.busy.set_text,
            "finished": self.show_outcome, "failed": self._failed, "cancelled": self._cancelled,
        })

    def is_running(self) -> bool:
        return bool(registry.running(owner=self))

    def cancel(self, wait: bool = False) -> None:
        if self._handle is not None:
            self._handle.detach()  # what a replaced audit still has queued is dropped
        registry.cancel(owner=self)
        if wait:
            registry.await_workers(owner=self)
        self.busy.stop()
        self.rerun_button.setEnabled(True)

    def show_outcome(self, outcome: AuditOutcome) -> None:
        self.outcome = outcome
        self.busy.stop()
        self.rerun_button.setEnabled(True)
        report = outcome.report
        leaks = sum(1 for d in report.near_duplicates if d.cross_split)
        self.summary.setText(
            f"{len(report.paths)} pictures: {len(report.suspects)} suspected label error(s), "
            f"{len(report.near_duplicates)} near-duplicate group(s) ({leaks} across splits). "
            f"Features: {report.cache_hits} cached, {report.cache_computed} computed."
        )
        self.suspects.set_suspects(report.root, report.suspects)
        splits = dict(zip(report.paths, report.splits, strict=True))
        classes = {p: report.classes[int(c)] for p, c in zip(report.paths, report.labels, strict=True)}
        self.duplicates.set_groups(Path(report.root), report.near_duplicates, splits, classes)
        self.map.set_points(outcome.coords, [str(Path(report.root) / p) for p in report.paths], report.labels,
                            report.classes, outcome.map_method)

    def _failed(self, text: str) -> None:
        self.busy.stop()
        self.rerun_button.setEnabled(True)
        self.error.set_messages([text])

    def _cancelled(self) -> None:
        self.busy.stop()
        self.rerun_button.setEnabled(True)

    def _dataset_changed(self, summary: str) -> None:
        if self.outcome is not None:
            self.stale.set_messages([f"{summary}. The map and lists show the dataset as it was; Run again to refresh."])

    def _map_menu(self) -> None:
        menu = QMenu(self)
        add_curation_actions(menu, self.map.selected_paths(), self.editor, self)
        menu.exec(self.map_move.mapToGlobal(self.map_move.rect().bottomLeft()))

    def done(self, result: int) -> None:  # closing the dialog stops the audit and the thumbnails
        self.cancel(wait=True)
        self.suspects.gallery.shutdown()
        super().done(result)

    def closeEvent(self, event) -> None:
        self.cancel(wait=True)
        self.suspects.gallery.shutdown()
        super().closeEvent(event)
