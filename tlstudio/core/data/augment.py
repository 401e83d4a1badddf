"""Augmentation: random flips, rotations, zooms, shifts, contrast and brightness on training batches.

The layers work on raw 0-255 RGB batches inside the input pipeline and are never saved inside
``model.keras``, so an exported model sees plain images.
"""

from __future__ import annotations

from typing import Any


def make_augmenter(config: Any, seed: int) -> Any:
    """The Keras preprocessing layers of ``config.augment`` as one Sequential, or None when off.

    The layers work on raw 0-255 RGB batches. They are applied in the input pipeline, never
    saved inside ``model.keras``.
    """
    aug = config.augment
    if not aug.enabled:
        return None
    import keras

    layers: list[Any] = []
    if aug.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.rotation, fill_mode="reflect", seed=seed + 1))
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.zoom, fill_mode="reflect", seed=seed + 2))
    if aug.translation:
        layers.append(
            keras.layers.RandomTranslation(aug.translation, aug.translation, fill_mode="reflect", seed=seed + 3)
        )
    if aug.contrast:
        layers.append(keras.layers.RandomContrast(aug.contrast, value_range=(0, 255), seed=seed + 4))
    if aug.brightness:
        layers.append(keras.layers.RandomBrightness(aug.brightness, value_range=(0, 255), seed=seed + 5))
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")
