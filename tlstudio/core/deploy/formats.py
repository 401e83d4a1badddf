"""The export formats: their names, default file names, optional packages and the writers.

``keras`` (.keras), ``savedmodel`` (TensorFlow SavedModel through ``Model.export``), ``tflite``
(float32), ``tflite-f16`` (float16 weights), ``tflite-int8`` (int8 weights and activations calibrated
on the run's training images; float32 input and output, so it takes the same raw RGB 0-255 images
as the others) and ``onnx`` (``Model.export(format="onnx")``, through tf2onnx: the optional ``onnx``
extra). :func:`write_format` writes one; :mod:`tlstudio.core.deploy.export` stages, checks and
places the files.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import run_folder
from tlstudio.core.errors import TlstudioError

FORMATS = ("keras", "savedmodel", "tflite", "tflite-f16", "tflite-int8", "onnx", "web")

#: File (or folder) name used when the target is a folder.
DEFAULT_NAMES = {
    "keras": run_folder.MODEL_FILE,
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-f16": "model_f16.tflite",
    "tflite-int8": "model_int8.tflite",
    "onnx": "model.onnx",
    "web": "web",  # a folder: page, model and runtime (tlstudio.core.deploy.web_export)
}

INSTALL_ONNX = 'pip install "tlstudio[onnx]"'
CALIBRATION_IMAGES = 100


class ExportError(TlstudioError):
    """An export that could not be written; nothing was left behind."""


class MissingDependency(ExportError):
    """An optional package a format needs is not installed; the message says how to get it."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (converters raise pages of text)."""
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__


def check_format(fmt: str) -> str:
    """The canonical format name for ``fmt`` (case and ``_`` tolerated); ExportError for others."""
    canon = str(fmt).strip().lower().replace("_", "-")
    canon = {"saved-model": "savedmodel", "tflite-fp16": "tflite-f16", "tflite-float16": "tflite-f16",
             "tflite-float32": "tflite", "h5": "keras"}.get(canon, canon)
    if canon not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return canon


def require_onnx(verify: bool = False) -> None:
    """Raise :class:`MissingDependency` unless the packages of the ``onnx`` extra can be imported."""
    needed = ["tf2onnx", "onnx"] + (["onnxruntime"] if verify else [])
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependency(
            f"ONNX export needs the optional package{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            f"install them with  {INSTALL_ONNX}"
        )


# --- images for calibration and verification ------------------------------------------------------


def run_split_images(predictor: Any, splits: Sequence[str]) -> list[Path]:
    """Existing image files of the predictor's run, from the first of ``splits`` that has any."""
    return predictor.run.split_images(list(splits)) if predictor.run is not None else []


def spread(files: list[Path], n: int) -> list[Path]:
    """Up to ``n`` files spread evenly over the list (deterministic, covers every class of a sorted list)."""
    if len(files) <= n:
        return list(files)
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in sorted(set(idx.tolist()))]


def given_images(images: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if not images:
        return []
    from tlstudio.core.deploy.batch import collect_files

    return collect_files(list(images))


def load_batch(predictor: Any, files: Sequence[Path]) -> tuple[np.ndarray, list[Path]]:
    """The readable ones of ``files`` as a resized float32 batch, and which they were."""
    batch, errors = predictor.preprocess([str(f) for f in files])
    keep = [i for i, e in enumerate(errors) if e is None]
    return batch[keep], [files[i] for i in keep]


def calibration_batch(predictor: Any, images: Iterable[str | os.PathLike[str]] | None) -> tuple[np.ndarray, str]:
    """Images to calibrate int8 on (the run's training images, else the given ones) and a note saying which."""
    files = run_split_images(predictor, ("train",))
    what = "training images of the run"
    if not files:
        files = given_images(images)
        what = "given images"
    if not files:
        files = run_split_images(predictor, ("val", "test"))
        what = "validation images of the run"
    batch, used = load_batch(predictor, spread(files, CALIBRATION_IMAGES))
    if not len(batch):
        raise ExportError(
            "int8 export needs sample images to calibrate on: the run's training images were not found; "
            "give a folder of images like the training ones"
        )
    return batch, f"calibrated on {len(used)} {what}"


# --- the writers ----------------------------------------------------------------------------------


def _export_keras(model: Any, path: Path) -> None:
    model.save(path)


def _export_savedmodel(model: Any, path: Path) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _export_onnx(model: Any, path: Path) -> None:
    require_onnx()
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    model(np.zeros((1, *shape), np.float32), training=False)  # Keras' ONNX export needs a model that was called
    model.export(str(path), format="onnx", verbose=False)


def _export_tflite(model: Any, path: Path, fmt: str, scratch: Path, calibration: np.ndarray | None) -> None:
    import tensorflow as tf

    saved = scratch / "tflite-source"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if fmt == "tflite-f16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "tflite-int8":
        assert calibration is not None
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative() -> Iterable[list[np.ndarray]]:
            for image in calibration:
                yield [image[None].astype(np.float32)]

        # int8 kernels wherever they exist, float ones elsewhere; input and output stay float32
        # (the converter's default) so the file takes the same raw RGB 0-255 images as the others.
        converter.representative_dataset = representative
    path.write_bytes(converter.convert())
    shutil.rmtree(saved, ignore_errors=True)


def write_format(
    predictor: Any, fmt: str, path: Path, scratch: Path, images: Iterable[str | os.PathLike[str]] | None = None
) -> list[str]:
    """Write ``predictor``'s model as ``fmt`` to ``path``; returns notes for the user (how int8 was calibrated).

    Raises
    ------
    ExportError
        With the converter's first line when it fails; :class:`MissingDependency` for a missing package.
    """
    notes: list[str] = []
    try:
        if fmt == "keras":
            _export_keras(predictor.model, path)
        elif fmt == "savedmodel":
            _export_savedmodel(predictor.model, path)
        elif fmt == "onnx":
            _export_onnx(predictor.model, path)
        else:
            calibration = None
            if fmt == "tflite-int8":
                calibration, note = calibration_batch(predictor, images)
                notes.append(note)
            _export_tflite(predictor.model, path, fmt, scratch, calibration)
    except TlstudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - converters raise anything; the user gets one line
        raise ExportError(f"{fmt} export failed: {first_line(exc)}") from exc
    return notes
