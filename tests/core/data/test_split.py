"""The train/val/test split: the folder's own split when present, else deterministic and stratified."""

from __future__ import annotations

import pytest

from tlstudio.core.config import SplitConfig
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.data.split import SplitError, split_files, split_to_paths, stratified_split


def test_stratified_split_is_deterministic_and_keeps_class_proportions(image_folder):
    root = image_folder({"cats": 20, "dogs": 10, "owls": 5})
    scan = scan_dataset(root)
    parts = split_files(scan, SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=7))
    again = split_files(scan_dataset(root), SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=7))
    assert split_to_paths(parts) == split_to_paths(again)

    def count(name, cls):
        return sum(1 for r in parts[name] if r.class_name == cls)

    assert (count("val", "cats"), count("test", "cats"), count("train", "cats")) == (4, 4, 12)
    assert (count("val", "dogs"), count("test", "dogs"), count("train", "dogs")) == (2, 2, 6)
    assert (count("val", "owls"), count("test", "owls"), count("train", "owls")) == (1, 1, 3)
    every = [r.path for s in parts.values() for r in s]
    assert len(every) == len(set(every)) == 35

    other = split_files(scan, SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=8))
    assert split_to_paths(other) != split_to_paths(parts)


def test_split_does_not_depend_on_listing_order(image_folder):
    scan = scan_dataset(image_folder({"a": 9, "b": 9}))
    usable = scan.usable()
    forward = stratified_split(usable, 0.3, 0.0, seed=3)
    backward = stratified_split(list(reversed(usable)), 0.3, 0.0, seed=3)
    assert [r.path for r in forward["val"]] == [r.path for r in backward["val"]]


def test_presplit_folder_keeps_its_own_split(image_folder):
    root = image_folder({"a": 4, "b": 3}, splits=("train", "val", "test"))
    parts = split_files(scan_dataset(root), SplitConfig(val_fraction=0.5))
    assert {r.path.split("/")[0] for r in parts["train"]} == {"train"}
    assert len(parts["train"]) == 7 and len(parts["val"]) == 7 and len(parts["test"]) == 7


def test_presplit_without_val_draws_validation_from_train(image_folder):
    root = image_folder({"a": 10, "b": 10}, splits=("train",))
    parts = split_files(scan_dataset(root), SplitConfig(val_fraction=0.2))
    assert len(parts["val"]) == 4 and len(parts["train"]) == 16 and not parts["test"]


def test_a_single_class_is_refused(image_folder):
    with pytest.raises(SplitError, match="two classes"):
        split_files(scan_dataset(image_folder({"only": 6})), SplitConfig())


def test_train_and_val_with_different_classes_are_refused_naming_the_difference(image_folder, make_image):
    root = image_folder({"cats": 6, "dogs": 6}, splits=("train",))
    for i, name in enumerate(["cats", "Dogs", "owls"]):
        make_image(root / "val" / name / f"v{i}.png", pattern=60 + i)
    with pytest.raises(SplitError) as info:
        split_files(scan_dataset(root), SplitConfig())
    message = str(info.value)
    assert "only in train/: 'dogs'" in message and "only in val/: 'Dogs', 'owls'" in message
    assert "upper/lower case: 'dogs' vs 'Dogs'" in message and "\n" not in message


def test_test_split_may_lack_a_class_but_not_add_one(image_folder, make_image):
    root = image_folder({"cats": 6, "dogs": 6}, splits=("train", "val"))
    make_image(root / "test" / "cats" / "t.png", pattern=90)
    parts = split_files(scan_dataset(root), SplitConfig())
    assert {r.class_name for r in parts["test"]} == {"cats"}
    make_image(root / "test" / "owls" / "t.png", pattern=91)
    with pytest.raises(SplitError, match="only in test/: 'owls'"):
        split_files(scan_dataset(root), SplitConfig())


def test_automatic_validation_share_comes_from_the_smallest_class(image_folder):
    from tlstudio.core.data.split import resolve_val_fraction

    scan = scan_dataset(image_folder({"cats": 12, "dogs": 30}))
    auto = SplitConfig(val_fraction=None, seed=1)
    assert resolve_val_fraction(scan, auto) == 0.3
    parts = split_files(scan, auto)
    val = {c: sum(1 for r in parts["val"] if r.class_name == c) for c in ("cats", "dogs")}
    assert val == {"cats": 4, "dogs": 9}  # round(12 * 0.3), round(30 * 0.3)
    assert resolve_val_fraction(scan, SplitConfig(val_fraction=0.1)) == 0.1
    from tlstudio.core.config import TrainConfig

    TrainConfig(split=auto).validate()  # automatic is a valid setting
