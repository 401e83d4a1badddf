"""The engine's Evaluate request: a model's metrics on labelled images, with progress and cancel.

A run is evaluated on its own validation and test splits (the file lists in its ``config.json``);
any model can be evaluated on a folder of class sub-folders named like its labels. The metrics
are core's (:func:`tlstudio.core.evaluate.evaluate_predictions`), so they read exactly like the
``evaluation.json`` a training writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.errors import TlstudioError
from tlstudio.engine import protocol as p
from tlstudio.engine.handlers import CallContext

#: Images per model call: the progress and cancel granularity.
CHUNK = 32


def _run_splits(run_dir: Path) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """The run's dataset folder and its val/test files as (relative path, class name)."""
    from tlstudio.core.data.scan import scan_dataset
    from tlstudio.core.run_folder import read_run_config

    config, _classes, split = read_run_config(run_dir)
    root = Path(config.data_dir)
    if not root.is_dir():
        raise TlstudioError(f"the run's dataset folder {root} is missing; evaluate on a folder instead")
    by_path = {r.path: r.class_name for r in scan_dataset(root).usable()}
    splits = {}
    for name in ("val", "test"):
        files = [(rel, by_path[rel]) for rel in split.get(name, []) if by_path.get(rel)]
        if files:
            splits[name] = files
    return str(root), splits


def _folder_split(folder: Path) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    from tlstudio.core.data.scan import scan_dataset

    if not folder.is_dir():
        raise TlstudioError(f"no such folder: {folder}")
    files = [(r.path, r.class_name) for r in scan_dataset(folder).usable() if r.class_name]
    return str(folder), {"folder": files}


def evaluate(request: p.Evaluate, ctx: CallContext) -> dict[str, Any]:
    """Evaluate ``request.model``; returns the ``evaluation.json`` object (see :func:`build_evaluation`)."""
    from tlstudio.core.evaluate import build_evaluation, evaluate_predictions

    predictor = ctx.models.get(request.model)
    if request.folder:
        root, splits = _folder_split(Path(request.folder))
    elif predictor.run_dir is not None:
        root, splits = _run_splits(Path(predictor.run_dir))
    else:
        raise TlstudioError("a model file has no splits of its own: choose a folder of labelled images")
    index = {name: i for i, name in enumerate(predictor.labels)}
    warnings = []
    unknown = sorted({c for files in splits.values() for _, c in files if c not in index})
    if unknown:
        warnings.append(f"images of classes the model does not know were left out: {', '.join(unknown)}")
    splits = {name: [(rel, c) for rel, c in files if c in index] for name, files in splits.items()}
    total = sum(len(files) for files in splits.values())
    if total == 0:
        raise TlstudioError("there are no images of the model's classes to evaluate on")
    done = 0
    ctx.emit(p.StepProgress(0, total, "Evaluating..."))
    results = {}
    for name, files in splits.items():
        probs, labels, kept = [], [], []
        for start in range(0, len(files), CHUNK):
            ctx.check_cancel()
            chunk = files[start : start + CHUNK]
            batch, errors = predictor.preprocess([str(Path(root) / rel) for rel, _ in chunk])
            good = [i for i, e in enumerate(errors) if e is None]
            if good:
                probs.append(predictor.predict_array(batch[good]))
                labels.extend(index[chunk[i][1]] for i in good)
                kept.extend(chunk[i][0] for i in good)
            done += len(chunk)
            ctx.emit(p.StepProgress(done, total, f"Evaluating {name}..."))
        matrix = np.concatenate(probs) if probs else np.zeros((0, len(index)), np.float32)
        results[name] = evaluate_predictions(labels, matrix, predictor.labels, kept)
    return build_evaluation(predictor.labels, root, results, warnings)
