"""Form fields a person can trust: values change only when the person chooses them.

* The mouse wheel over a spin box or combo box that does not have focus scrolls the form instead
  of changing the value (:func:`guard_wheel`).
* Numbers typed into a spin box are committed when editing finishes (Enter, leaving the field),
  not on each keystroke (``setKeyboardTracking(False)`` in :func:`spin_box` and :func:`decimal_box`).
* :func:`set_quietly` shows a value without emitting change signals, and leaves a field that has
  focus alone, so a refresh never rewrites what the person is typing.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)


class _WheelGuard(QObject):
    """Ignores wheel events on an unfocused field, so they reach the scroll area around it."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            event.ignore()
            return True
        return False


_GUARD: _WheelGuard | None = None


def guard_wheel(*widgets: QWidget) -> None:
    """The wheel changes these fields only once they have focus (a click or Tab gives it)."""
    global _GUARD
    if _GUARD is None:
        _GUARD = _WheelGuard()
    for widget in widgets:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_GUARD)


class _AutoText:
    """Lets a spin box show a text such as "Automatic" instead of its number while tlstudio chooses the value."""

    auto_text = ""

    def textFromValue(self, value):  # noqa: N802
        return self.auto_text or super().textFromValue(value)

    def show_auto(self, text: str) -> None:
        """Show ``text`` instead of the number ("": the number again); the value itself is kept."""
        if text != self.auto_text:
            self.auto_text = text
            blocked = self.blockSignals(True)
            self.setValue(self.value())  # re-renders the text through textFromValue
            self.blockSignals(blocked)


class AutoSpinBox(_AutoText, QSpinBox):
    """A :class:`QSpinBox` with :meth:`show_auto`."""


class AutoDecimalBox(_AutoText, QDoubleSpinBox):
    """A :class:`QDoubleSpinBox` with :meth:`show_auto`."""


def spin_box(low: int, high: int, parent: QWidget | None = None, *, step: int = 1, auto: bool = False) -> QSpinBox:
    spin = (AutoSpinBox if auto else QSpinBox)(parent)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setKeyboardTracking(False)
    guard_wheel(spin)
    return spin


def decimal_box(low: float, high: float, step: float, decimals: int = 2, parent: QWidget | None = None, *,
                auto: bool = False) -> QDoubleSpinBox:
    spin = (AutoDecimalBox if auto else QDoubleSpinBox)(parent)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setKeyboardTracking(False)
    guard_wheel(spin)
    return spin


def combo_box(parent: QWidget | None = None) -> QComboBox:
    combo = QComboBox(parent)
    # Sized to a short text, not to its longest item (the list itself opens as wide as needed), so a
    # form column fits at the smallest window.
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(14)
    guard_wheel(combo)
    return combo


def labelled(text: str, field: QWidget) -> QWidget:
    """``text`` and ``field`` side by side in one widget, so a row that wraps never parts them."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(QLabel(text))
    row.addWidget(field)
    return box


def set_quietly(widget: QWidget, value) -> None:
    """Show ``value`` without emitting change signals; a focused field keeps what the person typed."""
    if widget.hasFocus() and isinstance(widget, (QAbstractSpinBox, QComboBox)) and (
            not isinstance(widget, QComboBox) or widget.isEditable()):
        return
    blocked = widget.blockSignals(True)
    try:
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(value)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            index = widget.findData(value)
            widget.setCurrentIndex(max(0, index))
        else:
            raise TypeError(f"set_quietly does not know {type(widget).__name__}")
    finally:
        widget.blockSignals(blocked)
