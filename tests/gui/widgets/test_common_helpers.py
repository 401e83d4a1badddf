"""``widgets/common`` helpers the pages build with: button(), add_banners(), share_columns()."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from tlstudio.gui.widgets.common import BusyBanner, MessageBanner, add_banners, button, share_columns


def test_button_calls_its_slot_and_shows_its_tip(qtbot):
    clicks = []
    b = button("Go", lambda: clicks.append(1), "Start it")
    qtbot.addWidget(b)
    qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
    assert clicks == [1] and b.text() == "Go" and b.toolTip() == "Start it"


def test_add_banners_adds_a_busy_banner_wired_to_cancel_then_one_per_kind(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    cancelled = []
    busy, error, info = add_banners(layout, lambda: cancelled.append(1), "error", "info")
    assert isinstance(busy, BusyBanner) and isinstance(error, MessageBanner) and isinstance(info, MessageBanner)
    assert [layout.itemAt(i).widget() for i in range(layout.count())] == [busy, error, info]
    busy.cancel_requested.emit()
    assert cancelled == [1]


def test_share_columns_sets_the_starting_widths(qtbot):
    splitter = QSplitter(Qt.Orientation.Horizontal)
    qtbot.addWidget(splitter)
    splitter.addWidget(QLabel("left"))
    splitter.addWidget(QLabel("right"))
    splitter.resize(1000, 100)
    share_columns(splitter, (2, 3), (400, 600))
    left, right = splitter.sizes()
    assert left < right
