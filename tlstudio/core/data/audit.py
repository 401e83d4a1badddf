"""Auditing a dataset: suspected label errors and near-duplicates, from cached base features.

:func:`audit_dataset` scans the folder, gets the pooled features of every usable image (from the
embedding cache the trainer fills, computing only the missing ones:
:mod:`tlstudio.core.data.audit_features`), then

* ranks suspected label errors by confident learning on out-of-fold probabilities of small heads
  (:mod:`tlstudio.core.data.confident_learning`), each with the class it looks like;
* groups near-duplicates by feature similarity (:mod:`tlstudio.core.data.near_duplicates`),
  flagging groups that cross the train/val/test split the trainer would use (a leak that inflates
  accuracy) or cross classes (a contradiction).

It never changes the dataset. "Keep" decisions from reviewing suspects are remembered in
``DATA/.tlstudio/reviewed.json`` (inside the dataset's hidden state folder, which the scan ignores,
so they travel with the dataset) and such images are not suggested again while the file is the same
size and in the same class.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.atomic import write_json
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.confident_learning import find_label_issues, out_of_fold_probabilities
from tlstudio.core.data.edit_journal import state_dir
from tlstudio.core.data.near_duplicates import DEFAULT_THRESHOLD, find_near_duplicates
from tlstudio.core.errors import TlstudioError
from tlstudio.core.events import Event
from tlstudio.core.json_file import read_json

REVIEW_FILE = "reviewed.json"

Emit = Callable[[Event], None]


class AuditError(TlstudioError):
    """A dataset that cannot be audited (too few classes or images)."""


def _ignore(event: Event) -> None:
    pass


@dataclass(frozen=True)
class Suspect:
    path: str  # relative to the dataset root
    class_name: str
    suggested: str
    score: float  # 1 - out-of-fold probability of the given class

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "class": self.class_name, "suggested": self.suggested, "score": round(self.score, 4)}


@dataclass(frozen=True)
class NearDuplicate:
    paths: tuple[str, ...]
    similarity: float
    cross_split: bool
    cross_class: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "paths": list(self.paths),
            "similarity": self.similarity,
            "cross_split": self.cross_split,
            "cross_class": self.cross_class,
        }


@dataclass
class AuditReport:
    """What :func:`audit_dataset` found; ``features`` rows follow ``paths`` (for the map)."""

    root: Path
    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    splits: list[str | None]
    suspects: list[Suspect]
    near_duplicates: list[NearDuplicate]
    skipped: dict[str, str] = field(default_factory=dict)
    features: np.ndarray | None = None
    cache_hits: int = 0
    cache_computed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The object ``tlstudio audit DATA --json`` prints."""
        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "images": len(self.paths),
            "suspects": [s.to_json() for s in self.suspects],
            "near_duplicates": [d.to_json() for d in self.near_duplicates],
            "skipped": [{"path": p, "reason": r} for p, r in sorted(self.skipped.items())],
            "cache": {"hits": self.cache_hits, "computed": self.cache_computed},
            "seconds": round(self.seconds, 3),
        }


# --- "keep" decisions ------------------------------------------------------------------------------


def _review_path(root: str | Path) -> Path:
    return state_dir(root) / REVIEW_FILE


def _read_reviewed(root: str | Path) -> dict[str, dict[str, Any]]:
    try:
        data = read_json(_review_path(root))
    except (OSError, ValueError):
        return {}
    kept = data.get("kept") if isinstance(data, dict) else None
    return kept if isinstance(kept, dict) else {}


def keep(root: str | Path, paths: Sequence[str]) -> None:
    """Remember that the person reviewed these images and their labels are right."""
    root = Path(root)
    kept = _read_reviewed(root)
    for rel in paths:
        try:
            size = (root / rel).stat().st_size
        except OSError:
            continue
        kept[rel] = {"size": size}
    write_json(_review_path(root), {"version": 1, "kept": kept})


def kept_paths(root: str | Path) -> set[str]:
    """Images marked "keep" that are still the same file at the same place (so in the same class)."""
    root = Path(root)
    out = set()
    for rel, info in _read_reviewed(root).items():
        try:
            if (root / rel).stat().st_size == info.get("size"):
                out.add(rel)
        except OSError:
            continue
    return out


# --- the audit -------------------------------------------------------------------------------------


