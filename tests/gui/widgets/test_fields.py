"""Bound fields: the wheel leaves unfocused fields alone, typed numbers commit on Enter, refreshes spare focus."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QScrollArea, QVBoxLayout, QWidget

from tlstudio.gui.widgets.fields import combo_box, decimal_box, set_quietly, spin_box


def wheel(widget, steps: int = 1) -> None:
    pos = QPointF(widget.rect().center())
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def form(qtbot, *fields):
    host = QWidget()
    layout = QVBoxLayout(host)
    other = QLineEdit()
    layout.addWidget(other)
    for f in fields:
        layout.addWidget(f)
    scroll = QScrollArea()
    scroll.setWidget(host)
    qtbot.addWidget(scroll)
    scroll.show()
    qtbot.waitExposed(scroll)
    other.scroll = scroll  # keep the window alive as long as the test holds ``other``
    return other


def test_wheel_over_an_unfocused_field_changes_nothing(qtbot):
    spin, combo = spin_box(1, 100), combo_box()
    combo.addItems(["a", "b", "c"])
    spin.setValue(32)
    other = form(qtbot, spin, combo)
    other.setFocus()
    wheel(spin)
    wheel(combo, -1)
    assert spin.value() == 32 and combo.currentIndex() == 0
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    wheel(spin)
    assert spin.value() == 33  # once the person chose the field, the wheel is theirs


def test_typed_decimal_commits_once_on_enter(qtbot):
    box = decimal_box(0.0, 0.5, 0.05)
    box.setValue(0.10)
    keep = form(qtbot, box)  # noqa: F841
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    committed = []
    box.valueChanged.connect(committed.append)
    box.selectAll()
    qtbot.keyClicks(box, "0.25")
    assert committed == []  # nothing is saved while the person is still typing
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert committed == [0.25] and box.value() == 0.25


def test_refresh_spares_the_focused_field_and_is_silent(qtbot):
    box = decimal_box(0.0, 0.5, 0.05)
    keep = form(qtbot, box)  # noqa: F841
    heard = []
    box.valueChanged.connect(heard.append)
    set_quietly(box, 0.3)
    assert box.value() == 0.3 and heard == []
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    box.lineEdit().setText("0.4")
    set_quietly(box, 0.1)  # a refresh while the person types
    assert box.lineEdit().text() == "0.4"
