"""A gallery of image thumbnails with captions; thumbnails are made on a worker thread.

Each item says what it is (e.g. "true: ants · predicted: bees (92%)"); a double click or the
context menu opens the file's folder in the system file manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.widgets.pixmaps import rgba_pixmap
from tlstudio.workers.base import WorkerHandle, registry, start_worker
from tlstudio.workers.thumbnail_worker import ThumbnailWorker

PATH_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class GalleryItem:
    path: str  # absolute path of the image file
    caption: str
    tooltip: str = ""


def open_file_location(path: str | Path) -> bool:
    """Open the folder holding ``path`` in the system file manager."""
    folder = Path(path).parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _placeholder(size: int) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(QColor(235, 235, 235))
    painter = QPainter(pix)
    painter.setPen(QColor(150, 150, 150))
    painter.drawText(pix.rect(), int(Qt.AlignmentFlag.AlignCenter), "…")
    painter.end()
    return pix


class ImageGallery(QWidget):
    """Thumbnails in a wrapping grid. ``set_items(list[GalleryItem])`` replaces the contents."""

    item_activated = Signal(str)  # path of a double-clicked item

    def __init__(self, parent: QWidget | None = None, *, thumb_size: int = 112, max_items: int = 400,
                 empty_text: str = "No images") -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.max_items = max_items
        self.empty_text = empty_text
        self._items: list[GalleryItem] = []
        self._generation = 0
        self._handle: WorkerHandle | None = None
        self._worker: ThumbnailWorker | None = None
        self.thumbnails_done = 0  # thumbnails of the current list received so far

        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setIconSize(QSize(thumb_size, thumb_size))
        self.list.setGridSize(QSize(thumb_size + 36, thumb_size + 48))
        self.list.setSpacing(4)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemDoubleClicked.connect(self._on_double_click)
        self.list.currentItemChanged.connect(self._update_buttons)
        self.open_button = QPushButton("Open file location", self)
        self.open_button.setToolTip("Show the selected image in the system file manager")
        self.open_button.clicked.connect(self.open_selected_location)
        self.open_button.setEnabled(False)

        bottom = QHBoxLayout()
        bottom.addWidget(self.title, 1)
        bottom.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bottom)
        layout.addWidget(self.list, 1)
        self._placeholder = _placeholder(thumb_size)
        self.title.setText(empty_text)

    # --- contents ------------------------------------------------------------------------------
    def set_items(self, items: list[GalleryItem], title: str | None = None) -> None:
        if self._worker is not None:
            self._worker.forget_pending()
        self._generation += 1
        self.thumbnails_done = 0
        self._items = list(items)
        shown = self._items[: self.max_items]
        self.list.clear()
        for item in shown:
            widget_item = QListWidgetItem(QIcon(self._placeholder), item.caption)
            widget_item.setData(PATH_ROLE, item.path)
            widget_item.setToolTip(item.tooltip or f"{item.caption}\n{item.path}")
            widget_item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(widget_item)
        if title is None:
            title = f"{len(self._items)} image(s)" if self._items else self.empty_text
        if len(self._items) > len(shown):
            title += f" (showing the first {len(shown)})"
        self.title.setText(title)
        self._update_buttons()
        if shown:
            worker = self._ensure_worker()
            # Requested last first: the worker serves the newest request first, so the top rows come first.
            for index in reversed(range(len(shown))):
                worker.request(f"{self._generation}:{index}", shown[index].path)

    def clear(self) -> None:
        self.set_items([], self.empty_text)

    def paths(self) -> list[str]:
        """Paths of the items shown, in order."""
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]

    def captions(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def items(self) -> list[GalleryItem]:
        return list(self._items)

    # --- thumbnails ----------------------------------------------------------------------------
    def _ensure_worker(self) -> ThumbnailWorker:
        if self._worker is None or self._handle is None or not self._handle.is_running():
            self._worker = ThumbnailWorker(self.thumb_size, disk_cache=False)
            self._worker.thumbnail_ready.connect(self._on_thumbnail)
            self._worker.thumbnail_failed.connect(self._on_thumbnail_failed)
            self._handle = start_worker(self._worker, name="gallery-thumbnails", owner=self)
        return self._worker

    def _item_of(self, key: str) -> QListWidgetItem | None:
        generation, _, index = key.partition(":")
        if int(generation) != self._generation or int(index) >= self.list.count():
            return None  # a thumbnail of a list already replaced
        return self.list.item(int(index))

    def _on_thumbnail(self, key: str, payload) -> None:
        item = self._item_of(key)
        pixmap = rgba_pixmap(*payload) if item is not None else None
        if pixmap is not None:
            item.setIcon(QIcon(pixmap))
            self.thumbnails_done += 1

    def _on_thumbnail_failed(self, key: str, reason: str) -> None:
        item = self._item_of(key)
        if item is not None:
            item.setToolTip(f"{item.toolTip()}\nCannot show this image: {reason}")
            self.thumbnails_done += 1

    def is_busy(self) -> bool:
        """True while thumbnails of the current list are still being made."""
        return self.thumbnails_done < min(len(self._items), self.max_items)

    def shutdown(self, msecs: int = 5000) -> None:
        """Stop the thumbnail worker and wait for its thread (on page close)."""
        registry.shutdown(owner=self, msecs=msecs)
        self._handle = self._worker = None

    # --- opening files -------------------------------------------------------------------------
    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        return item.data(PATH_ROLE) if item is not None else None

    def open_selected_location(self) -> None:
        path = self.selected_path()
        if path:
            open_file_location(path)

    def _update_buttons(self, *_args) -> None:
        self.open_button.setEnabled(self.list.currentItem() is not None)

    def _on_double_click(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        self.item_activated.emit(path)
        open_file_location(path)

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        path = item.data(PATH_ROLE)
        menu = QMenu(self)
        menu.addAction("Open file location", lambda: open_file_location(path))
        menu.addAction("Open image", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
        menu.exec(self.list.viewport().mapToGlobal(pos))
