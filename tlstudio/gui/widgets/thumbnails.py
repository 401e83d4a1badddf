"""A lazy thumbnail grid: a list model whose pictures are made on a worker when a view paints them.

``QListView`` in icon mode with uniform item sizes asks ``data(DecorationRole)`` only for the items
it is painting, so requesting the thumbnail there requests exactly the visible ones. Thumbnails
are kept in a bounded in-memory cache (and on disk by the worker).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QListView, QWidget

from tlstudio.gui.widgets.common import icon
from tlstudio.gui.widgets.pixmaps import rgba_pixmap
from tlstudio.workers.base import WorkerHandle, registry, start_worker
from tlstudio.workers.thumbnail_worker import ThumbnailWorker

MEMORY_CACHE = 3000
_ROLES = frozenset({Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole,
                    Qt.ItemDataRole.UserRole})


class ThumbnailModel(QAbstractListModel):
    """Rows are image files (paths relative to ``root``); the decoration is the thumbnail."""

    def __init__(self, size: int = 96, parent=None) -> None:
        super().__init__(parent)
        self.size = size
        self.root: Path | None = None
        self.records: list = []  # FileRecord
        self._rows: dict[str, int] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._requested: set[str] = set()
        self._worker: ThumbnailWorker | None = None
        self._handle: WorkerHandle | None = None
        self.placeholder = self._make_placeholder()
        self._stopped = False
        self.requests = 0  # how many thumbnails were asked of the worker (for tests and benchmarks)

    def _make_placeholder(self) -> QPixmap:
        pm = QPixmap(self.size, self.size)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        colour = QColor(self._palette_colour())
        colour.setAlpha(60)
        painter.fillRect(pm.rect().adjusted(4, 4, -4, -4), colour)
        painter.end()
        return pm

    @staticmethod
    def _palette_colour() -> QColor:
        from PySide6.QtWidgets import QApplication

        return QApplication.palette().color(QPalette.ColorRole.Mid)

    # --- contents --------------------------------------------------------------------------------

    def set_files(self, root: str | Path | None, records: list) -> None:
        """Show ``records`` (FileRecords under ``root``)."""
        self.beginResetModel()
        new_root = Path(root) if root is not None else None
        if new_root != self.root:
            self._pixmaps.clear()
            self._failed.clear()
        self.root = new_root
        self.records = list(records)
        self._rows = {r.path: i for i, r in enumerate(self.records)}
        self._requested.clear()
        self._stopped = False
        if self._worker is not None:
            self._worker.forget_pending()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        # Called for every painted item and role: keep it cheap (no pathlib).
        if role not in _ROLES:
            return None
        row = index.row()
        if not 0 <= row < len(self.records):
            return None
        rec = self.records[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return rec.path.rpartition("/")[2]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(rec.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            dims = f"{rec.width} x {rec.height} px, " if rec.width else ""
            extra = f"\n{self._failed[rec.path]}" if rec.path in self._failed else ""
            return f"{rec.path}\n{dims}{rec.size / 1024:.0f} KB{extra}"
        if role == Qt.ItemDataRole.UserRole:
            return rec
        return None

    def _decoration(self, rel: str):
        pm = self._pixmaps.get(rel)
        if pm is not None:
            self._pixmaps.move_to_end(rel)
            return pm
        if rel in self._failed:
            return icon("warning")
        if rel not in self._requested and self.root is not None and not self._stopped:
            self._requested.add(rel)
            self._ensure_worker().request(rel, str(self.root / rel))
            self.requests += 1
        return self.placeholder

    def path_of(self, row: int) -> Path | None:
        if self.root is None or not 0 <= row < len(self.records):
            return None
        return self.root / self.records[row].path

    # --- worker ----------------------------------------------------------------------------------

    def _ensure_worker(self) -> ThumbnailWorker:
        if self._worker is None or self._handle is None or not self._handle.is_running():
            worker = ThumbnailWorker(self.size)
            worker.thumbnail_ready.connect(self._on_ready)
            worker.thumbnail_failed.connect(self._on_failed)
            self._worker = worker
            self._handle = start_worker(worker, name="thumbnails", owner=self)
        return self._worker

    def _row_of(self, rel: str) -> int:
        return self._rows.get(rel, -1)

    def _on_ready(self, key: str, payload) -> None:
        rgba, w, h = payload
        pixmap = rgba_pixmap(rgba, w, h)
        if pixmap is None:
            self._on_failed(key, "the thumbnail could not be shown")
            return
        self._pixmaps[key] = pixmap
        while len(self._pixmaps) > MEMORY_CACHE:
            old, _ = self._pixmaps.popitem(last=False)
            self._requested.discard(old)
        self._changed(key)

    def _on_failed(self, key: str, reason: str) -> None:
        self._failed[key] = reason
        self._changed(key)

    def _changed(self, key: str) -> None:
        row = self._row_of(key)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole])

    def loaded_count(self) -> int:
        return len(self._pixmaps)

    def shutdown(self) -> None:
        """Stop the worker and wait for its thread; no new one starts until :meth:`set_files` is called."""
        self._stopped = True
        registry.shutdown(owner=self)
        self._handle = None
        self._worker = None
        self._requested.clear()


class ThumbnailView(QListView):
    """An icon grid with fixed cells, laid out in batches so huge folders stay responsive."""

    def __init__(self, size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 28, size + 24))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)

