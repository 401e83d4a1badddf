"""Prediction with a trained model: top-k labels and a "not sure" answer (folders and CSV: :mod:`.batch`).

A :class:`Predictor` applies exactly the preprocessing the run was trained with: the input size
and resize policy come from the run folder (:mod:`tlstudio.core.run_folder`), the pixel scaling is
inside the model itself (its input takes raw RGB 0-255). Images are decoded by
:mod:`tlstudio.core.data.imageio`, so anything the scanner accepts works here, with EXIF orientation applied.

Warm prediction runs through one compiled ``tf.function`` with a fixed input signature, which is
several times faster than ``model.predict`` on a single image.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlstudio.core.errors import TlstudioError

if TYPE_CHECKING:  # pragma: no cover
    from tlstudio.core.deploy.gradcam import GradCam
    from tlstudio.core.run_folder import Run

NOT_SURE = "not sure"
BATCH = 32

ImageInput = Any  # str | os.PathLike | PIL.Image.Image | np.ndarray (uint8, H x W x 3)


class PredictError(TlstudioError):
    """A model or run folder that cannot be used for prediction."""


@dataclass
class Prediction:
    """The answer for one image.

    ``top`` lists (label, probability) best first; ``label`` is the top-1 label, or ``"not sure"``
    when its probability is below the threshold; ``error`` says why an image could not be read
    (then ``top`` is empty, ``label`` is ``""`` and ``probability`` is 0).
    """

    source: str
    top: list[tuple[str, float]] = field(default_factory=list)
    label: str = ""
    probability: float = 0.0
    error: str | None = None
    class_index: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "probability": self.probability,
            "class_index": self.class_index,
            "top": [{"label": name, "probability": p} for name, p in self.top],
            "error": self.error,
        }


def _model_hw(model: Any) -> tuple[int | None, int | None]:
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise PredictError(f"the model takes input of shape {shape}; tlstudio predicts with RGB image models only")
    return shape[1], shape[2]


def _as_hw(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, float)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


class Predictor:
    """A loaded model with its labels and preprocessing, ready to classify images.

    Build it with :meth:`from_path` (a run folder, or a ``.keras`` / ``.h5`` model file), or
    directly from an in-memory Keras model.

    Parameters
    ----------
    model
        A Keras model whose input takes raw RGB 0-255 float images of ``input_size``.
    labels
        Class names in output order; ``None`` gives ``"class 0" .. "class N-1"``.
    input_size
        (height, width) of the model input; ``None`` reads it from the model.
    resize_policy
        ``"stretch"``, ``"crop"`` or ``"pad"``, as the run was trained.
    run
        The run the model came from, None for a bare model file.
    threshold
        The default "not sure" threshold of :meth:`predict`; :meth:`from_path` reads the run's
        recorded one (``run.json`` ``threshold``). None or 0 answers every image with its best class.
    """

    def __init__(
        self,
        model: Any,
        labels: Sequence[str] | None = None,
        *,
        input_size: int | tuple[int, int] | None = None,
        resize_policy: str = "stretch",
        run: Run | None = None,
        model_path: str | Path | None = None,
        threshold: float | None = None,
    ) -> None:
        self.model = model
        h, w = _model_hw(model)
        given = _as_hw(input_size)
        if h is None or w is None:
            if given is None:
                raise PredictError("the model does not fix its input size; give input_size")
            h, w = given
        self.input_size: tuple[int, int] = (int(h), int(w))
        out_shape = tuple(model.outputs[0].shape)
        num_outputs = int(out_shape[-1]) if out_shape and out_shape[-1] else 0
        self._binary = num_outputs == 1
        num_classes = 2 if self._binary else num_outputs
        if labels is None:
            labels = [f"class {i}" for i in range(num_classes)]
        labels = [str(x) for x in labels]
        if num_classes and len(labels) != num_classes:
            raise PredictError(f"the model has {num_classes} outputs but there are {len(labels)} labels")
        self.labels: list[str] = labels
        if resize_policy not in ("stretch", "crop", "pad"):
            raise PredictError(f"unknown resize policy {resize_policy!r} (stretch, crop or pad)")
        self.resize_policy = resize_policy
        self.run = run
        self.model_path = Path(model_path) if model_path else None
        self.threshold: float | None = threshold if threshold else None
        self._fn: Any = None
        self._lock = threading.Lock()
        self._gradcam: Any = None
        self.notes: list[str] = []

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Predictor:
        """Load a run folder (its model, configuration and labels) or a model file.

        A bare model file is resized with its own input shape and the "stretch" policy; its labels
        come from a labels file beside it, else ``"class 0" .. "class N-1"``.

        Raises
        ------
        PredictError, ModelFileError, RunError
            With a one-line reason when the folder or file cannot be used.
        """
        from tlstudio.core import run_folder
        from tlstudio.core.models.open_model import load_model_file

        path = Path(path).expanduser()
        if not path.exists():
            raise PredictError(f"no such model file or run folder: {path}")
        run = None
        if path.is_dir():
            if run_folder.is_run(path):
                run = run_folder.load_run(path)
                if run.model_path is None:
                    raise PredictError(f"the run {path} holds no model yet (status: {run.status})")
            elif not any(path.glob("*.keras")) and not any(path.glob("*.h5")):
                raise PredictError(f"{path} holds no model: is it a tlstudio run folder?")
        loaded = load_model_file(path)
        if run is not None:
            labels = loaded.labels or run.classes or None
            size = run.input_size or loaded.input_size
            predictor = cls(loaded.model, labels, input_size=size, resize_policy=run.config.resize_policy,
                            run=run, model_path=loaded.path, threshold=recorded_threshold(run.summary))
        else:
            predictor = cls(loaded.model, loaded.labels, input_size=loaded.input_size, model_path=loaded.path)
        predictor.notes = list(loaded.notes)
        return predictor

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def run_dir(self) -> Path | None:
        return self.run.run_dir if self.run is not None else None

    # --- images -----------------------------------------------------------------------------------

    def load_image(self, image: ImageInput) -> np.ndarray:
        """Decode (if a path) and resize one image as the run did; returns uint8 (H, W, 3)."""
        from PIL import Image

        from tlstudio.core.data import imageio
        if isinstance(image, (str, os.PathLike)):
            img = imageio.open_image(image)
        elif isinstance(image, Image.Image):
            img = image if image.mode == "RGB" else image.convert("RGB")
        elif isinstance(image, np.ndarray):
            arr = image
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
                raise PredictError(f"an image array must be H x W x 3, not {arr.shape}")
            if arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
            img = Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")
        else:
            raise PredictError(f"cannot read an image from {type(image).__name__}")
        h, w = self.input_size
        resized = imageio.resize_image(img, (h, w), self.resize_policy)
        return np.ascontiguousarray(np.asarray(resized.convert("RGB"), dtype=np.uint8).reshape(h, w, 3))

    def preprocess(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, list[str | None]]:
        """Decode and resize ``images``; returns a float32 batch and one error (or None) per image.

        Images that fail get a zero slot in the batch, so indices still line up.
        """
        h, w = self.input_size
        batch = np.zeros((len(images), h, w, 3), np.float32)
        errors: list[str | None] = []
        for i, image in enumerate(images):
            try:
                batch[i] = self.load_image(image)
                errors.append(None)
            except TlstudioError as exc:
                errors.append(str(exc))
            except (OSError, ValueError) as exc:  # a decoder that slipped past imageio's checks
                errors.append(f"cannot read the image: {exc}")
        return batch, errors

    # --- prediction -------------------------------------------------------------------------------

    def _compiled(self) -> Any:
        with self._lock:
            if self._fn is None:
                import tensorflow as tf

                h, w = self.input_size
                model = self.model

                @tf.function(input_signature=[tf.TensorSpec([None, h, w, 3], tf.float32)])
                def forward(x: Any) -> Any:
                    return model(x, training=False)

                self._fn = forward
            return self._fn

    def predict_array(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N, num_classes) for a float32 batch of resized RGB 0-255 images."""
        if len(batch) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return self._to_probabilities(self.raw_outputs(batch))

    def raw_outputs(self, batch: np.ndarray) -> np.ndarray:
        """The model's own outputs (N, outputs) for a float32 batch, before any conversion to probabilities."""
        fn = self._compiled()
        outs = []
        for start in range(0, len(batch), BATCH):
            chunk = np.ascontiguousarray(batch[start : start + BATCH], dtype=np.float32)
            out = fn(chunk)
            if isinstance(out, (list, tuple)):
                out = out[0]
            outs.append(np.asarray(out, dtype=np.float32))
        return np.concatenate(outs).reshape(len(batch), -1)

    def _to_probabilities(self, out: np.ndarray) -> np.ndarray:
        if self._binary:
            p = out[:, :1]
            if p.min() < 0 or p.max() > 1:
                p = 1.0 / (1.0 + np.exp(-p))
            return np.concatenate([1.0 - p, p], axis=1)
        sums = out.sum(axis=1)
        if out.min() < -1e-6 or np.any(np.abs(sums - 1.0) > 1e-3):  # logits, not probabilities
            e = np.exp(out - out.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return out

    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        top_k: int = 3,
        threshold: float | None = None,
    ) -> list[Prediction]:
        """Classify one image or many.

        Parameters
        ----------
        images
            Paths, PIL images or uint8 arrays (H, W, 3); a single one is accepted too.
        top_k
            How many (label, probability) pairs to return per image.
        threshold
            When the top-1 probability is below it, the label is ``"not sure"``; None uses the
            predictor's own (the run's recorded threshold), 0 turns "not sure" off.

        Returns
        -------
        list of Prediction
            One per image, in order; an unreadable image gets its ``error``, never an exception.
        """
        if isinstance(images, (str, os.PathLike, np.ndarray)) or _is_pil(images):
            images = [images]
        images = list(images)
        if threshold is None:
            threshold = self.threshold
        batch, errors = self.preprocess(images)
        good = [i for i, e in enumerate(errors) if e is None]
        probs = self.predict_array(batch[good]) if good else np.zeros((0, self.num_classes))
        result: list[Prediction] = []
        row = {i: probs[j] for j, i in enumerate(good)}
        for i, image in enumerate(images):
            source = _source_name(image, i)
            if errors[i] is not None:
                result.append(Prediction(source, error=errors[i]))
                continue
            result.append(self._prediction(source, row[i], top_k, threshold))
        return result

    def _prediction(self, source: str, p: np.ndarray, top_k: int, threshold: float | None) -> Prediction:
        k = max(1, min(int(top_k), len(p)))
        order = np.argsort(-p, kind="stable")[:k]
        top = [(self.labels[int(c)], float(p[c])) for c in order]
        best = int(order[0])
        prob = float(p[best])
        label = self.labels[best]
        if threshold and prob < threshold:
            label = NOT_SURE
        return Prediction(source, top, label, prob, None, best)

    # --- explanation ------------------------------------------------------------------------------

    def gradcam(self, image: ImageInput, class_index: int | None = None) -> GradCam:
        """Grad-CAM of ``image`` for ``class_index`` (default: the predicted class).

        See :func:`tlstudio.core.deploy.gradcam.gradcam`.
        """
        from tlstudio.core.deploy.gradcam import GradCamModel, gradcam

        with self._lock:
            if self._gradcam is None:
                self._gradcam = GradCamModel(self.model)
        arr = self.load_image(image)
        return gradcam(self._gradcam, arr, class_index, labels=self.labels)


def recorded_threshold(summary: Any) -> float | None:
    """The "not sure" threshold a run recorded in ``run.json``, or None when it has none (or 0).

    Parameters
    ----------
    summary
        A :class:`tlstudio.core.run_folder.Summary` (or its JSON object). The trainer writes
        ``threshold`` as ``{"value": v, "source": ...}``; older runs wrote a bare number.

    Returns
    -------
    float or None
        A value in (0, 1], or None when answers are never "not sure".
    """
    for key in ("threshold", "not_sure_threshold"):
        value = summary.get(key)
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0:
            return float(value)
    return None


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def _source_name(image: ImageInput, index: int) -> str:
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    name = getattr(image, "filename", None)
    return str(name) if name else f"image {index}"
