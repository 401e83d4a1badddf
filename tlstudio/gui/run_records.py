"""The project's entries for runs the Train page starts: finished or cancelled with a model, or
interrupted (stopped by closing the window, or by the engine's death) and waiting to be resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlstudio.core import run_folder
from tlstudio.core.project import RunRecord

INTERRUPTED = "interrupted"


def _read_summary(run_dir: Path) -> run_folder.Summary:
    try:
        return run_folder.read_summary(run_dir)
    except run_folder.RunError:
        return run_folder.Summary()


def _record(run_dir: Path, config: Any, **fields: Any) -> RunRecord:
    summary = _read_summary(run_dir)
    return RunRecord(
        run_dir=str(run_dir),
        name=run_dir.name,
        created=str(summary.get("created", "")),
        base=str(summary.get("base") or config.base),
        frozen_summary=str(summary.get("frozen_summary", "")),
        **fields,
    )


def finished_record(result: Any, config: Any) -> RunRecord:
    """The entry of a run that left a model (``result`` is the worker's TrainResult)."""
    return _record(
        Path(result.run_dir),
        config,
        status=str(result.status),
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        epochs_run=int(result.epochs_run),
        train_seconds=float(result.train_seconds),
    )


def interrupted_record(run_dir: Path, config: Any, epochs_done: int) -> RunRecord:
    """The entry of a run stopped part-way: the project remembers it, and the Train page offers Resume."""
    return _record(run_dir, config, status=INTERRUPTED, epochs_run=int(epochs_done))
