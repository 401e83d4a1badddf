"""The health report: the warnings a person reads before training, and leakage first."""

from __future__ import annotations

import shutil

from tlstudio.core.data.health import IMBALANCE_RATIO, LEAKAGE_PREFIX, MIN_IMAGES_PER_CLASS
from tlstudio.core.data.scan import scan_dataset


def test_balanced_data_has_no_warnings(image_folder):
    assert scan_dataset(image_folder({"a": 6, "b": 6})).warnings == []


def test_few_images_and_imbalance(image_folder):
    few = MIN_IMAGES_PER_CLASS - 1
    many = int(few * IMBALANCE_RATIO) + 1
    warnings = scan_dataset(image_folder({"big": many, "small": few})).warnings
    assert any("fewer than" in w and "'small' (4)" in w for w in warnings)
    assert any("Strong class imbalance" in w and "'big'" in w for w in warnings)


def test_leakage_between_splits_leads_the_list(image_folder, make_image, tmp_path):
    root = image_folder({"a": 6, "b": 6, "c": 2}, splits=("train",))
    for i, name in enumerate(["a", "b"]):
        make_image(root / "val" / name / f"v{i}.png", color=(10, 20 * i, 30), pattern=50 + i)
    shutil.copy(root / "train" / "a" / "a_train_000.png", root / "val" / "a" / "copy.png")
    warnings = scan_dataset(root).warnings
    assert len(warnings) >= 3  # few images of 'c', 'c' missing from val, and the leak
    assert warnings[0].startswith(LEAKAGE_PREFIX) and "val/a/copy.png" in warnings[0]
    assert not any(w.startswith(LEAKAGE_PREFIX) for w in warnings[1:])


def test_one_class_is_not_enough(image_folder):
    warnings = scan_dataset(image_folder({"only": 6})).warnings
    assert any("Only one class ('only')" in w for w in warnings)
