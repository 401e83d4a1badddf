"""Webcam capture by feeding frames through the same code the camera uses (no camera needed)."""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest
from PIL import Image

from tlstudio.core.data import curate, webcam
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.errors import Cancelled


def frames(n, h=48, w=64):
    """Distinct synthetic frames: a gradient whose brightness changes from frame to frame."""
    ramp = np.linspace(0, 200, w, dtype=np.float32)[None, :, None]
    for i in range(n):
        img = np.broadcast_to(ramp, (h, w, 3)).copy()
        img[..., i % 3] += 40
        yield np.clip(img + i, 0, 255).astype(np.uint8)


def test_burst_lands_as_jpegs_in_the_class_and_undo_takes_it_back(tmp_path):
    root = curate.new_dataset(tmp_path / "signs", ["one", "two"])
    op = webcam.capture_burst(frames(10), root, "two", count=3, every=2)
    saved = sorted((root / "two").iterdir())
    assert [p.suffix for p in saved] == [".jpg"] * 3
    sent = list(frames(10))[::2][:3]
    for path, frame in zip(saved, sent, strict=True):
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.size == (64, 48)
            assert np.abs(np.asarray(im, np.float32) - frame).mean() < 4  # the picture that was sent
    assert scan_dataset(root).class_counts() == {"two": 3}  # classes with images
    assert curate.can_undo(root) == "captured 3 image(s) into two"
    curate.undo(root)
    assert list((root / "two").iterdir()) == []
    # Undo deletes nothing: the burst went back to the hidden capture folder.
    assert len([dst for src, dst in op["moves"] if (root / src).is_file()]) == 3


def test_a_new_class_and_unique_names_across_bursts(tmp_path):
    root = curate.new_dataset(tmp_path / "d", ["a"])
    first = webcam.Capture(root, "fresh")
    second = webcam.Capture(root, "fresh")
    for f in frames(2):
        first.add(f)
        second.add(f)
    first.commit()
    second.commit()
    names = sorted(p.name for p in (root / "fresh").iterdir())
    assert len(names) == 4 and len(set(names)) == 4


def test_grey_and_rgba_frames_and_bad_frames(tmp_path):
    root = curate.new_dataset(tmp_path / "d", ["a"])
    cap = webcam.Capture(root, "a")
    cap.add(np.full((20, 30), 128, np.uint8))
    cap.add(np.full((20, 30, 4), 90, np.uint8))
    with pytest.raises(webcam.CameraError, match="8-bit"):
        cap.add(np.zeros((20, 30, 3), np.float32))
    with pytest.raises(webcam.CameraError, match="shape"):
        cap.add(np.zeros((20, 30, 2), np.uint8))
    cap.commit()
    assert len(list((root / "a").iterdir())) == 2


def test_cancel_keeps_nothing(tmp_path):
    root = curate.new_dataset(tmp_path / "d", ["a"])
    cancel = threading.Event()

    def feed():
        for i, f in enumerate(frames(10)):
            if i == 3:
                cancel.set()
            yield f

    with pytest.raises(Cancelled):
        webcam.capture_burst(feed(), root, "a", count=8, cancel=cancel)
    assert list((root / "a").iterdir()) == []
    assert not list((curate.state_dir(root) / webcam.CAPTURE_DIR).rglob("*.jpg"))
    assert curate.can_undo(root) is None


@pytest.mark.skipif(importlib.util.find_spec("cv2") is not None, reason="OpenCV is installed here")
def test_without_opencv_the_camera_says_how_to_get_it():
    assert webcam.camera_support() == webcam.CAMERA_HINT
    assert "tlstudio[camera]" in webcam.CAMERA_HINT
    assert webcam.list_cameras() == []
    with pytest.raises(webcam.CameraError, match=r"tlstudio\[camera\]"):
        webcam.OpenCVCamera(0)