def analyse(
    x: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    paths: Sequence[str],
    splits: Sequence[str | None],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    folds: int = 5,
    seed: int = 0,
    kept: set[str] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[Suspect], list[NearDuplicate]]:
    """Suspects and near-duplicates of images given as feature rows (no files are read).

    Parameters
    ----------
    x
        Features ``(n, dim)``.
    labels
        Class index of each row.
    classes
        Class names.
    paths
        Path of each row (reported as is).
    splits
        Split of each row ("train", "val", "test" or None when unknown).
    threshold
        Centred cosine similarity from which two images are near-duplicates.
    folds
        Cross-validation folds of the heads.
    seed
        Fold assignment seed.
    kept
        Paths reviewed as correct: never reported as suspects.
    cancel
        Set to stop with :class:`~tlstudio.core.errors.Cancelled`.

    Returns
    -------
    tuple
        Suspects (most suspicious first) and near-duplicate groups (most similar first).
    """
    kept = kept or set()
    labels = np.asarray(labels, dtype=np.int64)
    probs = out_of_fold_probabilities(x, labels, len(classes), folds=folds, seed=seed, cancel=cancel)
    suspects = [
        Suspect(paths[it.index], classes[it.given], classes[it.suggested], it.score)
        for it in find_label_issues(probs, labels)
        if paths[it.index] not in kept
    ]
    dups = []
    for group in find_near_duplicates(x, threshold, cancel=cancel):
        members = group.members
        member_splits = {splits[i] for i in members if splits[i] is not None}
        dups.append(
            NearDuplicate(
                paths=tuple(paths[i] for i in members),
                similarity=group.similarity,
                cross_split=len(member_splits) > 1,
                cross_class=len({int(labels[i]) for i in members}) > 1,
            )
        )
    # Leaks and contradictions first: they are the ones that change results.
    dups.sort(key=lambda d: (not (d.cross_split or d.cross_class), -d.similarity, d.paths))
    return suspects, dups


def dataset_splits(scan: Any, config: TrainConfig) -> dict[str, str]:
    """Path -> split, as the trainer would split the dataset with ``config.split`` (empty if it cannot)."""
    from tlstudio.core.data.split import split_files

    try:
        parts = split_files(scan, config.split)
    except TlstudioError:
        return {}
    return {r.path: name for name, recs in parts.items() for r in recs}


def audit_dataset(
    root: str | Path,
    config: TrainConfig | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    folds: int = 5,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    cache_root: str | Path | None = None,
    scan: Any = None,
) -> AuditReport:
    """Audit the dataset folder ``root`` with the base model of ``config`` (default: MobileNet 0.25, ImageNet).

    Parameters
    ----------
    root
        The dataset folder (never changed).
    config
        Base, weights, input size, resize policy, pooling, split and seed; the rest is unused.
    threshold
        Near-duplicate similarity threshold.
    folds
        Cross-validation folds for the out-of-fold probabilities.
    emit
        Receives cache progress and log events.
    cancel
        Set to stop with :class:`~tlstudio.core.errors.Cancelled`.
    cache_root
        Embedding-cache folder (default: the user's, shared with training).
    scan
        A :class:`~tlstudio.core.data.scan.DatasetScan` of ``root`` already made (scanned here otherwise).

    Returns
    -------
    AuditReport
    """
    from tlstudio.core.data.audit_features import compute_features
    from tlstudio.core.data.scan import scan_dataset

    started = time.perf_counter()
    config = config or TrainConfig()
    scan = scan if scan is not None else scan_dataset(root, cancel=cancel)
    base = Path(scan.root)
    records = [r for r in scan.usable() if r.class_name]
    classes = sorted({str(r.class_name) for r in records})
    if len(classes) < 2:
        raise AuditError("an audit needs at least two classes with images")
    split_of = {r.path: r.split for r in records} if scan.presplit else dataset_splits(scan, config)
    paths = [r.path for r in records]
    feats = compute_features(base, paths, config, emit=emit, cancel=cancel, cache_root=cache_root)
    keep_rows = np.flatnonzero(feats.ok)
    paths = [paths[i] for i in keep_rows]
    index = {c: i for i, c in enumerate(classes)}
    labels = np.asarray([index[str(records[i].class_name)] for i in keep_rows], np.int64)
    splits = [split_of.get(p) for p in paths]
    x = feats.x[keep_rows]
    suspects, dups = analyse(
        x, labels, classes, paths, splits, threshold=threshold, folds=folds, seed=int(config.seed),
        kept=kept_paths(base), cancel=cancel,
    )
    return AuditReport(
        root=base,
        classes=classes,
        paths=paths,
        labels=labels,
        splits=splits,
        suspects=suspects,
        near_duplicates=dups,
        skipped=feats.skipped,
        features=x,
        cache_hits=feats.hits,
        cache_computed=feats.computed,
        seconds=time.perf_counter() - started,
    )
