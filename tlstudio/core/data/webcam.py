"""Webcam capture into a class: frames in, JPEG files in the class folder out, one undoable edit per burst.

The capture path does not depend on a camera: :class:`Capture` takes frames (``numpy`` arrays,
RGB ``(h, w, 3)`` or grey ``(h, w)``, uint8) from anywhere, so tests and the GUI feed it the same
way. Frames are written as JPEG into the dataset's hidden state folder while the button is held,
and :meth:`Capture.commit` moves the burst into the class as one edit of the dataset journal (so
Edit > Undo takes the whole burst back out, into the hidden folder, deleting nothing).

The camera itself is optional: :class:`OpenCVCamera` uses OpenCV (``opencv-python-headless``, the
``tlstudio[camera]`` extra, about 50 MB). Qt Multimedia would need PySide6-Addons (several hundred
MB on top of PySide6-Essentials) for the same frames. Without OpenCV, :func:`camera_support` says
how to get it, and :func:`list_cameras` is empty.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.data import curate
from tlstudio.core.data.edit_journal import Emit, ignore, new_op, rel_path, run_op, state_dir
from tlstudio.core.errors import Cancelled, TlstudioError

CAPTURE_DIR = "capture"
CAMERA_HINT = "Webcam capture needs OpenCV: pip install 'tlstudio[camera]'"
JPEG_QUALITY = 90


class CameraError(TlstudioError):
    """A camera that cannot be opened or read."""


def as_rgb(frame: Any) -> np.ndarray:
    """A frame as a contiguous uint8 ``(h, w, 3)`` RGB array; a clear error for anything else."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise CameraError(f"a frame must hold 8-bit pixels, not {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise CameraError(f"a frame must be an image (height, width, 3), not shape {arr.shape}")
    return np.ascontiguousarray(arr)


class Capture:
    """One burst of webcam frames for ``class_name`` of the dataset ``root``.

    Parameters
    ----------
    root
        The dataset folder.
    class_name
        The class the frames go to (created when missing).
    split
        Split folder of a pre-split dataset (default ``train`` when it has one).
    quality
        JPEG quality.
    prefix
        Start of the file names (``webcam_<time>_001.jpg``); pasted pictures use ``pasted``.
    """

    def __init__(
        self,
        root: str | Path,
        class_name: str,
        *,
        split: str | None = None,
        quality: int = JPEG_QUALITY,
        prefix: str = "webcam",
    ):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise curate.CurateError(f"dataset folder not found: {self.root}")
        self.class_name = curate.check_class_name(class_name)
        folders = curate.split_folders(self.root)
        self.target = self.root / (split or "train") / self.class_name if folders != [self.root] else self.root / self.class_name
        self.quality = int(quality)
        self.prefix = prefix
        self.staging = state_dir(self.root) / CAPTURE_DIR / uuid.uuid4().hex[:12]
        self.staged: list[Path] = []
        self._stamp = datetime.now().strftime("%Y%m%d-%H%M%S")

    def add(self, frame: Any) -> Path:
        """Save one frame (as JPEG, in the hidden staging folder); returns where it is for now."""
        from PIL import Image

        rgb = as_rgb(frame)
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"{self.prefix}_{self._stamp}_{len(self.staged) + 1:03d}.jpg"
        tmp = path.with_name(f".{path.name}.partial")
        Image.fromarray(rgb).save(tmp, format="JPEG", quality=self.quality)
        os.replace(tmp, path)  # a frame is in the burst whole or not at all
        self.staged.append(path)
        return path

    def commit(self, emit: Emit = ignore) -> dict[str, Any] | None:
        """Move the burst into the class as one undoable edit; returns it (None when nothing was captured)."""
        if not self.staged:
            return None
        taken: set[str] = set()
        moves = [[rel_path(self.root, p), rel_path(self.root, curate.unique_path(self.target, p.name, taken))] for p in self.staged]
        made = [] if self.target.is_dir() else [rel_path(self.root, self.target)]
        verb = "captured" if self.prefix == "webcam" else "added"
        op = new_op("capture", f"{verb} {len(moves)} image(s) into {self.class_name}", moves=moves, made_dirs=made)
        done = run_op(self.root, op, emit)
        self.staged = []
        return done

    def discard(self) -> None:
        """Forget the burst: its staged frames are removed (they never were in the dataset)."""
        for p in self.staged:
            p.unlink(missing_ok=True)
        self.staged = []
        try:
            self.staging.rmdir()
        except OSError:
            pass


def capture_burst(
    frames: Iterable[Any],
    root: str | Path,
    class_name: str,
    *,
    count: int,
    every: int = 1,
    split: str | None = None,
    emit: Emit = ignore,
    cancel: threading.Event | None = None,
) -> dict[str, Any] | None:
    """Take ``count`` frames (every ``every``-th one) from ``frames`` into ``class_name``; one undoable edit.

    ``cancel`` stops early and keeps nothing (raises :class:`~tlstudio.core.errors.Cancelled`).
    """
    if count < 1 or every < 1:
        raise curate.CurateError("a burst needs at least one frame")
    capture = Capture(root, class_name, split=split)
    try:
        for i, frame in enumerate(frames):
            if cancel is not None and cancel.is_set():
                raise Cancelled("the capture was cancelled")
            if i % every == 0:
                capture.add(frame)
                if len(capture.staged) >= count:
                    break
    except BaseException:
        capture.discard()
        raise
    return capture.commit(emit)


# --- cameras (optional: OpenCV) ----------------------------------------------------------------------


def camera_support() -> str | None:
    """None when webcam capture can work here, else a one-line hint saying what to install."""
    import importlib.util

    return None if importlib.util.find_spec("cv2") is not None else CAMERA_HINT


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices of the cameras OpenCV can open (empty without OpenCV or without a camera)."""
    if camera_support() is not None:
        return []
    import cv2

    found = []
    for index in range(max_index):
        cap = cv2.VideoCapture(index)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(index)
        finally:
            cap.release()
    return found


class OpenCVCamera:
    """A webcam read with OpenCV; :meth:`read` returns RGB frames ready for :class:`Capture`."""

    def __init__(self, index: int = 0):
        hint = camera_support()
        if hint is not None:
            raise CameraError(hint)
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraError(f"camera {index} cannot be opened (no camera, or another program is using it)")

    def read(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok:
            raise CameraError("the camera gave no picture")
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)

    def frames(self) -> Iterable[np.ndarray]:
        while True:
            yield self.read()

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> OpenCVCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
