"""A long-lived prediction worker that keeps the loaded model between requests.

Loading a Keras model takes seconds; predicting one image takes milliseconds. The Test page therefore
starts one :class:`PredictWorker` on its own QThread and hands it requests through a queue: the first
request loads the model (``model_loading`` then ``model_ready``), every later request for the same model
reuses the loaded :class:`~tlstudio.core.deploy.predict.Predictor`.

Requests are plain method calls from the GUI thread (they only put an item on a ``queue.Queue``);
results come back as signals carrying frozen dataclasses. Stopping is :meth:`PredictWorker.request_cancel`
(or ``handle.cancel()``), which also wakes the loop.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from tlstudio.core.errors import TlstudioError
from tlstudio.workers.base import Worker

THUMBNAIL_SIZE = 160
FOLDER_CHUNK = 16  # images per predict() call while a folder is processed: progress and cancel granularity


@dataclass(frozen=True)
class ModelInfo:
    """What the page shows about the loaded model."""

    source: str
    labels: tuple[str, ...]
    input_size: Any
    threshold: float | None = None  # the run's "not sure" threshold (None: the run has none)


@dataclass(frozen=True)
class ImageOutcome:
    """One image's prediction (``prediction`` is a core ``Prediction``; its ``error`` says why a file failed)."""

    item_id: int
    prediction: Any
    thumbnail: Any = None  # PIL.Image or None when the file could not be read


@dataclass(frozen=True)
class GradCamOutcome:
    item_id: int
    overlay: Any  # PIL.Image
    class_index: int
    label: str


@dataclass(frozen=True)
class FolderOutcome:
    job_id: int
    predictions: tuple = ()
    cancelled: bool = False


@dataclass
class _Request:
    kind: str  # "load" | "images" | "gradcam" | "folder"
    model: str
    payload: dict = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)


class PredictWorker(Worker):
    """Predicts on request with one model kept in memory.

    Signals (besides :class:`~tlstudio.workers.base.Worker`'s):

    ``model_loading(str)``
        a model is being loaded (the first request, or after the model changed)
    ``model_ready(object)``
        :class:`ModelInfo` of the loaded model
    ``model_failed(str, str)``
        model source and a one-line reason it could not be loaded
    ``image_done(object)``
        :class:`ImageOutcome`, one per image, in request order
    ``gradcam_done(object)`` / ``gradcam_failed(int, str)``
        :class:`GradCamOutcome`, or item id and reason
    ``folder_progress(int, int, int)``
        job id, images done, total
    ``folder_done(object)``
        :class:`FolderOutcome`
    ``busy_changed(bool)``
        True while a request is being worked on
    """

    model_loading = Signal(str)
    model_ready = Signal(object)
    model_failed = Signal(str, str)
    image_done = Signal(object)
    gradcam_done = Signal(object)
    gradcam_failed = Signal(int, str)
    folder_progress = Signal(int, int, int)
    folder_done = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._predictor = None
        self._predictor_source: str | None = None
        self._current: _Request | None = None
        self._lock = threading.Lock()

    # --- called from the GUI thread -------------------------------------------------------------

    def submit_load(self, model: str) -> None:
        """Load ``model`` ahead of the first prediction (a page shows it is ready before anything is dropped)."""
        self._queue.put(_Request("load", str(model)))

    def submit_images(self, model: str, items: list[tuple[int, Any]], top_k: int = 3) -> None:
        """Predict ``items`` = [(item_id, path | PIL image | uint8 array), ...] with ``model``."""
        self._queue.put(_Request("images", str(model), {"items": list(items), "top_k": int(top_k)}))

    def submit_gradcam(self, model: str, item_id: int, image: Any, class_index: int | None = None) -> None:
        """Compute the Grad-CAM overlay of one image (for its top-1 class unless ``class_index``)."""
        self._queue.put(
            _Request("gradcam", str(model), {"item_id": item_id, "image": image, "class_index": class_index})
        )

    def submit_folder(self, model: str, job_id: int, paths: list[str], top_k: int = 3) -> None:
        """Predict many files, reporting ``folder_progress`` and finishing with ``folder_done``."""
        self._queue.put(
            _Request("folder", str(model), {"job_id": job_id, "paths": list(paths), "top_k": top_k})
        )

    def cancel_folder(self, job_id: int) -> None:
        """Stop one folder job, whether it is queued or running."""
        with self._lock:
            current = self._current
        if current is not None and current.kind == "folder" and current.payload["job_id"] == job_id:
            current.cancel.set()
        self._drop_queued(lambda r: r.kind == "folder" and r.payload["job_id"] == job_id, report=True)

    def cancel_pending(self) -> None:
        """Forget queued requests and stop a running folder job (used by "Clear")."""
        with self._lock:
            current = self._current
        if current is not None and current.kind == "folder":
            current.cancel.set()
        self._drop_queued(lambda r: True, report=True)

    def request_cancel(self) -> None:
        """Stop the worker: the loop ends after the current request."""
        super().request_cancel()
        with self._lock:
            current = self._current
        if current is not None:
            current.cancel.set()
        self._queue.put(None)

    def _drop_queued(self, match, report: bool) -> None:
        kept, dropped = [], []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            (dropped if item is not None and match(item) else kept).append(item)
        for item in kept:
            self._queue.put(item)
        if report:
            for item in dropped:
                if item.kind == "folder":
                    self.folder_done.emit(FolderOutcome(item.payload["job_id"], (), cancelled=True))

    # --- the worker thread ------------------------------------------------------------------------

    def work(self) -> None:
        while not self.cancel_event.is_set():
            request = self._queue.get()
            if request is None or self.cancel_event.is_set():
                break
            with self._lock:
                self._current = request
            self.busy_changed.emit(True)
            try:
                self._handle(request)
            finally:
                with self._lock:
                    self._current = None
                if self._queue.empty():
                    self.busy_changed.emit(False)
        self._predictor = None  # free the model's memory with the thread

    def _handle(self, request: _Request) -> None:
        predictor = self._load(request.model)
        if predictor is None:
            if request.kind == "folder":
                self.folder_done.emit(FolderOutcome(request.payload["job_id"], (), cancelled=True))
            elif request.kind == "gradcam":
                self.gradcam_failed.emit(request.payload["item_id"], "the model could not be loaded")
            return
        if request.kind == "images":
            self._predict_images(predictor, request)
        elif request.kind == "gradcam":
            self._gradcam(predictor, request)
        elif request.kind == "folder":
            self._predict_folder(predictor, request)

    def _load(self, source: str):
        if self._predictor is not None and self._predictor_source == source:
            return self._predictor
        self._predictor = None
        self._predictor_source = None
        self.model_loading.emit(source)
        try:
            factory = _default_factory()
            predictor = factory(source)
        except TlstudioError as exc:
            self.model_failed.emit(source, str(exc))
            return None
        except Exception as exc:  # an unreadable file is the user's problem to fix, not a crash
            self.model_failed.emit(source, f"{type(exc).__name__}: {exc}")
            return None
        self._predictor = predictor
        self._predictor_source = source
        self.model_ready.emit(
            ModelInfo(
                source, tuple(getattr(predictor, "labels", ()) or ()), getattr(predictor, "input_size", None),
                getattr(predictor, "threshold", None),
            )
        )
        return predictor

    def _predict_images(self, predictor, request: _Request) -> None:
        top_k = request.payload["top_k"]
        for item_id, image in request.payload["items"]:
            if self.cancel_event.is_set():
                return
            prediction = _predict_one(predictor, image, top_k)
            thumbnail = None if prediction.error else _thumbnail(image)
            self.image_done.emit(ImageOutcome(item_id, prediction, thumbnail))

    def _gradcam(self, predictor, request: _Request) -> None:
        item_id = request.payload["item_id"]
        try:
            cam = predictor.gradcam(request.payload["image"], class_index=request.payload["class_index"])
        except TlstudioError as exc:
            self.gradcam_failed.emit(item_id, str(exc))
            return
        except Exception as exc:
            self.gradcam_failed.emit(item_id, f"{type(exc).__name__}: {exc}")
            return
        labels = list(getattr(predictor, "labels", []) or [])
        index = int(cam.class_index)
        label = labels[index] if 0 <= index < len(labels) else str(index)
        self.gradcam_done.emit(
            GradCamOutcome(item_id, _sharp_overlay(predictor, request.payload["image"], cam), index, label)
        )

    def _predict_folder(self, predictor, request: _Request) -> None:
        job_id = request.payload["job_id"]
        paths = request.payload["paths"]
        top_k = request.payload["top_k"]
        total = len(paths)
        results: list = []
        self.folder_progress.emit(job_id, 0, total)
        for start in range(0, total, FOLDER_CHUNK):
            if request.cancel.is_set() or self.cancel_event.is_set():
                self.folder_done.emit(FolderOutcome(job_id, tuple(results), cancelled=True))
                return
            chunk = paths[start : start + FOLDER_CHUNK]
            try:
                results.extend(predictor.predict(chunk, top_k=top_k))
            except (TlstudioError, Exception):  # one bad file must not lose the others: retry one by one
                results.extend(_predict_one(predictor, p, top_k) for p in chunk)
            self.folder_progress.emit(job_id, len(results), total)
        self.folder_done.emit(FolderOutcome(job_id, tuple(results)))


