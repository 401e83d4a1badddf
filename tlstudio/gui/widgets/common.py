"""Small widgets shared by the pages: icons, buttons, the workflow side bar, a busy banner, message banners."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

ICON_DIR = Path(__file__).resolve().parents[1] / "icons"


@cache
def icon(name: str) -> QIcon:
    """An icon from ``gui/icons/<name>.svg`` (or .png); an empty icon when missing."""
    for ext in (".svg", ".png"):
        path = ICON_DIR / f"{name}{ext}"
        if path.is_file():
            return QIcon(str(path))
    return QIcon()


def app_icon() -> QIcon:
    """The application's window icon."""
    ic = QIcon()
    for name in ("tlstudio.svg", "tlstudio-256.png"):
        path = ICON_DIR / name
        if path.is_file():
            ic.addFile(str(path))
    return ic


def heading(text: str, level: int = 1) -> QLabel:
    """A bold label, larger for level 1, that follows the palette."""
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * (1.5 if level == 1 else 1.15))
    label.setFont(font)
    return label


def hint(text: str) -> QLabel:
    """A word-wrapped explanatory label in the palette's placeholder (dimmed) colour."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def button(text: str, clicked: Callable[..., object], tip: str = "", parent: QWidget | None = None) -> QPushButton:
    """A push button wired to ``clicked``, with its tooltip (the pages build dozens of these)."""
    b = QPushButton(text, parent)
    if tip:
        b.setToolTip(tip)
    b.clicked.connect(clicked)
    return b


STATUS_ICONS = {"pending": "pending", "ready": "next", "done": "ready", "busy": "busy", "warning": "warning",
                "error": "error"}


class StepSidebar(QListWidget):
    """The workflow steps as a vertical list; each row shows the step's title, state and a short detail."""

    step_selected = Signal(str)

    def __init__(self, steps: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepSidebar")
        self.setIconSize(QSize(18, 18))
        self.setSpacing(2)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFixedWidth(190)
        self._keys: list[str] = []
        self._titles: dict[str, str] = {}
        self.status: dict[str, tuple[str, str]] = {}
        for key, title in steps:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setSizeHint(QSize(170, 46))
            self.addItem(item)
            self._keys.append(key)
            self._titles[key] = title
            self.set_status(key, "pending", "")
        self.currentRowChanged.connect(self._on_row)

    def keys(self) -> list[str]:
        return list(self._keys)

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self._keys):
            self.step_selected.emit(self._keys[row])

    def select(self, key: str) -> None:
        if key in self._keys:
            self.setCurrentRow(self._keys.index(key))

    def current_key(self) -> str | None:
        row = self.currentRow()
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def set_status(self, key: str, status: str, detail: str = "") -> None:
        """``status``: pending | ready | done | busy | warning | error; ``detail`` is one short line."""
        if key not in self._keys:
            return
        self.status[key] = (status, detail)
        item = self.item(self._keys.index(key))
        title = self._titles[key]
        item.setText(f"{title}\n{detail}" if detail else title)
        item.setIcon(icon(STATUS_ICONS.get(status, "pending")))
        item.setToolTip(f"{title}: {detail}" if detail else title)


class BusyBanner(QFrame):
    """A progress line with a message and a Cancel button, hidden when idle."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str, cancellable: bool = True) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.cancel_button.setVisible(cancellable)
        self.cancel_button.setEnabled(True)
        self.show()

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            self.bar.setFormat(f"{done} / {total}")
        else:
            self.bar.setRange(0, 0)

    def set_text(self, text: str) -> None:
        self.label.setText(text)

    def stop(self) -> None:
        self.hide()


class MessageBanner(QFrame):
    """A list of messages with an icon on a tinted background that reads in light and dark palettes."""

    COLOURS = {"warning": "rgba(245, 158, 11, 0.18)", "error": "rgba(220, 38, 38, 0.16)",
               "info": "rgba(37, 99, 235, 0.12)"}

    def __init__(self, kind: str = "warning", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName("messageBanner")
        self.setStyleSheet(
            f"#messageBanner {{ background: {self.COLOURS.get(kind, self.COLOURS['info'])}; border-radius: 6px; }}"
        )
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.setSpacing(3)
        self.messages: list[str] = []
        self.hide()

    def set_messages(self, messages: list[str]) -> None:
        while self._layout.count():
            w = self._layout.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.messages = list(messages)
        for text in messages:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            pic = QLabel()
            pic.setPixmap(icon("warning" if self.kind == "warning" else self.kind).pixmap(16, 16))
            pic.setAlignment(Qt.AlignmentFlag.AlignTop)
            label = QLabel(text)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            h.addWidget(pic)
            h.addWidget(label, 1)
            self._layout.addWidget(row)
        self.setVisible(bool(messages))


def add_banners(layout: QBoxLayout, cancel: Callable[[], object], *kinds: str) -> tuple[Any, ...]:
    """A :class:`BusyBanner` whose Cancel calls ``cancel``, then a :class:`MessageBanner` per kind, added to ``layout``.

    Returns the busy banner followed by the message banners, in order.
    """
    busy = BusyBanner()
    busy.cancel_requested.connect(cancel)
    banners = [busy, *(MessageBanner(kind) for kind in kinds)]
    for banner in banners:
        layout.addWidget(banner)
    return tuple(banners)


def share_columns(splitter: QSplitter, stretch: tuple[int, ...], sizes: tuple[int, ...]) -> None:
    """How a splitter's columns share extra width (``stretch``) and their starting widths (``sizes``)."""
    for index, factor in enumerate(stretch):
        splitter.setStretchFactor(index, factor)
    splitter.setSizes(list(sizes))
