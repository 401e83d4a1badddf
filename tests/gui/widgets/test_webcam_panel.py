"""The webcam panel: frames fed through the same path the camera uses; holding the button captures a burst."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tlstudio.core.data import curate, webcam
from tlstudio.gui.curation import DatasetEditor
from tlstudio.gui.widgets.webcam import WebcamPanel


def _frame(i):
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, : 8 * (i + 1)] = (200, 80, 20)
    return img


def test_holding_the_button_captures_a_burst_into_the_class(qtbot, tmp_path):
    root = curate.new_dataset(tmp_path / "signs", ["one", "two"])
    editor = DatasetEditor()
    editor.set_root(root)
    changes = []
    editor.changed.connect(changes.append)
    panel = WebcamPanel(editor, interval_ms=0)
    qtbot.addWidget(panel)
    panel.set_support(None)  # as with OpenCV installed
    assert panel.controls.isVisibleTo(panel) and not panel.hint_label.isVisibleTo(panel)
    panel.feed_frame(_frame(0))  # preview only: the button is not held
    assert not panel.preview.pixmap().isNull()
    panel.class_combo.setCurrentText("two")
    panel.capture_button.pressed.emit()
    for i in range(4):
        panel.feed_frame(_frame(i))
    assert panel.count_label.text() == "4 taken"
    assert list((root / "two").iterdir()) == []  # nothing in the class until the button is released
    panel.capture_button.released.emit()
    assert len(list((root / "two").glob("*.jpg"))) == 4
    assert changes == ["captured 4 image(s) into two"]
    assert editor.undo_text() == "captured 4 image(s) into two"
    editor.undo()
    assert list((root / "two").iterdir()) == []


def test_no_dataset_or_class_is_a_clear_message(qtbot):
    editor = DatasetEditor()
    errors = []
    editor.failed.connect(errors.append)
    panel = WebcamPanel(editor)
    qtbot.addWidget(panel)
    assert panel.start_capture() is False
    assert errors == ["Open or create a dataset and choose a class first."]


@pytest.mark.skipif(importlib.util.find_spec("cv2") is not None, reason="OpenCV is installed here")
def test_without_opencv_the_panel_is_one_line_saying_how_to_get_it(qtbot):
    panel = WebcamPanel(DatasetEditor())
    qtbot.addWidget(panel)
    panel.show()
    assert panel.hint_label.text() == webcam.CAMERA_HINT
    assert panel.hint_label.isVisible() and not panel.controls.isVisible()
    assert panel.find_cameras() == []
    assert "No camera found" in panel.preview.text()
