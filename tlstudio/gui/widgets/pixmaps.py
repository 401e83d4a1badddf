"""Pictures into Qt: Pillow images and raw pixel bytes (as worker threads hand them over) to QImage/QPixmap.

Every conversion copies the pixels into memory Qt owns: a QImage that wraps a Python buffer
breaks as soon as the buffer is freed.
"""

from __future__ import annotations

from PySide6.QtGui import QImage, QPixmap

_FORMATS = {"RGB": (QImage.Format.Format_RGB888, 3), "RGBA": (QImage.Format.Format_RGBA8888, 4)}


def raw_to_qimage(data: bytes, width: int, height: int, mode: str = "RGB") -> QImage:
    """A QImage owning a copy of raw ``RGB`` or ``RGBA`` bytes (rows packed, no padding)."""
    fmt, channels = _FORMATS[mode]
    if len(data) != width * height * channels:
        raise ValueError(f"{len(data)} bytes do not make a {width}x{height} {mode} image")
    return QImage(data, width, height, channels * width, fmt).copy()


def rgb_pixmap(data: bytes, width: int, height: int, mode: str = "RGB") -> QPixmap:
    """A pixmap from raw ``RGB`` (or ``RGBA``) bytes."""
    return QPixmap.fromImage(raw_to_qimage(data, width, height, mode))


def pil_to_qimage(img) -> QImage:
    """A deep-copied QImage of a PIL image (any mode)."""
    rgba = img.convert("RGBA")
    return raw_to_qimage(rgba.tobytes("raw", "RGBA"), rgba.width, rgba.height, "RGBA")


def to_pixmap(image) -> QPixmap:
    """A QPixmap of a PIL image, a QImage or a QPixmap."""
    if isinstance(image, QPixmap):
        return image
    if isinstance(image, QImage):
        return QPixmap.fromImage(image)
    return QPixmap.fromImage(pil_to_qimage(image))


def rgba_pixmap(data: bytes, width: int, height: int) -> QPixmap | None:
    """A pixmap from raw RGBA bytes, four per pixel; None when the bytes do not fit the size."""
    try:
        return rgb_pixmap(data, width, height, "RGBA")
    except ValueError:
        return None
