"""A 2-D map of the dataset: one dot per image, coloured by class; hover shows the picture, click or lasso selects.

The coordinates come from :func:`tlstudio.core.data.feature_map.project_2d` (PCA of the cached
features, or UMAP). One :class:`pyqtgraph.ScatterPlotItem` holds every point (created once per
``set_points``; selection only changes the pens). In lasso mode a left-drag draws a free-hand
outline in the plot; on release the points inside it are selected, so a cluster of mislabelled
pictures can be moved or excluded at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPixmap, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

# isort: split
# pyqtgraph after PySide6: it binds to the Qt module already imported.
import pyqtgraph as pg

CLASS_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]
PREVIEW_SIZE = 160


def class_colour(index: int) -> QColor:
    r, g, b = CLASS_COLOURS[index % len(CLASS_COLOURS)]
    return QColor(r, g, b)


class LassoViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a lasso (when ``lasso`` is on) instead of panning."""

    def __init__(self, on_lasso, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lasso = False
        self._on_lasso = on_lasso
        self._points: list[QPointF] = []
        self._outline = pg.QtWidgets.QGraphicsPathItem()
        self._outline.setPen(pg.mkPen((40, 40, 40), width=1, style=Qt.PenStyle.DashLine))
        self._outline.setZValue(1000)
        self.addItem(self._outline, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if not self.lasso or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        point = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._points = [point]
        else:
            self._points.append(point)
        path = QPainterPath()
        path.addPolygon(QPolygonF(self._points))
        self._outline.setPath(path)
        if ev.isFinish():
            self._outline.setPath(QPainterPath())
            points, self._points = self._points, []
            self._on_lasso([(p.x(), p.y()) for p in points])


class DatasetMap(QWidget):
    """``set_points(coords, paths, labels, classes)``; emits ``selection_changed(list[str])`` of paths."""

    selection_changed = Signal(list)
    hovered = Signal(str)  # path of the image under the mouse

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths: list[str] = []
        self.labels = np.zeros(0, int)
        self.classes: list[str] = []
        self.coords = np.zeros((0, 2))
        self.selected: set[int] = set()
        self._thumbs: dict[str, QPixmap] = {}

        self.view = LassoViewBox(self.select_in_polygon)
        self.plot = pg.PlotWidget(viewBox=self.view, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.legend = self.plot.addLegend(offset=(8, 8))
        self.scatter = pg.ScatterPlotItem(size=9, hoverable=True, hoverSize=13, tip=None)
        self.scatter.sigClicked.connect(self._clicked)
        self.scatter.sigHovered.connect(self._hovered)
        self.plot.addItem(self.scatter)

        self.lasso_button = QPushButton("Lasso select")
        self.lasso_button.setCheckable(True)
        self.lasso_button.setToolTip("Drag around a group of dots to select them (off: drag pans, wheel zooms)")
        self.lasso_button.toggled.connect(self.set_lasso)
        self.clear_button = QPushButton("Clear selection")
        self.clear_button.clicked.connect(lambda: self.set_selection(set()))
        self.status = QLabel("")
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_caption = QLabel("Hover over a dot to see its picture")
        self.preview_caption.setWordWrap(True)
        self.preview_caption.setFixedWidth(PREVIEW_SIZE)

        side = QVBoxLayout()
        side.addWidget(self.preview)
        side.addWidget(self.preview_caption)
        side.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.lasso_button)
        top.addWidget(self.clear_button)
        top.addWidget(self.status, 1)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(body, 1)

    # --- contents --------------------------------------------------------------------------------
    def set_points(self, coords: np.ndarray, paths: Sequence[str], labels: Sequence[int], classes: Sequence[str],
                   method: str = "pca") -> None:
        self.coords = np.asarray(coords, dtype=float).reshape(-1, 2)
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=int)
        self.classes = list(classes)
        self.selected = set()
        self._brushes = [pg.mkBrush(class_colour(int(c))) for c in self.labels]
        self.scatter.setData(
            pos=self.coords, data=np.arange(len(self.paths)), brush=self._brushes, pen=self._pens()
        )
        self.legend.clear()
        for i, name in enumerate(self.classes):
            self.legend.addItem(pg.ScatterPlotItem(brush=pg.mkBrush(class_colour(i)), size=9), name)
        self.plot.getPlotItem().setTitle(f"{len(self.paths)} images ({method.upper()} of the base's features)")
        self.view.autoRange()
        self._update_status()

    def _pens(self) -> list:
        plain = pg.mkPen(255, 255, 255, 200, width=0.5)
        marked = pg.mkPen(0, 0, 0, 255, width=2.5)
        return [marked if i in self.selected else plain for i in range(len(self.paths))]

    # --- selection ---------------------------------------------------------------------------------
    def set_lasso(self, on: bool) -> None:
        self.view.lasso = bool(on)
        self.view.setMouseEnabled(x=not on, y=not on)
        if self.lasso_button.isChecked() != bool(on):
            self.lasso_button.setChecked(bool(on))

    def set_selection(self, rows: set[int]) -> None:
        self.selected = {int(r) for r in rows if 0 <= int(r) < len(self.paths)}
        if len(self.paths):
            self.scatter.setPen(self._pens())
        self._update_status()
        self.selection_changed.emit(self.selected_paths())

    def select_paths(self, paths: Sequence[str]) -> None:
        wanted = {str(p) for p in paths}
        self.set_selection({i for i, p in enumerate(self.paths) if p in wanted})

    def selected_paths(self) -> list[str]:
        return [self.paths[i] for i in sorted(self.selected)]

    def select_in_polygon(self, outline: Sequence[tuple[float, float]]) -> None:
        """Select the points inside ``outline`` (data coordinates); too short an outline selects nothing."""
        if len(outline) < 3 or not len(self.paths):
            self.set_selection(set())
            return
        polygon = QPolygonF([QPointF(x, y) for x, y in outline])
        inside = {
            i for i, (x, y) in enumerate(self.coords) if polygon.containsPoint(QPointF(x, y), Qt.FillRule.OddEvenFill)
        }
        self.set_selection(inside)

    def _clicked(self, _item, points, ev) -> None:
        rows = {int(p.data()) for p in points[:1]}
        additive = ev is not None and bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.set_selection((self.selected ^ rows) if additive else rows)

    def _update_status(self) -> None:
        n = len(self.selected)
        self.status.setText(f"{n} selected" if n else "Click a dot, or use the lasso, to select pictures")

    # --- hover -------------------------------------------------------------------------------------
    def _hovered(self, _item, points, _ev) -> None:
        if len(points):
            self.show_preview(int(points[0].data()))

    def show_preview(self, row: int) -> None:
        """Show the picture of point ``row`` beside the map."""
        if not 0 <= row < len(self.paths):
            return
        path = self.paths[row]
        pixmap = self._thumbs.get(path)
        if pixmap is None:
            pixmap = self._thumbnail(path)
            self._thumbs[path] = pixmap
        self.preview.setPixmap(pixmap)
        self.preview_caption.setText(f"{self.classes[self.labels[row]]}\n{Path(path).name}")
        self.hovered.emit(path)

    @staticmethod
    def _thumbnail(path: str) -> QPixmap:
        from tlstudio.core.data.imageio import make_thumbnail
        from tlstudio.gui.widgets.pixmaps import rgb_pixmap

        try:
            img = make_thumbnail(path, PREVIEW_SIZE).convert("RGB")
        except Exception:  # a file gone or unreadable: no picture, the caption still says which
            return QPixmap()
        return rgb_pixmap(img.tobytes(), img.width, img.height)
