"""Augmented previews for the Train page: a few training images and random variations of each.

Images are decoded through :mod:`tlstudio.core.data.imageio` off the GUI thread and handed over as raw
RGB bytes (``bytes, width, height``); the GUI turns them into pixmaps.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from tlstudio.core.errors import Cancelled, TlstudioError


def _rgb_bytes(img) -> tuple[bytes, int, int]:
    img = img.convert("RGB")
    return img.tobytes(), img.width, img.height


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


def augment_previews(paths: list[str], augment: Any, *, size: int = 96, variants: int = 3,
                     resize_policy: str = "stretch", seed: int = 0,
                     cancel: threading.Event | None = None) -> list[list[tuple[bytes, int, int]]]:
    """One row per readable path: the resized original, then ``variants`` augmented copies, as RGB bytes.

    Run it with :func:`~tlstudio.workers.base.create_worker`; unreadable files are left out.
    """
    from tlstudio.core.data.imageio import open_image, resize_image

    rng = random.Random(seed)
    rows = []
    for path in paths:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            base = resize_image(open_image(Path(path)), size, resize_policy)
        except (TlstudioError, OSError, ValueError):
            continue
        row = [_rgb_bytes(base)]
        for _ in range(variants):
            row.append(_rgb_bytes(augment_image(base, augment, rng)))
        rows.append(row)
    return rows
