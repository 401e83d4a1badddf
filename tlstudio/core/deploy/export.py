"""Export a trained model to the formats other programs run, with labels, a model card and a sample script.

Formats: ``keras`` (.keras), ``savedmodel`` (TensorFlow SavedModel through ``Model.export``),
``tflite`` (float32), ``tflite-f16`` (float16 weights), ``tflite-int8`` (int8 weights and
activations calibrated on the run's training images; float32 input and output, so it takes the
same raw RGB 0-255 images as the others) and ``onnx`` (``Model.export(format="onnx")``, through
tf2onnx: the optional ``onnx`` extra).

Every export is staged in a temporary folder beside the target and moved into place only once
the model, ``labels.txt``, ``model_card.md`` and ``predict_<format>.py`` are all written (and,
with ``verify=True``, the exported file has been checked): a failed export leaves nothing
half-written and raises a :class:`~tlstudio.core.errors.TlstudioError` saying why.

Verification reloads the exported file in a fresh process with its own runtime
(``python -m tlstudio.core.deploy.verify``) and compares its probabilities with the Keras model's on a
sample of validation images.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio import __version__
from tlstudio.core.errors import Cancelled, TlstudioError

FORMATS = ("keras", "savedmodel", "tflite", "tflite-f16", "tflite-int8", "onnx", "web")

#: File (or folder) name used when the target is a folder.
DEFAULT_NAMES = {
    "keras": "model.keras",
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-f16": "model_f16.tflite",
    "tflite-int8": "model_int8.tflite",
    "onnx": "model.onnx",
    "web": "web",  # a folder: page, model and runtime (tlstudio.core.deploy.web_export)
}

#: (largest probability difference, smallest top-1 agreement) a verified export may show.
#: Top-1 disagreements on images where the Keras model's two best classes are closer than the
#: probability tolerance are near-ties and not counted against the agreement.
TOLERANCES: dict[str, tuple[float, float]] = {
    "keras": (1e-5, 1.0),
    "savedmodel": (1e-4, 1.0),
    "tflite": (1e-3, 1.0),
    "onnx": (1e-3, 1.0),
    "web": (1e-3, 1.0),
    "tflite-f16": (0.03, 1.0),
    # 8-bit weights and activations move the probabilities of small heads by a few tenths on
    # uncertain images; the top-1 agreement is what says the quantised model still works.
    "tflite-int8": (0.35, 0.8),
}

INSTALL_ONNX = 'pip install "tlstudio[onnx]"'
CALIBRATION_IMAGES = 100
VERIFY_IMAGES = 16
VERIFY_TIMEOUT = 600


class ExportError(TlstudioError):
    """An export that could not be written; nothing was left behind."""


class MissingDependency(ExportError):
    """An optional package a format needs is not installed; the message says how to get it."""


class VerificationError(ExportError):
    """The exported file gives answers too different from the Keras model's."""


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    format
        One of :data:`FORMATS`.
    path
        The exported model file (a folder for ``savedmodel``).
    files
        (path, size in bytes) of everything written: the model, labels.txt, model_card.md and
        the sample script. A folder's size is the sum of its files.
    verification
        ``{"top1_agreement", "max_prob_diff", "n", "ok", "tolerance", "inputs", ...}`` or None.
    notes
        Remarks for the user (how int8 was calibrated, ...).
    """

    format: str
    path: Path
    files: list[tuple[Path, int]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
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


def resolve_target(fmt: str, out_path: str | os.PathLike[str]) -> Path:
    """The model path to write for ``out_path``: itself, or the default name inside a folder.

    A path that is an existing folder, ends with a separator or has no suffix (other than for
    ``savedmodel``, which is a folder) is taken as a folder.
    """
    raw = os.fspath(out_path)
    path = Path(raw).expanduser()
    if raw.endswith(("/", os.sep)):
        as_folder = True
    elif path.is_dir():
        as_folder = not (fmt == "savedmodel" and _is_savedmodel(path))
    else:
        as_folder = fmt != "savedmodel" and not path.suffix
    if as_folder:
        path = path / DEFAULT_NAMES[fmt]
    if fmt == "keras" and path.suffix != ".keras":
        raise ExportError(f"a Keras export must end in .keras, not {path.name}")
    if fmt == "savedmodel" and path.is_file():
        raise ExportError(f"{path} is a file; a SavedModel is a folder")
    return path


def _is_savedmodel(path: Path) -> bool:
    return (path / "saved_model.pb").is_file()


# --- images for calibration and verification ------------------------------------------------------


def run_split_images(predictor: Any, splits: Sequence[str]) -> list[Path]:
    """Existing image files of the run's split (paths in config.json are relative to its data folder)."""
    cfg = predictor.run.config
    split = cfg.get("split") if isinstance(cfg, dict) else None
    data_dir = cfg.get("data_dir") if isinstance(cfg, dict) else None
    if not isinstance(split, dict) or not data_dir:
        return []
    root = Path(data_dir)
    for name in splits:
        files = [root / p for p in split.get(name) or []]
        files = [f for f in files if f.is_file()]
        if files:
            return files
    return []


