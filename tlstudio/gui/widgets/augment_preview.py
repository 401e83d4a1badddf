"""A few training images beside random variations of each, as training would see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from tlstudio.core.config import AugmentConfig
from tlstudio.gui.widgets.pixmaps import rgb_pixmap
from tlstudio.workers.augment_preview import augment_previews
from tlstudio.workers.base import WorkerHandle, create_worker

PREVIEW_IMAGES = 3
PREVIEW_VARIANTS = 3
PREVIEW_SIZE = 64
NO_AUGMENT = AugmentConfig(enabled=False, flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0)


def preview_paths(scan, count: int = PREVIEW_IMAGES) -> list[str]:
    """One training image from each class in turn, so the preview shows the variety of the dataset."""
    if scan is None:
        return []
    records = scan.usable("train") or scan.usable()
    by_class: dict[Any, list] = {}
    for rec in records:
        by_class.setdefault(rec.class_name, []).append(rec)
    picked = []
    while len(picked) < count and any(by_class.values()):
        for recs in by_class.values():
            if recs and len(picked) < count:
                picked.append(recs.pop(0))
    return [str(Path(scan.root) / rec.path) for rec in picked]


class AugmentPreview(QWidget):
    """A grid: each row an original (framed) and :data:`PREVIEW_VARIANTS` variations, made on a worker."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        self.labels: list[list[QLabel]] = []
        for r in range(PREVIEW_IMAGES):
            row = []
            for c in range(PREVIEW_VARIANTS + 1):
                lab = QLabel(self)
                lab.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
                lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
                lab.setStyleSheet("background: palette(midlight);" + ("border: 1px solid palette(mid);" if c == 0 else ""))
                lab.setToolTip("Original" if c == 0 else "A random variation, as training would see it")
                grid.addWidget(lab, r, c)
                row.append(lab)
            self.labels.append(row)
        self._handle: WorkerHandle | None = None
        self._show_variants = True
        self.shown = 0  # images in the preview

    def clear(self) -> None:
        for row in self.labels:
            for lab in row:
                lab.clear()

    def refresh(self, paths: list[str], augment: AugmentConfig, resize_policy: str, seed: int) -> None:
        """Make new variations of ``paths`` in the background; a newer request replaces an older one."""
        if self._handle is not None:
            self._handle.detach()
            self._handle.cancel()
        self.shown = 0  # what is on screen is the previous request's until this one arrives
        if not paths:
            self.clear()
            return
        self._show_variants = augment.enabled
        self._handle = create_worker(
            augment_previews, paths, augment if augment.enabled else NO_AUGMENT, size=PREVIEW_SIZE,
            variants=PREVIEW_VARIANTS, resize_policy=resize_policy, seed=seed,
            _name="augment-preview", _owner=self, _connect={"finished": self._show})

    def _show(self, rows: list) -> None:
        self.clear()
        for r, row in enumerate(rows[:PREVIEW_IMAGES]):
            for c, (data, w, h) in enumerate(row[: PREVIEW_VARIANTS + 1]):
                if c == 0 or self._show_variants:
                    self.labels[r][c].setPixmap(rgb_pixmap(data, w, h))
        self.shown = len(rows)
