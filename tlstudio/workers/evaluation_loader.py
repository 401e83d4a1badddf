"""Background helpers of the Evaluate and Train pages: thumbnails and augmented previews.

Both decode images through :mod:`tlstudio.core.data.imageio` off the GUI thread and emit raw RGB bytes
(``bytes, width, height``); the GUI turns them into pixmaps. A worker never touches a widget.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.workers.base import Worker


def _rgb_bytes(img) -> tuple[bytes, int, int]:
    img = img.convert("RGB")
    return img.tobytes(), img.width, img.height


class ThumbnailWorker(Worker):
    """Makes a thumbnail per path; emits ``thumbnail_ready(generation, index, rgb_bytes, w, h)``.

    ``generation`` is handed back unchanged so that a gallery can ignore thumbnails of a list it
    has already replaced. A file that cannot be read emits ``thumbnail_failed(generation, index, reason)``.
    """

    thumbnail_ready = Signal(int, int, bytes, int, int)
    thumbnail_failed = Signal(int, int, str)

    def __init__(self, paths: list[str], size: int = 128, generation: int = 0) -> None:
        super().__init__()
        self.paths = list(paths)
        self.size = size
        self.generation = generation

    def work(self) -> int:
        from tlstudio.core.data.imageio import make_thumbnail

        made = 0
        for i, path in enumerate(self.paths):
            if self.cancel_event.is_set():
                raise Cancelled()
            try:
                data, w, h = _rgb_bytes(make_thumbnail(path, self.size))
            except (TlstudioError, OSError, ValueError) as exc:
                self.thumbnail_failed.emit(self.generation, i, str(exc) or type(exc).__name__)
                continue
            self.thumbnail_ready.emit(self.generation, i, data, w, h)
            made += 1
            self.report(i + 1, len(self.paths))
        return made


def augment_image(img, augment: Any, rng: random.Random):
    """Pillow version of the training augmentation (same knobs as :class:`~tlstudio.core.config.AugmentConfig`).

    Mirrors the Keras layers the pipeline uses: horizontal flip, rotation by up to
    ``rotation * 360`` degrees, zoom and translation by up to the given fractions (the uncovered
    border filled by reflection, as ``fill_mode="reflect"`` does), contrast and brightness by up
    to the given factors. Only used for the preview, so it need not match pixel for pixel; it
    shows what kind of variation the model will see.
    """
    import numpy as np
    from PIL import Image, ImageEnhance

    w, h = img.size
    rotation = float(getattr(augment, "rotation", 0.0) or 0.0)
    zoom = float(getattr(augment, "zoom", 0.0) or 0.0)
    translation = float(getattr(augment, "translation", 0.0) or 0.0)
    if getattr(augment, "flip", False) and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rotation > 0 or zoom > 0 or translation > 0:
        m = max(w, h) // 2
        padded = Image.fromarray(np.pad(np.asarray(img.convert("RGB")), ((m, m), (m, m), (0, 0)), mode="reflect"))
        if rotation > 0:
            padded = padded.rotate(rng.uniform(-rotation, rotation) * 360.0, resample=Image.Resampling.BILINEAR)
        scale = 1.0 + rng.uniform(-zoom, zoom) if zoom > 0 else 1.0
        cw, ch = w / scale, h / scale
        cx = m + w / 2 + (rng.uniform(-translation, translation) * w if translation > 0 else 0.0)
        cy = m + h / 2 + (rng.uniform(-translation, translation) * h if translation > 0 else 0.0)
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        img = padded.transform((w, h), Image.Transform.EXTENT, box, resample=Image.Resampling.BILINEAR)
    contrast = float(getattr(augment, "contrast", 0.0) or 0.0)
    if contrast > 0:
        img = ImageEnhance.Contrast(img).enhance(max(0.0, 1.0 + rng.uniform(-contrast, contrast)))
    brightness = float(getattr(augment, "brightness", 0.0) or 0.0)
    if brightness > 0:
        img = ImageEnhance.Brightness(img).enhance(max(0.0, 1.0 + rng.uniform(-brightness, brightness)))
    return img


class AugmentPreviewWorker(Worker):
    """Loads a few training images and makes ``variants`` augmented copies of each.

    Emits ``preview_ready(generation, rows)`` once: one row per readable path, each a list of
    ``(rgb_bytes, w, h)``, the resized original first and then the augmented copies.
    """

    preview_ready = Signal(int, object)

    def __init__(self, paths: list[str], augment: Any, *, size: int = 96, variants: int = 3,
                 resize_policy: str = "stretch", generation: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.paths = list(paths)
        self.augment = augment
        self.size = size
        self.variants = variants
        self.resize_policy = resize_policy
        self.generation = generation
        self.seed = seed

    def work(self) -> int:
        from tlstudio.core.data.imageio import open_image, resize_image

        rng = random.Random(self.seed)
        rows = []
        for path in self.paths:
            if self.cancel_event.is_set():
                raise Cancelled()
            try:
                base = resize_image(open_image(Path(path)), self.size, self.resize_policy)
            except (TlstudioError, OSError, ValueError):
                continue
            row = [_rgb_bytes(base)]
            for _ in range(self.variants):
                row.append(_rgb_bytes(augment_image(base, self.augment, rng)))
            rows.append(row)
        self.preview_ready.emit(self.generation, rows)
        return len(rows)
