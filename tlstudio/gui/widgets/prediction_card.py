"""One tested image on the Test page: thumbnail, top-k labels with probability bars, a Grad-CAM toggle."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.widgets.pixmaps import pil_to_qimage as pil_to_qimage  # re-exported
from tlstudio.gui.widgets.pixmaps import to_pixmap as _to_pixmap

CARD_WIDTH = 236
IMAGE_SIZE = 200
BAR_COLOUR = QColor(52, 120, 198)
TOP_BAR_COLOUR = QColor(38, 150, 90)


def qimage_to_array(image: QImage):
    """A (h, w, 3) uint8 numpy array of a QImage (e.g. one pasted from the clipboard)."""
    import numpy as np

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


class ProbabilityBar(QWidget):
    """A label with a horizontal bar whose length is the probability, and the percentage at the end."""

    def __init__(self, label: str, probability: float, highlight: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.label = label
        self.probability = float(probability)
        self._colour = TOP_BAR_COLOUR if highlight else BAR_COLOUR
        self.setMinimumHeight(20)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"{label}: {probability:.2%}")

    def sizeHint(self) -> QSize:
        return QSize(200, 20)

    def text(self) -> str:
        return f"{self.label}  {self.probability:.1%}"

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 2, -1, -2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().alternateBase())
        painter.drawRoundedRect(rect, 3, 3)
        filled = QRect(rect)
        filled.setWidth(max(2, round(rect.width() * min(1.0, max(0.0, self.probability)))))
        fill = QColor(self._colour)
        fill.setAlpha(170)
        painter.setBrush(fill)
        painter.drawRoundedRect(filled, 3, 3)
        painter.setPen(self.palette().windowText().color())
        metrics = painter.fontMetrics()
        pct = f"{self.probability:.1%}"
        text_rect = rect.adjusted(5, 0, -5, 0)
        pct_width = metrics.horizontalAdvance(pct)
        name = metrics.elidedText(self.label, Qt.TextElideMode.ElideRight, text_rect.width() - pct_width - 8)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, pct)
        painter.end()


class PredictionCard(QFrame):
    """Shows one image and what the model thinks it is.

    States: waiting (for the model or the queue), done (top-k bars), failed (the reason in red).
    Grad-CAM is computed on demand: ``gradcam_toggled(item_id, True)`` asks the page for it, and
    :meth:`set_gradcam` shows it.
    """

    gradcam_toggled = Signal(int, bool)
    close_requested = Signal(int)

    def __init__(self, item_id: int, title: str, source=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item_id = item_id
        self.title = title
        self.source = source  # path or array, kept to compute Grad-CAM later
        self.prediction = None
        self.error: str | None = None
        self._thumbnail: QPixmap | None = None
        self._overlay: QPixmap | None = None
        self._gradcam_label = ""

        self.setObjectName("predictionCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(CARD_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)

        head = QHBoxLayout()
        self.title_label = QLabel()
        self.title_label.setToolTip(str(source) if isinstance(source, str | Path) else title)
        self.title_label.setText(
            self.title_label.fontMetrics().elidedText(title, Qt.TextElideMode.ElideMiddle, CARD_WIDTH - 50)
        )
        head.addWidget(self.title_label, 1)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Remove this image")
        self.close_button.clicked.connect(self._on_close)
        head.addWidget(self.close_button)
        layout.addLayout(head)

        self.image_label = QLabel()
        self.image_label.setFixedSize(IMAGE_SIZE, IMAGE_SIZE)
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setStyleSheet("background: palette(base); border-radius: 3px;")
        layout.addWidget(self.image_label, 0, Qt.AlignmentFlag.AlignHCenter)

        self.gradcam_box = QCheckBox("Grad-CAM")
        self.gradcam_box.setToolTip("Overlay the regions that drove the top prediction")
        self.gradcam_box.setEnabled(False)
        self.gradcam_box.toggled.connect(self._on_gradcam_toggled)
        layout.addWidget(self.gradcam_box)

        self.status_label = QLabel("Waiting…")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: palette(mid);")
        layout.addWidget(self.status_label)

        self.bars_box = QVBoxLayout()
        self.bars_box.setSpacing(2)
        layout.addLayout(self.bars_box)
        self.bars: list[ProbabilityBar] = []
        self.model_label = QLabel()  # which model answered: a card never shows another model's answer unmarked
        self.model_label.setStyleSheet("color: palette(mid);")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        self.model_name = ""
        self.threshold = 0.0  # below it the card says "Not sure" above the bars (set by the page)

    def set_model(self, name: str) -> None:
        """Forget any answer and wait for the model called ``name`` (the page asks it again)."""
        self.model_name = name
        self.model_label.setText(f"Model: {name}")
        self.prediction, self.error, self._overlay, self._gradcam_label = None, None, None, ""
        for bar in self.bars:
            bar.hide()  # at once: deleteLater waits for the event loop
            bar.deleteLater()
        self.bars = []
        self.gradcam_box.blockSignals(True)
        self.gradcam_box.setChecked(False)
        self.gradcam_box.blockSignals(False)
        self.gradcam_box.setText("Grad-CAM")
        self.gradcam_box.setEnabled(False)
        self.status_label.setStyleSheet("color: palette(mid);")
        self.status_label.show()
        self.status_label.setText("Waiting…")
        self._show_image()

    # --- filled in by the page ----------------------------------------------------------------------

    def set_waiting(self, text: str) -> None:
        if self.prediction is None and self.error is None:
            self.status_label.setText(text)

    def set_thumbnail(self, image) -> None:
        """``image``: a PIL image, QImage or QPixmap."""
        if image is None:
            return
        pixmap = _to_pixmap(image)
        self._thumbnail = pixmap
        self._show_image()

    def set_prediction(self, prediction, thumbnail=None) -> None:
        """Show a core ``Prediction`` (top-k bars), or its ``error`` when the image could not be used."""
        self.prediction = prediction
        if thumbnail is not None:
            self.set_thumbnail(thumbnail)
        for bar in self.bars:
            bar.hide()  # at once: deleteLater waits for the event loop
            bar.deleteLater()
        self.bars = []
        if getattr(prediction, "error", None):
            self.set_error(prediction.error)
            return
        self.error = None
        self.status_label.hide()
        for rank, (label, prob) in enumerate(prediction.top):
            bar = ProbabilityBar(str(label), float(prob), highlight=rank == 0)
            self.bars_box.addWidget(bar)
            self.bars.append(bar)
        self.gradcam_box.setEnabled(True)
        self._show_verdict()

    def set_threshold(self, threshold: float) -> None:
        """Say "Not sure" when the best class is below ``threshold`` (0: never); applies to a shown answer too."""
        self.threshold = float(threshold or 0.0)
        if self.prediction is not None and self.error is None:
            self._show_verdict()

    def is_not_sure(self) -> bool:
        top = getattr(self.prediction, "top", None)
        return bool(self.error is None and top and top[0][1] < self.threshold)

    def _show_verdict(self) -> None:
        # The card decides from the probabilities, not the answer's label, so moving the page's
        # threshold relabels every card at once without asking the model again.
        if not self.is_not_sure():
            self.status_label.hide()
            return
        label, prob = self.prediction.top[0]
        self.status_label.setText(f"Not sure. Best guess: {label} ({prob:.0%})")
        self.status_label.setToolTip(f"The best class is under the {self.threshold:.0%} threshold")
        self.status_label.setStyleSheet("color: #b9770e; font-weight: bold;")
        self.status_label.show()

    def set_error(self, message: str) -> None:
        self.error = message
        self.status_label.show()
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #c0392b;")
        self.gradcam_box.setEnabled(False)
        if self._thumbnail is None:
            self.image_label.setText("Cannot show\nthis file")

    def set_gradcam(self, overlay, label: str = "") -> None:
        self._overlay = _to_pixmap(overlay)
        self._gradcam_label = label
        self.gradcam_box.setText(f"Grad-CAM ({label})" if label else "Grad-CAM")
        self._show_image()

    def gradcam_failed(self, message: str) -> None:
        self.gradcam_box.blockSignals(True)
        self.gradcam_box.setChecked(False)
        self.gradcam_box.blockSignals(False)
        self.gradcam_box.setToolTip(f"Grad-CAM is not available: {message}")
        self.gradcam_box.setText("Grad-CAM (not available)")
        self.gradcam_box.setEnabled(False)
        self._show_image()

    # --- queries ------------------------------------------------------------------------------------

    def top_labels(self) -> list[tuple[str, float]]:
        return [(b.label, b.probability) for b in self.bars]

    def has_gradcam(self) -> bool:
        return self._overlay is not None

    def showing_gradcam(self) -> bool:
        return self.gradcam_box.isChecked() and self._overlay is not None

    def set_gradcam_checked(self, on: bool) -> None:
        if self.gradcam_box.isEnabled():
            self.gradcam_box.setChecked(on)

    # --- internals ----------------------------------------------------------------------------------

    def _on_gradcam_toggled(self, on: bool) -> None:
        if on and self._overlay is None:
            self.gradcam_box.setText("Grad-CAM (computing…)")
        self._show_image()
        self.gradcam_toggled.emit(self.item_id, on)

    def _on_close(self) -> None:
        self.close_requested.emit(self.item_id)

    def _show_image(self) -> None:
        pixmap = (
            self._overlay if (self.gradcam_box.isChecked() and self._overlay is not None) else self._thumbnail
        )
        if pixmap is None:
            return
        self.image_label.setPixmap(
            pixmap.scaled(
                IMAGE_SIZE,
                IMAGE_SIZE,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )


class FlowLayout(QLayout):
    """Lays widgets out left to right, wrapping to a new row when the width is used up (cards)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 8) -> None:
        super().__init__(parent)
        self._items: list = []
        self._spacing = spacing
        self.setContentsMargins(8, 8, 8, 8)

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_height = area.x(), area.y(), 0
        for item in self._items:
            if item.isEmpty():  # a hidden widget takes no place
                continue
            hint = item.sizeHint()
            if x + hint.width() > area.right() + 1 and row_height > 0:
                x = area.x()
                y += row_height + self._spacing
                row_height = 0
            if apply:
                item.setGeometry(QRect(x, y, hint.width(), hint.height()))
            x += hint.width() + self._spacing
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y() + m.bottom()
