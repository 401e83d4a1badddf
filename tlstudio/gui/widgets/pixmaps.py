"""Pixmaps from the raw pixel bytes worker threads hand over (a worker never makes a QImage)."""

from __future__ import annotations

from PySide6.QtGui import QImage, QPixmap


def rgb_pixmap(data: bytes, width: int, height: int) -> QPixmap:
    """A pixmap from raw RGB bytes, three per pixel."""
    image = QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the QImage must not outlive ``data``


def rgba_pixmap(data: bytes, width: int, height: int) -> QPixmap | None:
    """A pixmap from raw RGBA bytes, four per pixel; None when the bytes do not fit the size."""
    image = QImage(width, height, QImage.Format.Format_RGBA8888)
    if len(data) != image.sizeInBytes():
        return None
    # Copied into memory the QImage owns: a QImage wrapping a Python buffer is fragile.
    memoryview(image.bits())[:] = data
    return QPixmap.fromImage(image)
