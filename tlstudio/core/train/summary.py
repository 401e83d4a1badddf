"""The run summary (``run.json``) and the result files a finished run leaves in its folder.

Kept apart from the phases in ``trainer`` so that what a run records is read in one place.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from tlstudio.core import run_folder
from tlstudio.core.atomic import write_json
from tlstudio.core.train.engines import features_record
from tlstudio.core.train.run_data import chosen_val_fraction


class StageClock:
    """Wall seconds of each stage of a run (``run.json`` "stage_seconds"), to see where a run's time goes.

    ``with clock("features"): ...`` adds the time of the block to that stage (a stage run twice adds up).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)


def run_summary(trainer: Any, status: str, **extra: Any) -> dict[str, Any]:
    """The ``run.json`` record of a run in its present state.

    Parameters
    ----------
    trainer : _Trainer
        The running trainer (its config, data, progress and outcome are read).
    status : str
        One of the ``run_folder.STATUS_*`` values.
    **extra
        ``val_accuracy`` and ``test_accuracy`` once known.

    Returns
    -------
    dict
        The summary, ready for ``run_folder.write_summary``.
    """
    config = trainer.config
    assert config is not None
    trainer.ckpt.created = trainer.ckpt.created or run_folder.now_iso()
    data = trainer.data
    files = data.files if data is not None else {}
    return {
        "status": status,
        "created": trainer.ckpt.created,
        "updated": run_folder.now_iso(),
        "base": config.base_model_path or config.base,
        "alpha": config.alpha,
        "input_size": trainer.size or config.input_size,
        "resize_policy": config.resize_policy,
        "classes": list(data.classes) if data is not None else [],
        "val_accuracy": extra.get("val_accuracy"),
        "test_accuracy": extra.get("test_accuracy"),
        "epochs_run": trainer.progress.run_epoch,
        "train_seconds": round(trainer.progress.seconds(), 3),
        "num_train": len(files["train"]) if files else 0,
        "num_val": len(files["val"]) if files else 0,
        "num_test": len(files["test"]) if files else 0,
        "val_fraction": chosen_val_fraction(trainer.data, config),
        "frozen_summary": trainer.frozen_summary,
        **trainer.outcome,
        "features": features_record(trainer.engines, trainer.cached),
        # Where the head phase read the cached features from: "in memory" or "streamed" (over the budget).
        "head_features": trainer.cached.memory_record() if trainer.cached is not None else None,
        "stage_seconds": dict(getattr(getattr(trainer, "clock", None), "seconds", {})),
    }


def write_run_files(trainer: Any, status: str, evaluation: dict[str, Any]) -> tuple[float | None, float | None]:
    """Write history, evaluation, skipped files and the summary of a run that has ended.

    Parameters
    ----------
    trainer : _Trainer
        The trainer whose run ends.
    status : str
        ``run_folder.STATUS_FINISHED`` or ``STATUS_CANCELLED``.
    evaluation : dict
        What ``evaluate_files`` returned.

    Returns
    -------
    tuple
        The validation and test accuracy (``None`` for an empty split).
    """
    val = evaluation["splits"]["val"]
    val_acc = val["accuracy"] if val["n"] else None
    test = evaluation["splits"].get("test")
    test_acc = test["accuracy"] if test and test["n"] else None
    skipped = trainer.data.scan_skipped + [{"path": s.path, "reason": s.reason} for s in trainer.skip_log.all()]
    run_dir = trainer.run_dir
    write_json(run_dir / run_folder.HISTORY_FILE, trainer.progress.history())
    write_json(run_dir / run_folder.EVALUATION_FILE, evaluation)
    write_json(run_dir / run_folder.SKIPPED_FILE, skipped)
    run_folder.write_summary(run_dir, run_summary(trainer, status, val_accuracy=val_acc, test_accuracy=test_acc))
    return val_acc, test_acc
