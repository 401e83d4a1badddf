"""Evaluation of a classifier: accuracy, per-class report, confusion matrix, highest-loss images.

:func:`evaluate_predictions` is pure numpy (it takes the model's probabilities); :func:`predict_probs`
runs a Keras model over image files through the input pipeline; :func:`evaluate_files` does both
for the splits of a run (with the head alone on cached features where they are given).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: A model that puts at least this share of its predictions on one class is flagged.
COLLAPSE_SHARE = 0.95
EPS = 1e-7
#: Validation is "too small to trust" when its 95 % interval is wider than this (e.g. 0.80 +- 0.10)...
TRUSTED_INTERVAL_WIDTH = 0.2
#: ...or when a class has fewer validation images than this.
MIN_VAL_PER_CLASS = 5
#: Thresholds tried for "not sure", and what a wrong confident answer costs against a right one
#: (a "not sure" costs nothing): 2 means an answer must be right at least two times in three.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))
WRONG_ANSWER_COST = 2.0


def accuracy_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of an accuracy of ``correct`` out of ``n``."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def choose_threshold(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """The "not sure" threshold that serves best on these (validation) answers.

    An answer at or above the threshold scores +1 when right and -:data:`WRONG_ANSWER_COST` when
    wrong; below it the answer is "not sure" and scores 0. The highest of the best thresholds wins:
    when every validation answer is right, that is just below the least confident of them, so
    images unlike any the model has seen (less confident still) get "not sure".

    Returns
    -------
    dict
        ``value``, ``answered`` (share of images answered) and ``accuracy_answered``.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    best = (-np.inf, 0.0)
    for t in THRESHOLDS:
        above = conf >= t
        score = float(ok[above].sum() - WRONG_ANSWER_COST * (~ok[above]).sum())
        if score >= best[0] - 1e-9:
            best = (score, t)
    t = best[1]
    above = conf >= t
    return {
        "value": float(t),
        "answered": float(above.mean()) if len(conf) else 0.0,
        "accuracy_answered": float(ok[above].mean()) if above.any() else 0.0,
    }


def run_threshold(val: dict[str, Any], fixed: float | None = None) -> dict[str, Any]:
    """The run's "not sure" threshold: ``fixed`` when given, else chosen on the validation split's answers."""
    if fixed is not None or not val.get("n"):
        return {"value": float(fixed or 0.0), "source": "set" if fixed is not None else "none"}
    samples = val["samples"]
    ok = np.array([s["true"] == s["pred"] for s in samples])
    return {**choose_threshold(np.array([s["prob"] for s in samples]), ok), "source": "validation"}


def reliability_warnings(split: dict[str, Any], classes: Sequence[str]) -> list[str]:
    """Plain warnings when a validation result is too small to trust (from :func:`evaluate_predictions`)."""
    n = int(split.get("n", 0))
    if n == 0:
        return []
    lo, hi = split.get("accuracy_ci95") or accuracy_interval(round(split["accuracy"] * n), n)
    few = [c for c in classes if 0 < split["per_class"].get(c, {}).get("support", 0) < MIN_VAL_PER_CLASS]
    if hi - lo <= TRUSTED_INTERVAL_WIDTH and not few:
        return []
    text = (
        f"only {n} validation images: the accuracy of {split['accuracy']:.0%} could be anywhere from "
        f"{lo:.0%} to {hi:.0%} (95 % interval)"
    )
    if few:
        text += f"; fewer than {MIN_VAL_PER_CLASS} for {', '.join(few)}"
    return [text + ". More images per class would make it trustworthy."]