def _spread(files: list[Path], n: int) -> list[Path]:
    """Up to ``n`` files spread evenly over the list (deterministic, covers every class of a sorted list)."""
    if len(files) <= n:
        return list(files)
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in sorted(set(idx.tolist()))]


def _given_images(images: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if not images:
        return []
    from tlstudio.core.deploy.predict import collect_files

    return collect_files(list(images))


def _load_batch(predictor: Any, files: Sequence[Path]) -> tuple[np.ndarray, list[Path]]:
    batch, errors = predictor.preprocess([str(f) for f in files])
    keep = [i for i, e in enumerate(errors) if e is None]
    return batch[keep], [files[i] for i in keep]


# --- the formats ----------------------------------------------------------------------------------


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


# --- verification ---------------------------------------------------------------------------------


def run_in_fresh_process(fmt: str, model_path: Path, batch: np.ndarray, scratch: Path) -> np.ndarray:
    """Raw outputs of the exported file for ``batch``, computed by ``python -m tlstudio.core.deploy.verify``.

    Raises
    ------
    VerificationError
        When the file cannot be loaded or run by its runtime.
    """
    inputs = scratch / "verify-inputs.npy"
    outputs = scratch / "verify-outputs.npy"
    np.save(inputs, batch.astype(np.float32))
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "tlstudio.core.deploy.verify", fmt, str(model_path), str(inputs), str(outputs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=VERIFY_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise VerificationError(f"checking the {fmt} export took longer than {VERIFY_TIMEOUT} s") from None
    if proc.returncode != 0 or not outputs.is_file():
        lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
        reason = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise VerificationError(f"the exported {fmt} file could not be run by its own runtime: {reason}")
    return np.load(outputs)


def compare_outputs(fmt: str, reference: np.ndarray, exported: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement and largest probability difference, judged against :data:`TOLERANCES`."""
    tol, min_agree = TOLERANCES[fmt]
    if exported.shape != reference.shape:
        return {"n": int(len(reference)), "ok": False, "top1_agreement": 0.0, "max_prob_diff": float("inf"),
                "tolerance": tol, "reason": f"output shape {exported.shape} instead of {reference.shape}"}
    diff = float(np.abs(exported - reference).max()) if reference.size else 0.0
    ref_top = reference.argmax(axis=1)
    exp_top = exported.argmax(axis=1)
    agree = ref_top == exp_top
    ordered = np.sort(reference, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if reference.shape[1] > 1 else np.ones(len(reference))
    counted = agree | (margin <= tol)  # near-ties are not disagreements
    agreement = float(agree.mean()) if len(agree) else 1.0
    judged = float(counted.mean()) if len(counted) else 1.0
    ok = diff <= tol and judged >= min_agree
    return {
        "n": int(len(reference)),
        "top1_agreement": agreement,
        "max_prob_diff": diff,
        "mean_prob_diff": float(np.abs(exported - reference).mean()) if reference.size else 0.0,
        "tolerance": tol,
        "min_agreement": min_agree,
        "ok": bool(ok),
    }


def verify_export(
    predictor: Any,
    fmt: str,
    model_path: Path,
    *,
    images: Iterable[str | os.PathLike[str]] | None = None,
    n: int = VERIFY_IMAGES,
    scratch: Path | None = None,
) -> dict[str, Any]:
    """Check an exported file against the Keras model in a fresh process.

    Parameters
    ----------
    predictor
        The :class:`~tlstudio.core.deploy.predict.Predictor` of the source model.
    fmt, model_path
        The export to check.
    images
        Images (or folders) to compare on; default a sample of the run's validation images,
        else random images (said in the result's ``"inputs"``).
    n
        How many images at most.

    Returns
    -------
    dict
        ``{"n", "top1_agreement", "max_prob_diff", "mean_prob_diff", "tolerance", "ok", "inputs"}``.
    """
    files = _given_images(images)
    inputs = "given images"
    if not files:
        files = run_split_images(predictor, ("val", "test", "train"))
        inputs = "validation images"
    batch, used = _load_batch(predictor, _spread(files, n))
    if not len(batch):
        h, w = predictor.input_size
        batch = np.random.default_rng(0).uniform(0, 255, (min(n, 8), h, w, 3)).astype(np.float32)
        inputs = "random images (no validation images were found)"
    own_scratch = scratch is None
    scratch = scratch or Path(tempfile.mkdtemp(prefix="tlstudio-verify-"))
    try:
        raw = run_in_fresh_process(fmt, model_path, batch, scratch)
    finally:
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    ref_raw = predictor.raw_outputs(batch)
    reference = predictor._to_probabilities(ref_raw)
    exported = raw.reshape(len(batch), -1).astype(np.float32)
    if reference.shape != ref_raw.shape or not np.allclose(reference, ref_raw):
        # The model gives logits (or one sigmoid unit): convert the export's outputs the same way.
        exported = predictor._to_probabilities(exported)
    result = compare_outputs(fmt, reference, exported)
    result["inputs"] = inputs
    result["format"] = fmt
    return result


def describe_verification(v: dict[str, Any]) -> str:
    """One line: ``top-1 agreement 100% on 12 validation images, largest probability difference 3e-07``."""
    text = (
        f"top-1 agreement {v['top1_agreement']:.0%} on {v['n']} {v.get('inputs', 'images')}, "
        f"largest probability difference {v['max_prob_diff']:.2g} (tolerance {v['tolerance']:g})"
    )
    return text if v.get("ok") else text + ": FAILED"


# --- the export -----------------------------------------------------------------------------------


def _as_predictor(source: Any) -> Any:
    from tlstudio.core.deploy.predict import Predictor

    if isinstance(source, Predictor):
        return source
    return Predictor.from_path(source)


def _calibration_batch(predictor: Any, images: Iterable[str | os.PathLike[str]] | None) -> tuple[np.ndarray, str]:
    files = run_split_images(predictor, ("train",))
    what = "training images of the run"
    if not files:
        files = _given_images(images)
        what = "given images"
    if not files:
        files = run_split_images(predictor, ("val", "test"))
        what = "validation images of the run"
    batch, used = _load_batch(predictor, _spread(files, CALIBRATION_IMAGES))
    if not len(batch):
        raise ExportError(
            "int8 export needs sample images to calibrate on: the run's training images were not found; "
            "give a folder of images like the training ones"
        )
    return batch, f"calibrated on {len(used)} {what}"


def _move_into_place(staged: Path, target: Path) -> None:
    from tlstudio.core.atomic import atomic_path

    with atomic_path(target, directory=staged.is_dir()) as tmp:
        if staged.is_dir():
            tmp.rmdir()
        os.replace(staged, tmp)


def export_model(
    source: Any,
    fmt: str,
    out_path: str | os.PathLike[str],
    *,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    images: Iterable[str | os.PathLike[str]] | None = None,
    status: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a model and write ``labels.txt``, ``model_card.md`` and ``predict_<format>.py`` beside it.

    Parameters
    ----------
    source
        A run folder, a ``.keras`` / ``.h5`` model file, or a :class:`~tlstudio.core.deploy.predict.Predictor`.
    fmt
        One of :data:`FORMATS`.
    out_path
        The file (folder for ``savedmodel``) to write, or a folder to write the format's default
        name into (see :data:`DEFAULT_NAMES`).
    verify
        Reload the export in a fresh process with its own runtime and compare it with the Keras
        model; a difference beyond :data:`TOLERANCES` fails the export.
    progress
        ``progress(done, total)`` over the export's steps.
    cancel
        Set it to stop between steps (raises :class:`~tlstudio.core.errors.Cancelled`).
    images
        Images or folders used for int8 calibration when the run's training images are missing,
        and for verification instead of the run's validation images.
    status
        ``status(text)`` with a line about the step in progress.

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        With the reason; nothing is left at ``out_path``. :class:`MissingDependency` when the
        format's optional packages are not installed, :class:`VerificationError` when the
        exported file disagrees with the Keras model.
    """
    fmt = check_format(fmt)
    if fmt == "web":  # a folder with its own page and runtime: its own module
        from tlstudio.core.deploy.web_export import export_web

        return export_web(source, out_path, verify=verify, progress=progress, cancel=cancel, images=images, status=status)
    if fmt == "onnx":
        require_onnx(verify=verify)
    total = 4 if verify else 3
    done = 0

    def step(text: str) -> None:
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise Cancelled("Export cancelled.")
        if status:
            status(text)
        if progress:
            progress(done, total)
        done += 1

    step("Loading the model")
    predictor = _as_predictor(source)
    target = resolve_target(fmt, out_path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".tlstudio-export-", suffix=".tmp", dir=folder))
    from tlstudio.core.deploy.sample_scripts import TITLES

    result = ExportResult(fmt, target)
    try:
        staged = stage / target.name
        scratch = stage / ".scratch"
        scratch.mkdir()
        step(f"Writing {TITLES[fmt]}")
        try:
            if fmt == "keras":
                _export_keras(predictor.model, staged)
            elif fmt == "savedmodel":
                _export_savedmodel(predictor.model, staged)
            elif fmt == "onnx":
                _export_onnx(predictor.model, staged)
            else:
                calibration = None
                if fmt == "tflite-int8":
                    calibration, note = _calibration_batch(predictor, images)
                    result.notes.append(note)
                _export_tflite(predictor.model, staged, fmt, scratch, calibration)
        except TlstudioError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything; the user gets one line
            raise ExportError(f"{fmt} export failed: {_first_line(exc)}") from exc
        if verify:
            step(f"Checking the {fmt} file in a fresh process")
            result.verification = verify_export(predictor, fmt, staged, images=images, scratch=scratch)
            if not result.verification["ok"]:
                raise VerificationError(
                    f"the {fmt} export does not give the Keras model's answers ({describe_verification(result.verification)}); "
                    "nothing was written"
                )
        step("Writing labels, model card and sample script")
        _write_sidecars(predictor, fmt, target, stage, result)
        shutil.rmtree(scratch, ignore_errors=True)
        if cancel is not None and cancel.is_set():
            raise Cancelled("Export cancelled.")
        names = [p.name for p in stage.iterdir()]
        # The model last: whoever watches the folder sees the sidecars before the model appears.
        for name in sorted(names, key=lambda n: n == target.name):
            _move_into_place(stage / name, folder / name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    result.files = [(folder / name, _size(folder / name)) for name in sorted(names, key=lambda n: n != target.name)]
    if progress:
        progress(total, total)
    return result


def _write_sidecars(predictor: Any, fmt: str, target: Path, stage: Path, result: ExportResult) -> None:
    from tlstudio.core.deploy.model_card import describe_folder, model_card
    from tlstudio.core.deploy.sample_scripts import TITLES, sample_script, script_name

    (stage / "labels.txt").write_text("".join(f"{label}\n" for label in predictor.labels), encoding="utf-8")
    script = script_name(fmt)
    (stage / script).write_text(
        sample_script(fmt, target.name, predictor.input_size, predictor.resize_policy, __version__), encoding="utf-8"
    )
    files = [(target.name, TITLES[fmt] + (f" ({'; '.join(result.notes)})" if result.notes else "")),
             (script, f"sample script: python {script} IMAGE")]
    names = {target.name, script}
    for name, description in describe_folder(target.parent):
        if name not in names:
            files.append((name, description))
            names.add(name)
    card = model_card(predictor, files)
    if result.verification:
        card += "\n## Verification\n\n" + f"- {target.name}: {describe_verification(result.verification)}\n"
    (stage / "model_card.md").write_text(card, encoding="utf-8")


def export_models(
    source: Any,
    formats: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    images: Iterable[str | os.PathLike[str]] | None = None,
    status: Callable[[str], None] | None = None,
) -> list[ExportResult]:
    """Export to several formats into one folder (default file names); the model is loaded once.

    Stops at the first failure; the exports finished before it stay (each is complete).
    """
    formats = [check_format(f) for f in formats]
    if "onnx" in formats:
        require_onnx(verify=verify)
    predictor = _as_predictor(source)
    images = list(images) if images else None
    out = Path(out_dir)
    results = []
    for i, fmt in enumerate(formats):
        if progress:
            progress(i, len(formats))
        results.append(
            export_model(predictor, fmt, out / DEFAULT_NAMES[fmt], verify=verify, cancel=cancel, images=images, status=status)
        )
    if progress:
        progress(len(formats), len(formats))
    return results
