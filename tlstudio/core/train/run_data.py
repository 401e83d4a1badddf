"""The images of a run: scan (when not given), split (or the saved split when resuming), file sets."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.config import TrainConfig
from tlstudio.core.data.pipeline import FileSet, SkipLog, make_dataset
from tlstudio.core.errors import TlstudioError

SPLITS = ("train", "val", "test")
#: Classes whose counts differ by more than this factor get balanced class weights ("auto").
IMBALANCE_FACTOR = 1.5


class TrainingError(TlstudioError):
    """Training could not be run or completed."""


@dataclass
class RunData:
    """The run's classes and one :class:`FileSet` per split."""

    root: Path
    classes: list[str]
    files: dict[str, FileSet]
    split_paths: dict[str, list[str]]
    scan: Any
    scan_skipped: list[dict[str, str]] = field(default_factory=list)


def prepare_data(
    config: TrainConfig,
    *,
    scan: Any,
    skip_log: SkipLog,
    log: Callable[..., None],
    cancel: threading.Event,
    saved: tuple[list[str], dict[str, list[str]]] | None = None,
) -> RunData:
    """Scan ``config.data_dir`` (unless ``scan`` is of it) and split it, or reuse a resumed run's split.

    Parameters
    ----------
    config
        The run's configuration; ``data_dir`` must be an absolute path.
    scan
        A :class:`~tlstudio.core.data.scan.DatasetScan` already made, or None.
    skip_log
        Files of a saved split that are no longer usable are added here.
    log, cancel
        Log lines; the cancel request (honoured by the scan).
    saved
        ``(classes, split paths)`` of the run being resumed.

    Raises
    ------
    TrainingError
        When there are no training or no validation images, or a resumed run's classes changed.
    """
    from tlstudio.core.data.split import split_files, split_to_paths

    if scan is None or Path(scan.root).resolve() != Path(config.data_dir):
        from tlstudio.core.data.scan import scan_dataset

        log(f"scanning {config.data_dir}")
        scan = scan_dataset(config.data_dir, cancel=cancel)
    root = Path(scan.root)
    if saved is not None:
        classes, split_paths = saved
        check_same_classes(classes, scan.classes)
        by_path = {r.path: r for r in scan.usable()}
        parts: dict[str, list[Any]] = {}
        for name in SPLITS:
            parts[name] = []
            for p in split_paths.get(name, []):
                rec = by_path.get(p)
                if rec is None:
                    skip_log.add(p, "no longer a usable image in the dataset folder")
                else:
                    parts[name].append(rec)
    else:
        parts = split_files(scan, config.split)
        present = {r.class_name for s in parts.values() for r in s}
        classes = [c for c in scan.classes if c in present]
        split_paths = split_to_paths(parts)
    index = {c: i for i, c in enumerate(classes)}
    files: dict[str, FileSet] = {}
    for name in SPLITS:
        recs = [r for r in parts.get(name, []) if r.class_name in index]
        files[name] = FileSet(
            [str(root / r.path) for r in recs],
            [r.path for r in recs],
            np.asarray([index[r.class_name] for r in recs], dtype=np.int32),
        )
    if len(files["train"]) == 0 or len(files["val"]) == 0:
        raise TrainingError("there are no training or no validation images")
    missing = [c for c in classes if not np.any(files["train"].labels == index[c])]
    if missing:
        log(f"no training images for class(es) {', '.join(missing)}", "warning")
    skipped = [{"path": r.path, "reason": r.reason or "skipped"} for r in scan.skipped()]
    return RunData(root, list(classes), files, split_paths, scan, skipped)


def check_same_classes(saved: list[str], now: list[str]) -> None:
    """Refuse to resume a run whose dataset no longer has its classes (a folder added, removed or renamed).

    Raises
    ------
    TrainingError
        One line naming the classes that are new and those that are gone.
    """
    added, gone = sorted(set(now) - set(saved)), sorted(set(saved) - set(now))
    if not added and not gone:
        return
    parts = ([f"new: {', '.join(added)}"] if added else []) + ([f"gone: {', '.join(gone)}"] if gone else [])
    raise TrainingError(
        f"cannot resume: the dataset's classes changed since the run started ({'; '.join(parts)}); "
        "a resumed run keeps its classes: put the class folders back as they were, or start a new run"
    )


def class_weights_for(
    labels: np.ndarray, classes: int | list[str], mode: str = "auto", log: Callable[[str], None] | None = None
) -> np.ndarray:
    """Weight per class: all 1, or "balanced" (n / (k * count)) when ``mode`` is "auto" and the
    largest class has more than :data:`IMBALANCE_FACTOR` times the images of the smallest.

    ``classes`` is the number of classes or their names (then balanced weights are logged by name).
    """
    num_classes = classes if isinstance(classes, int) else len(classes)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes, dtype=np.float32)
    present = counts > 0
    if mode == "auto" and present.sum() > 1:
        lo, hi = counts[present].min(), counts[present].max()
        if hi > IMBALANCE_FACTOR * lo:
            weights[present] = (counts.sum() / (present.sum() * counts[present])).astype(np.float32)
    if log is not None and not isinstance(classes, int) and np.any(weights != 1.0):
        named = ", ".join(f"{c} {w:.2f}" for c, w in zip(classes, weights, strict=True))
        log(f"classes are imbalanced: using balanced class weights ({named})")
    return weights


def image_datasets(
    files: dict[str, FileSet],
    config: TrainConfig,
    *,
    size: int,
    phase_seed: int,
    class_weights: np.ndarray,
    skip_log: SkipLog,
    augmenter: Any,
) -> tuple[Any, Any, int]:
    """Training and validation ``tf.data`` pipelines of ``(image, one-hot label, weight)``, and steps per epoch."""
    import tensorflow as tf

    train_fs, val_fs = files["train"], files["val"]
    train = make_dataset(
        train_fs, image_size=size, resize_policy=config.resize_policy, batch_size=int(config.batch_size),
        shuffle=True, seed=phase_seed, sample_weights=class_weights[train_fs.labels], skip_log=skip_log,
        augment=augmenter,
    )
    val = make_dataset(
        val_fs, image_size=size, resize_policy=config.resize_policy, batch_size=int(config.batch_size),
        skip_log=skip_log,
    )
    k = len(class_weights)

    def onehot(images: Any, labels: Any, weights: Any) -> tuple[Any, Any, Any]:
        return images, tf.one_hot(labels, k), weights

    steps = math.ceil(len(train_fs) / int(config.batch_size))
    return train.map(onehot), val.map(onehot), steps


def chosen_val_fraction(data: RunData | None, config: TrainConfig) -> float | None:
    """The validation share the split used (the automatic choice when ``val_fraction`` is None), for run.json."""
    if getattr(data, "scan", None) is None:
        return config.split.val_fraction
    from tlstudio.core.data.split import resolve_val_fraction

    return round(resolve_val_fraction(data.scan, config.split), 4)  # type: ignore[union-attr]