def evaluate_predictions(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    paths: Sequence[str] | None = None,
    *,
    top_n: int = 20,
) -> dict[str, Any]:
    """Metrics of one split from true labels and predicted probabilities.

    Parameters
    ----------
    y_true
        True class index per sample, shape ``(n,)``.
    probs
        Predicted probabilities, shape ``(n, num_classes)``.
    classes
        Class names in index order.
    paths
        Path per sample (relative to the dataset root), for the per-sample records.
    top_n
        How many highest-loss samples to list in ``top_losses``.

    Returns
    -------
    dict
        ``accuracy``, ``loss`` (mean cross-entropy), ``per_class`` ({name: {precision, recall,
        f1, support}}), ``macro_f1``, ``confusion`` (rows true, columns predicted), ``samples``
        ([{path, true, pred, prob, loss}]) and ``top_losses`` (the same records, highest loss
        first), plus ``n`` and ``warnings`` (e.g. when one class takes almost every prediction).
    """
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    n = int(y.shape[0])
    if p.ndim != 2 or p.shape[0] != n:
        raise ValueError(f"probs must have shape ({n}, {k}), got {p.shape}")
    if p.shape[1] != k:
        raise ValueError(f"probs has {p.shape[1]} columns for {k} classes")
    paths = list(paths) if paths is not None else [str(i) for i in range(n)]
    pred = p.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    true_prob = p[np.arange(n), y] if n else np.zeros(0)
    losses = -np.log(np.clip(true_prob, EPS, 1.0))
    per_class: dict[str, dict[str, float | int]] = {}
    f1s = []
    for i, name in enumerate(classes):
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        support = int(confusion[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    samples = [
        {
            "path": paths[i],
            "true": int(y[i]),
            "pred": int(pred[i]),
            "prob": float(p[i, pred[i]]),
            "loss": float(losses[i]),
        }
        for i in range(n)
    ]
    order = sorted(range(n), key=lambda i: (-losses[i], paths[i]))
    warnings = []
    if n >= 5 and k > 1:
        counts = np.bincount(pred, minlength=k)
        top = int(counts.argmax())
        if counts[top] >= COLLAPSE_SHARE * n and len(set(y.tolist())) > 1:
            warnings.append(
                f"the model predicts '{classes[top]}' for {counts[top]} of {n} images: it has not learned "
                "to tell the classes apart (try more epochs, a higher learning rate, or more images)"
            )
    correct = int((pred == y).sum()) if n else 0
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "accuracy_ci95": list(accuracy_interval(correct, n)),
        "loss": float(losses.mean()) if n else 0.0,
        "per_class": per_class,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "confusion": confusion.tolist(),
        "samples": samples,
        "top_losses": [samples[i] for i in order[:top_n]],
        "warnings": warnings,
    }


def build_evaluation(
    classes: Sequence[str], data_dir: str, splits: dict[str, dict[str, Any]], extra_warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``evaluation.json`` object from per-split results of :func:`evaluate_predictions`."""
    warnings = list(extra_warnings)
    for name, result in splits.items():
        for w in result.get("warnings", []):
            warnings.append(f"{name}: {w}")
    return {"classes": list(classes), "data_dir": str(data_dir), "splits": splits, "warnings": warnings}


def predict_probs(
    model: Any,
    batches: Any,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over a batched dataset of ``(images, labels, weights)``.

    Samples whose weight is 0 (files that failed to decode) are dropped.

    Returns
    -------
    tuple
        ``(probs, labels, kept)`` where ``kept`` holds the positions (in dataset order) of the
        samples that were kept.
    """
    probs, labels, kept = [], [], []
    offset = 0
    for images, y, w in batches:
        out = model(images, training=False)
        out = np.asarray(out, dtype=np.float32)
        w = np.asarray(w)
        mask = w > 0
        probs.append(out[mask])
        labels.append(np.asarray(y)[mask])
        kept.append(np.nonzero(mask)[0] + offset)
        offset += len(w)
        if progress is not None:
            progress(offset)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64), np.concatenate(kept)


def evaluate_files(
    model: Any,
    files: dict[str, Any],
    classes: Sequence[str],
    data_dir: str,
    *,
    image_size: int,
    resize_policy: str,
    batch_size: int,
    skip_log: Any = None,
    head: Any = None,
    features: dict[str, tuple[np.ndarray, np.ndarray, list[int]]] | None = None,
) -> dict[str, Any]:
    """The ``evaluation.json`` object of ``model`` on named file sets.

    Parameters
    ----------
    model
        The whole classifier (raw RGB images in, probabilities out).
    files
        ``{split name: FileSet}`` to evaluate.
    classes, data_dir
        Class names in index order; the dataset folder (recorded).
    image_size, resize_policy, batch_size, skip_log
        How images reach the model (:func:`tlstudio.core.data.pipeline.make_dataset`).
    head, features
        The classifier's head and ``{split: (features, labels, kept indices)}`` of the frozen
        base: a split found there is scored by the head alone, without running the base.
    """
    from tlstudio.core.data.pipeline import make_dataset

    results: dict[str, dict[str, Any]] = {}
    for name, fs in files.items():
        if features and name in features and head is not None:
            x, y, kept = features[name]
            # Direct calls of the small head: ``predict`` would first trace a function (half a second).
            chunks = [np.asarray(head(x[i : i + 4096], training=False), np.float32) for i in range(0, len(x), 4096)]
            probs = np.concatenate(chunks) if chunks else np.zeros((0, len(classes)), np.float32)
        else:
            ds = make_dataset(
                fs, image_size=image_size, resize_policy=resize_policy, batch_size=batch_size, skip_log=skip_log
            )
            probs, y, kept_arr = predict_probs(model, ds)
            kept = [int(i) for i in kept_arr]
        results[name] = evaluate_predictions(y, probs, classes, [fs.rel_paths[i] for i in kept])
    return build_evaluation(classes, data_dir, results)
