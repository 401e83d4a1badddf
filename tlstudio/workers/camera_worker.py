"""Reads webcam frames on a worker thread (OpenCV) and hands them to the GUI as RGB bytes."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal

from tlstudio.workers.base import Worker


class CameraWorker(Worker):
    """Emits ``frame_ready(rgb_bytes, width, height)`` about ``fps`` times a second until cancelled."""

    frame_ready = Signal(bytes, int, int)

    def __init__(self, index: int = 0, fps: float = 15.0) -> None:
        super().__init__()
        self.index = index
        self.period = 1.0 / max(1.0, fps)

    def work(self) -> int:
        from tlstudio.core.data.webcam import OpenCVCamera

        frames = 0
        with OpenCVCamera(self.index) as camera:
            while not self.cancel_event.is_set():
                started = time.monotonic()
                frame = camera.read()
                self.frame_ready.emit(frame.tobytes(), int(frame.shape[1]), int(frame.shape[0]))
                frames += 1
                self.cancel_event.wait(max(0.0, self.period - (time.monotonic() - started)))
        return frames
