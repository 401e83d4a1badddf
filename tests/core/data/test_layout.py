"""The dataset layout: what a name alone decides, which folders are classes and splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlstudio.core.data.layout import (
    REASON_CLUTTER,
    REASON_HIDDEN,
    REASON_HIDDEN_FOLDER,
    REASON_NO_CLASS,
    STATUS_IGNORED,
    STATUS_SKIPPED,
    Walker,
    classify_name,
    examples,
    is_image_name,
)


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        (".DS_Store", 10, (STATUS_IGNORED, REASON_CLUTTER)),
        ("._cat.jpg", 10, (STATUS_IGNORED, REASON_CLUTTER)),
        ("Thumbs.db", 10, (STATUS_IGNORED, REASON_CLUTTER)),
        (".secret.jpg", 10, (STATUS_IGNORED, REASON_HIDDEN)),
        ("notes.txt", 10, (STATUS_IGNORED, "not an image file (.txt)")),
        ("empty.jpg", 0, (STATUS_SKIPPED, "empty file (0 bytes)")),
        ("cat.JPG", 10, None),
        ("LICENSE", 10, None),
    ],
)
def test_classify_name(name, size, expected):
    assert classify_name(name, size) == expected


def test_unsupported_formats_are_skipped_with_advice():
    status, reason = classify_name("IMG_1.HEIC", 100)
    assert status == STATUS_SKIPPED and "HEIC" in reason and "convert to JPEG or PNG" in reason


def test_image_names_and_examples():
    assert is_image_name("a/b/C.PNG") and not is_image_name("a/readme.md")
    assert examples(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert examples(["a"]) == "a"


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_flat_layout_walk(tmp_path):
    _touch(tmp_path / "cats" / "a.jpg")
    _touch(tmp_path / "cats" / "nested" / "b.jpg")
    _touch(tmp_path / "dogs" / ".hidden" / "c.jpg")
    _touch(tmp_path / "loose.jpg")
    walker = Walker(tmp_path, None)
    assert walker.walk() is False
    by_rel = {e.rel: e for e in walker.entries}
    assert by_rel["cats/nested/b.jpg"].class_name == "cats"
    assert by_rel["dogs/.hidden/c.jpg"].reason == REASON_HIDDEN_FOLDER
    assert by_rel["loose.jpg"].reason == REASON_NO_CLASS
    assert sorted(walker.class_folders) == [(None, "cats"), (None, "dogs")]


def test_presplit_walk_reads_validation_as_val(tmp_path):
    _touch(tmp_path / "train" / "cats" / "a.jpg")
    _touch(tmp_path / "Validation" / "cats" / "b.jpg")
    _touch(tmp_path / "extra" / "c.jpg")
    walker = Walker(tmp_path, None)
    assert walker.walk() is True
    splits = {e.rel: e.split for e in walker.entries}
    assert splits["train/cats/a.jpg"] == "train" and splits["Validation/cats/b.jpg"] == "val"
    assert any("extra/" in w for w in walker.warnings)
