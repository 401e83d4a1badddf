"""Augmentation: which Keras layers a configuration asks for, and that they change training batches only."""

from __future__ import annotations

import numpy as np

from tlstudio.core.config import AugmentConfig, TrainConfig
from tlstudio.core.data.augment import make_augmenter
from tlstudio.core.data.pipeline import FileSet, make_dataset


def _fileset(root, names, labels):
    return FileSet([str(root / n) for n in names], list(names), np.asarray(labels, np.int32))


def test_layers_follow_the_configuration():
    assert make_augmenter(TrainConfig(), 1) is None  # off by default
    config = TrainConfig(augment=AugmentConfig(enabled=True, rotation=0, zoom=0.2, translation=0, contrast=0))
    aug = make_augmenter(config, 1)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomZoom", "RandomBrightness"]
    nothing = AugmentConfig(enabled=True, flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0)
    assert make_augmenter(TrainConfig(augment=nothing), 1) is None


def test_augmentation_changes_training_images_within_range(tmp_path, make_image):
    config = TrainConfig()
    assert make_augmenter(config, 1) is None
    config.augment.enabled = True
    aug = make_augmenter(config, 1)
    names = []
    for i in range(4):
        make_image(tmp_path / f"a{i}.png", size=(32, 32), pattern=i)
        names.append(f"a{i}.png")
    files = _fileset(tmp_path, names, [0, 1, 0, 1])
    plain = next(iter(make_dataset(files, image_size=32, batch_size=4)))[0].numpy()
    augmented = next(iter(make_dataset(files, image_size=32, batch_size=4, augment=aug)))[0].numpy()
    assert augmented.shape == plain.shape
    assert not np.allclose(plain, augmented)
    assert augmented.min() >= 0 and augmented.max() <= 255.5
