"""Find what a person would see as broken in a laid-out window: widgets drawn over one another, cut labels.

Used by the layout tests and ``docs/make_screenshots.py`` at the window's minimum size, 1024x700 and 1920x1080.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QLabel,
    QScrollBar,
    QSplitterHandle,
    QStackedWidget,
    QWidget,
)

SIZES = ((1024, 700), (1920, 1080))


def _visible_children(widget: QWidget) -> list[QWidget]:
    return [c for c in widget.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
            if c.isVisible() and not c.isWindow()]


def _name(widget: QWidget) -> str:
    text = ""
    for attr in ("text", "title"):
        value = getattr(widget, attr, None)
        if callable(value):
            try:
                text = str(value())[:30]
            except TypeError:
                continue
            break
    return f"{type(widget).__name__}({widget.objectName() or text!r})"


def overlaps(root: QWidget) -> list[str]:
    """Pairs of visible sibling widgets whose rectangles intersect (each ``"A over B in P"``)."""
    found = []
    stack = [root]
    while stack:
        parent = stack.pop()
        children = _visible_children(parent)
        stack.extend(children)
        if isinstance(parent, (QStackedWidget, QAbstractScrollArea)):
            continue  # pages of a stack share one place; a scroll area's parts are its own business
        boxes = [(c, c.geometry()) for c in children if not isinstance(c, (QScrollBar, QSplitterHandle))]
        for i, (a, ra) in enumerate(boxes):
            for b, rb in boxes[i + 1:]:
                inter: QRect = ra.intersected(rb)
                if inter.width() > 1 and inter.height() > 1:
                    found.append(f"{_name(a)} over {_name(b)} in {_name(parent)}")
    return found


def cut_labels(root: QWidget) -> list[str]:
    """Visible labels whose text does not fit their box (Qt clips it without a sign)."""
    found = []
    for label in root.findChildren(QLabel):
        if not label.isVisible() or not label.text() or label.pixmap() is not None and not label.pixmap().isNull():
            continue
        if GuiQt.mightBeRichText(label.text()) or label.textFormat() == Qt.TextFormat.RichText:
            continue  # rich text wraps by its own rules; checked by eye in the screenshots
        box = label.contentsRect()
        fm = label.fontMetrics()
        if label.wordWrap():
            # heightForWidth takes and returns the whole label (padding and frame included), not its contents.
            needed = label.heightForWidth(label.width())
            if needed > label.height() + 2:
                found.append(f"{_name(label)} needs {needed} px of height, has {label.height()}")
        else:
            lines = label.text().splitlines() or [""]
            width = max(fm.horizontalAdvance(line) for line in lines)
            if width > box.width() + 1:
                found.append(f"{_name(label)} needs {width} px, has {box.width()}")
    return found


def clipped_sideways(root: QWidget) -> list[str]:
    """Visible labels and buttons cut off at the left or right by a parent (e.g. a column too narrow).

    Scrolling up and down is normal; text that only a sideways scroll bar would reveal is not.
    """
    found = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, (QLabel, QAbstractButton)) or not widget.isVisible():
            continue
        seen = widget.visibleRegion().boundingRect()
        if seen.isEmpty():
            continue  # scrolled out of view entirely
        if seen.width() < widget.width() - 2:
            found.append(f"{_name(widget)} shows {seen.width()} of {widget.width()} px")
    return found


def problems(root: QWidget) -> list[str]:
    """Everything :func:`overlaps`, :func:`cut_labels` and :func:`clipped_sideways` find."""
    return overlaps(root) + cut_labels(root) + clipped_sideways(root)
