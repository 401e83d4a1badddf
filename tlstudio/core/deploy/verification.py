"""Checking an export: run the written file with its own runtime in a fresh process, compare with Keras.

The fresh process is ``python -m tlstudio.core.deploy.verify``, so nothing of the exporting process
(its loaded model, its TensorFlow graph) can make a broken file look good.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.deploy.formats import ExportError, given_images, load_batch, run_split_images, spread

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

VERIFY_IMAGES = 16
VERIFY_TIMEOUT = 600


class VerificationError(ExportError):
    """The exported file gives answers too different from the Keras model's."""


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
    agree = reference.argmax(axis=1) == exported.argmax(axis=1)
    ordered = np.sort(reference, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if reference.shape[1] > 1 else np.ones(len(reference))
    counted = agree | (margin <= tol)  # near-ties are not disagreements
    agreement = float(agree.mean()) if len(agree) else 1.0
    judged = float(counted.mean()) if len(counted) else 1.0
    return {
        "n": int(len(reference)),
        "top1_agreement": agreement,
        "max_prob_diff": diff,
        "mean_prob_diff": float(np.abs(exported - reference).mean()) if reference.size else 0.0,
        "tolerance": tol,
        "min_agreement": min_agree,
        "ok": bool(diff <= tol and judged >= min_agree),
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
    files = given_images(images)
    inputs = "given images"
    if not files:
        files = run_split_images(predictor, ("val", "test", "train"))
        inputs = "validation images"
    batch, _used = load_batch(predictor, spread(files, n))
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
