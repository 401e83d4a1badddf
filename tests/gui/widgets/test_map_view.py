"""The dataset map: points coloured by class, lasso and click select, hover shows the picture."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tlstudio.gui.widgets.map_view import DatasetMap


class FakeDrag:
    """The parts of a pyqtgraph MouseDragEvent the lasso reads."""

    def __init__(self, scene_pos, start=False, finish=False):
        self._pos, self._start, self._finish = scene_pos, start, finish

    def button(self):
        return Qt.MouseButton.LeftButton

    def scenePos(self):
        return self._pos

    def isStart(self):
        return self._start

    def isFinish(self):
        return self._finish

    def accept(self):
        pass


def _map(qtbot, tmp_path, make_image):
    view = DatasetMap()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    paths = [str(make_image(tmp_path / f"p{i}.png", pattern=i)) for i in range(6)]
    coords = np.array([[0, 0], [0.2, 0.1], [0.1, 0.3], [5, 5], [5.2, 5.1], [4.9, 5.3]])
    view.set_points(coords, paths, [0, 0, 0, 1, 1, 1], ["cats", "dogs"])
    return view, paths


def test_lasso_drag_selects_the_points_inside(qtbot, tmp_path, make_image):
    view, paths = _map(qtbot, tmp_path, make_image)
    got = []
    view.selection_changed.connect(got.append)
    view.set_lasso(True)
    assert view.lasso_button.isChecked()
    outline = [(4, 4), (6, 4), (6, 6), (4, 6)]
    vb = view.view
    scene = [vb.mapViewToScene(QPointF(x, y)) for x, y in outline]
    for i, pos in enumerate(scene):
        vb.mouseDragEvent(FakeDrag(pos, start=i == 0, finish=i == len(scene) - 1))
    assert got[-1] == paths[3:]
    assert view.selected_paths() == paths[3:]
    assert "3 selected" in view.status.text()
    view.set_lasso(False)
    view.clear_button.click()
    assert view.selected_paths() == []


def test_click_selects_and_ctrl_click_adds(qtbot, tmp_path, make_image):
    view, paths = _map(qtbot, tmp_path, make_image)
    points = view.scatter.points()

    class Ev:
        def __init__(self, mods):
            self._m = mods

        def modifiers(self):
            return self._m

    view._clicked(view.scatter, [points[1]], Ev(Qt.KeyboardModifier.NoModifier))
    assert view.selected_paths() == [paths[1]]
    view._clicked(view.scatter, [points[4]], Ev(Qt.KeyboardModifier.ControlModifier))
    assert view.selected_paths() == [paths[1], paths[4]]
    # The selected dots are drawn with a heavier outline.
    widths = [p.pen().widthF() for p in view.scatter.points()]
    assert widths[1] > widths[0] and widths[4] > widths[3]


def test_hover_shows_the_picture(qtbot, tmp_path, make_image):
    view, paths = _map(qtbot, tmp_path, make_image)
    hovered = []
    view.hovered.connect(hovered.append)
    view._hovered(view.scatter, [view.scatter.points()[4]], None)
    assert hovered == [paths[4]]
    assert not view.preview.pixmap().isNull()
    assert view.preview_caption.text().startswith("dogs")
