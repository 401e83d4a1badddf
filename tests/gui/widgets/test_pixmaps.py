"""Pictures into Qt: every conversion keeps the pixels and owns its memory."""

from __future__ import annotations

import gc

import pytest
from PIL import Image

from tlstudio.gui.widgets.pixmaps import pil_to_qimage, raw_to_qimage, rgb_pixmap, to_pixmap


def test_pil_image_of_any_mode_keeps_its_pixels(qapp):
    img = Image.new("RGB", (5, 3), (200, 10, 30))
    img.putpixel((4, 2), (1, 2, 3))
    qimg = pil_to_qimage(img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4))
    assert (qimg.width(), qimg.height()) == (5, 3)
    assert qimg.pixelColor(0, 0).getRgb()[:3] == (200, 10, 30)
    assert qimg.pixelColor(4, 2).getRgb()[:3] == (1, 2, 3)


def test_raw_bytes_are_copied_so_the_buffer_may_go(qapp):
    data = bytearray([255, 0, 0] * 4 + [0, 0, 255] * 4)  # 4x2 RGB: red row, blue row
    qimg = raw_to_qimage(bytes(data), 4, 2)
    del data
    gc.collect()
    assert qimg.pixelColor(3, 0).getRgb()[:3] == (255, 0, 0)
    assert qimg.pixelColor(0, 1).getRgb()[:3] == (0, 0, 255)
    rgba = rgb_pixmap(bytes([0, 255, 0, 255] * 6), 3, 2, "RGBA").toImage()
    assert rgba.pixelColor(2, 1).getRgb() == (0, 255, 0, 255)


def test_wrong_byte_count_is_refused(qapp):
    with pytest.raises(ValueError, match="do not make a 4x2 RGB image"):
        raw_to_qimage(b"\0" * 10, 4, 2)


def test_to_pixmap_accepts_pil_qimage_and_qpixmap(qapp):
    img = Image.new("L", (6, 4), 128)
    pix = to_pixmap(img)
    assert (pix.width(), pix.height()) == (6, 4)
    assert to_pixmap(pix) is pix
    assert to_pixmap(pix.toImage()).width() == 6
