"""Suspected label errors: out-of-fold probabilities of small heads, then confident learning.

1. :func:`out_of_fold_probabilities` trains a softmax-regression head on the cached features of
   all folds but one and predicts the held-out fold, so every image is judged by a head that never
   saw its label.
2. :func:`find_label_issues` applies confident learning (Northcutt, Jiang & Chuang, "Confident
   Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021): per-class thresholds (the mean
   probability a class gets on its own images) give the *confident joint* of given vs. likely true
   labels; for each off-diagonal cell (i, j) the n_ij images labelled i with the largest margin
   p_j - p_i are flagged ("prune by noise rate"), and ranked by self-confidence (lowest p_i first).

This is what ``cleanlab.filter.find_label_issues`` does by default; done here in numpy (about a
hundred lines) because cleanlab would bring scikit-learn, scipy and pandas for it.

One addition: on a small, clean, well-separated dataset the per-class thresholds are close to 1, so
a picture the heads give 85 % "one" and 14 % of its label "two" is confident about nothing and
confident learning misses it. Rows where another class beats the given label by more than
``disagreement`` (0.5) are therefore flagged too. On trashnet (1,030 pictures, 40 planted flips)
this adds no row; on the 120-picture sample-signs set it finds the planted flip CL alone missed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tlstudio.core.errors import Cancelled


@dataclass(frozen=True)
class LabelIssue:
    index: int  # row of the feature matrix
    given: int
    suggested: int  # the class it looks like
    score: float  # 1 - p(given label): higher is more suspicious


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS single-threaded: these matrices are small, and on a busy machine OpenBLAS's threads
    spinning for cores made the heads ten times slower (10 s instead of 0.9 s per fold, measured)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a plain dependency; without it the audit is only slower
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_softmax(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 0.1, steps: int = 300, lr: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch Adam; returns ``(W (d, k), b (k,))``.

    ``x`` should be standardised. Class-balanced sample weights keep a small class from being
    ignored, which would make all its images look mislabelled. ``l2`` = 0.1 was the best of
    1e-3..0.3 on trashnet with MobileNet 0.25 features (fewest false flags, most planted flips found;
    ``benchmarks/audit_recall.py``).
    """
    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = (n / (n_classes * np.maximum(counts, 1)))[y][:, None].astype(np.float32)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    w = np.zeros((d, n_classes), np.float32)
    b = np.zeros(n_classes, np.float32)
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        p = _softmax(x @ w + b)
        g = (p - onehot) * weights / n
        grads = [x.T @ g + l2 * w, g.sum(axis=0)]
        for k, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
            m[k] = beta1 * m[k] + (1 - beta1) * grad
            v[k] = beta2 * v[k] + (1 - beta2) * grad * grad
            param -= lr * (m[k] / (1 - beta1**t)) / (np.sqrt(v[k] / (1 - beta2**t)) + eps)
    return w, b


def out_of_fold_probabilities(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Predicted class probabilities ``(n, k)`` of each row by a head trained without it.

    Folds are stratified (each class spread evenly over them); features are standardised with the
    training folds' statistics.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    folds = max(2, min(folds, n))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, np.int64)
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    probs = np.full((n, n_classes), 1.0 / n_classes)
    with _one_blas_thread():
        for f in range(folds):
            _fit_fold(x, y, n_classes, fold_of == f, probs, cancel)
    return probs


def _fit_fold(
    x: np.ndarray, y: np.ndarray, n_classes: int, test: np.ndarray, probs: np.ndarray, cancel: threading.Event | None
) -> None:
    """Train a head without the rows of ``test`` and write their probabilities into ``probs``."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("the audit was cancelled")
    train = ~test
    if not test.any() or len(np.unique(y[train])) < 2:
        return
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0) + 1e-6
    w, b = fit_softmax((x[train] - mean) / std, y[train], n_classes)
    probs[test] = _softmax(((x[test] - mean) / std) @ w + b)


def find_label_issues(probs: np.ndarray, labels: np.ndarray, *, disagreement: float = 0.5) -> list[LabelIssue]:
    """Confident learning on out-of-fold ``probs`` ``(n, k)``: the likely mislabelled rows, most suspicious first.

    Rows where another class's probability exceeds the given label's by more than ``disagreement``
    are included as well (see the module docstring).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = probs.shape
    if n == 0:
        return []
    thresholds = np.array(
        [probs[labels == c, c].mean() if np.any(labels == c) else 1.0 for c in range(k)]
    )
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -1.0)
    likely = masked.argmax(axis=1)
    confident = above.any(axis=1)
    joint = np.zeros((k, k), np.int64)
    np.add.at(joint, (labels[confident], likely[confident]), 1)
    # Calibrate rows to the class sizes, as cleanlab does, so the counts estimate noise in the whole set.
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    rows = joint.sum(axis=1).astype(np.float64)
    calibrated = joint * (sizes / np.maximum(rows, 1))[:, None]
    flagged: dict[int, int] = {}
    for i in range(k):
        members = np.flatnonzero(labels == i)
        for j in range(k):
            count = int(round(calibrated[i, j])) if i != j else 0
            if count <= 0 or len(members) == 0:
                continue
            margin = probs[members, j] - probs[members, i]
            for r in members[np.argsort(-margin, kind="stable")[:count]]:
                if probs[r].argmax() != i and int(r) not in flagged:  # the head must disagree with the label
                    flagged[int(r)] = j
    given = probs[np.arange(n), labels]
    others = probs.copy()
    others[np.arange(n), labels] = -1.0
    for r in np.flatnonzero(others.max(axis=1) - given > disagreement):
        flagged.setdefault(int(r), int(others[r].argmax()))
    issues = [
        LabelIssue(r, int(labels[r]), int(others[r].argmax()), float(1.0 - given[r])) for r in flagged
    ]
    issues.sort(key=lambda it: (-it.score, it.index))
    return issues