def _default_factory():
    # The model is loaded in the engine process; this process only holds a stand-in.
    from tlstudio.workers.engine_predictor import EnginePredictor

    return EnginePredictor.load


def _predict_one(predictor, image, top_k: int):
    try:
        return predictor.predict([image], top_k=top_k)[0]
    except TlstudioError as exc:
        return _error_prediction(image, str(exc))
    except Exception as exc:
        return _error_prediction(image, f"{type(exc).__name__}: {exc}")


def _error_prediction(image, message: str):
    from tlstudio.core.deploy.predict import Prediction

    source = os.fspath(image) if isinstance(image, str | Path) else "<image>"
    return Prediction(source, error=message)


def _thumbnail(image, size: int = THUMBNAIL_SIZE):
    """A small RGB PIL image of a path, PIL image or uint8 array; None when it cannot be read."""
    try:
        if isinstance(image, str | Path):
            from tlstudio.core.data.imageio import make_thumbnail

            return make_thumbnail(image, size)
        from PIL import Image

        img = image if isinstance(image, Image.Image) else Image.fromarray(image)
        img = img.convert("RGB")
        img.thumbnail((size, size))
        return img
    except Exception:  # the prediction already reported what is wrong with the file
        return None


def _sharp_overlay(predictor, image, cam):
    """The overlay drawn on a thumbnail-sized copy of the original image rather than the small model input.

    Only for the "stretch" resize policy, where the heatmap maps onto the whole original image; with
    "crop" or "pad" the model saw a different framing, so the model-input overlay is shown as it is.
    """
    if getattr(predictor, "overlay_is_sharp", False):  # the engine drew it on the original image already
        return cam.overlay
    if getattr(predictor, "resize_policy", "stretch") != "stretch":
        return cam.overlay
    try:
        from tlstudio.core.deploy.gradcam import overlay_heatmap

        thumb = _thumbnail(image, THUMBNAIL_SIZE * 2)
        if thumb is None:
            return cam.overlay
        return overlay_heatmap(thumb, cam.heatmap)
    except Exception:  # the plain overlay is still a correct answer
        return cam.overlay
