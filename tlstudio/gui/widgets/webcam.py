"""Webcam capture into a class: pick a camera, see it live, hold the button to capture a burst.

Frames arrive from a :class:`~tlstudio.workers.camera_worker.CameraWorker` (OpenCV, the optional
``tlstudio[camera]`` extra). While the button is held, one frame every ``interval_ms`` goes into a
:class:`~tlstudio.core.data.webcam.Capture`; on release the burst lands in the class as one edit
of the :class:`~tlstudio.gui.curation.DatasetEditor` (undoable). :meth:`WebcamPanel.feed_frame` is
the one entry for frames, so tests feed it directly, no camera needed. Without OpenCV the panel is
one line saying how to get it; without a camera it says so.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.data import webcam
from tlstudio.core.errors import TlstudioError
from tlstudio.gui.curation import DatasetEditor
from tlstudio.gui.widgets.common import hint
from tlstudio.workers.base import registry, start_worker

PREVIEW_WIDTH = 320


class WebcamPanel(QWidget):
    """Live preview and hold-to-capture into the class chosen in ``class_combo``."""

    captured = Signal(int)  # pictures added by the last burst

    def __init__(self, editor: DatasetEditor, parent: QWidget | None = None, *, interval_ms: int = 150) -> None:
        super().__init__(parent)
        self.editor = editor
        self.interval = interval_ms / 1000.0
        self._capture: webcam.Capture | None = None
        self._last_saved = 0.0
        self.last_frame: np.ndarray | None = None

        self.hint_label = hint("")
        self.camera_combo = QComboBox()
        self.find_button = QPushButton("Find cameras")
        self.find_button.clicked.connect(self.find_cameras)
        self.start_button = QPushButton("Start")
        self.start_button.setCheckable(True)
        self.start_button.toggled.connect(self._toggle_camera)
        self.preview = QLabel("Camera off")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(PREVIEW_WIDTH, PREVIEW_WIDTH * 3 // 4)
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)
        self.capture_button = QPushButton("Hold to capture")
        self.capture_button.setToolTip("Pictures are taken while the button is held down")
        self.capture_button.pressed.connect(self.start_capture)
        self.capture_button.released.connect(self.stop_capture)
        self.count_label = QLabel("")

        row = QHBoxLayout()
        row.addWidget(QLabel("Camera"))
        row.addWidget(self.camera_combo, 1)
        row.addWidget(self.find_button)
        row.addWidget(self.start_button)
        shoot = QHBoxLayout()
        shoot.addWidget(QLabel("Into class"))
        shoot.addWidget(self.class_combo, 1)
        shoot.addWidget(self.capture_button)
        shoot.addWidget(self.count_label)
        self.controls = QWidget()
        cv = QVBoxLayout(self.controls)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(row)
        cv.addWidget(self.preview, 1)
        cv.addLayout(shoot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint_label)
        layout.addWidget(self.controls, 1)
        editor.changed.connect(lambda _s: self.refresh_classes())
        self.refresh_classes()
        self.set_support(webcam.camera_support())

    # --- availability --------------------------------------------------------------------------------
    def set_support(self, problem: str | None) -> None:
        """Show ``problem`` (e.g. the install hint) and keep the controls out of the way, or show them."""
        self.hint_label.setText(problem or "")
        self.hint_label.setVisible(bool(problem))
        self.controls.setVisible(problem is None)

    def find_cameras(self) -> list[int]:
        found = webcam.list_cameras()
        self.camera_combo.clear()
        for index in found:
            self.camera_combo.addItem(f"Camera {index}", index)
        if not found:
            self.preview.setText("No camera found. Connect one and press Find cameras.")
        self.start_button.setEnabled(bool(found))
        return found

    def refresh_classes(self) -> None:
        current = self.class_combo.currentText()
        self.class_combo.clear()
        self.class_combo.addItems(self.editor.classes())
        if current:
            self.class_combo.setCurrentText(current)

    # --- the camera ------------------------------------------------------------------------------------
    def _toggle_camera(self, on: bool) -> None:
        if on:
            from tlstudio.workers.camera_worker import CameraWorker

            index = self.camera_combo.currentData()
            worker = CameraWorker(int(index) if index is not None else 0)
            # A bound method of this widget (GUI thread): each frame is queued to the GUI thread.
            worker.frame_ready.connect(self._on_frame_bytes)
            start_worker(worker, name="camera", owner=self, connect={"failed": self._camera_failed})
            self.start_button.setText("Stop")
        else:
            self.stop_camera()

    def stop_camera(self, wait: bool = True) -> None:
        registry.cancel(owner=self)
        if wait:
            registry.await_workers(5000, owner=self)
        self.start_button.setText("Start")
        if self.start_button.isChecked():
            self.start_button.setChecked(False)

    def _camera_failed(self, text: str) -> None:
        self.preview.setText(text)
        self.start_button.setChecked(False)

    def _on_frame_bytes(self, data: bytes, width: int, height: int) -> None:
        self.feed_frame(np.frombuffer(data, np.uint8).reshape(height, width, 3))

    # --- capturing --------------------------------------------------------------------------------------
    def feed_frame(self, frame: np.ndarray) -> None:
        """Show one RGB frame; while the button is held, keep one every ``interval`` seconds."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        self.last_frame = frame
        h, w = frame.shape[:2]
        image = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.preview.setPixmap(QPixmap.fromImage(image).scaledToWidth(PREVIEW_WIDTH))
        now = time.monotonic()
        if self._capture is not None and now - self._last_saved >= self.interval:
            self._capture.add(frame)
            self._last_saved = now
            self.count_label.setText(f"{len(self._capture.staged)} taken")

    def start_capture(self) -> bool:
        name = self.class_combo.currentText().strip()
        if self.editor.root is None or not name:
            self.editor.failed.emit("Open or create a dataset and choose a class first.")
            return False
        try:
            self._capture = webcam.Capture(self.editor.root, name)
        except TlstudioError as exc:
            self.editor.failed.emit(str(exc))
            return False
        self._last_saved = 0.0
        return True

    def stop_capture(self) -> int:
        capture, self._capture = self._capture, None
        if capture is None:
            return 0
        n = len(capture.staged)
        if n:
            self.editor.commit_capture(capture)
        self.count_label.setText(f"{n} added" if n else "")
        self.captured.emit(n)
        return n

    def shutdown(self) -> None:
        self.stop_capture()
        self.stop_camera(wait=True)
