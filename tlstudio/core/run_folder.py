"""The run folder: what one training run leaves on disk, and reading it back.

::

    RUN_DIR/
      config.json       TrainConfig dict + "classes" + "split" {"train": [paths], "val": [...], "test": [...]}
      labels.txt        one class per line, in index order
      model.keras       best weights; a plain Keras model taking raw RGB 0-255 images
      history.json      {"epochs": [...], "batches": [...]}
      evaluation.json   metrics on val (and test), see tlstudio.core.evaluate
      skipped.json      [{"path", "reason"}] files dropped and why
      run.json          status and summary
      checkpoints/      per-epoch state for --resume

Every file is written atomically (tlstudio.core.atomic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlstudio.core.atomic import write_json, write_text
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import read_json

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.txt"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
EVALUATION_FILE = "evaluation.json"
SKIPPED_FILE = "skipped.json"
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"

#: run.json "status" values
STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_CANCELLED = "cancelled"
STATUS_FAILED = "failed"


class RunError(TlstudioError):
    """A run folder that is missing or cannot be read."""


@dataclass
class RunInfo:
    """Everything a finished (or interrupted) run left behind, read back from its folder.

    ``model_path`` is None when the run never got as far as saving a model.
    """

    run_dir: Path
    config: TrainConfig
    classes: list[str]
    split: dict[str, list[str]]
    history: dict[str, list[dict[str, Any]]]
    evaluation: dict[str, Any] | None
    summary: dict[str, Any]
    skipped: list[dict[str, str]] = field(default_factory=list)
    model_path: Path | None = None

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    @property
    def val_accuracy(self) -> float | None:
        return self.summary.get("val_accuracy")

    @property
    def test_accuracy(self) -> float | None:
        return self.summary.get("test_accuracy")

    @property
    def data_dir(self) -> Path:
        return Path(self.config.data_dir)


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return read_json(path, default)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None


def write_run_config(run_dir: Path, config: TrainConfig, classes: list[str], split: dict[str, list[str]]) -> None:
    """Write ``config.json`` and ``labels.txt``."""
    data = config.to_dict()
    data["classes"] = list(classes)
    # "split" holds both the split settings (fractions, seed) and the resulting file lists.
    data["split"] = {**data.get("split", {}), **{k: list(v) for k, v in split.items()}}
    write_json(run_dir / CONFIG_FILE, data)
    write_text(run_dir / LABELS_FILE, "".join(f"{c}\n" for c in classes))


def read_run_config(run_dir: Path) -> tuple[TrainConfig, list[str], dict[str, list[str]]]:
    """The configuration, classes and split recorded in ``config.json``."""
    data = _read_json(Path(run_dir) / CONFIG_FILE)
    if data is None:
        raise RunError(f"{run_dir} is not a training run (no {CONFIG_FILE})")
    config, classes, split = config_from_json(data, source=Path(run_dir) / CONFIG_FILE)
    if not classes:
        labels = Path(run_dir) / LABELS_FILE
        if labels.is_file():
            classes = [ln.strip() for ln in labels.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return config, classes, split


def config_from_json(data: Any, source: str | Path = "configuration") -> tuple[TrainConfig, list[str], dict[str, list[str]]]:
    """A TrainConfig from a plain config JSON object or from a run's ``config.json``.

    Returns the configuration, the run's classes (empty for a plain configuration) and its
    split file lists (empty when absent).
    """
    if not isinstance(data, dict):
        raise RunError(f"{source} is not a JSON object")
    data = dict(data)
    classes = [str(c) for c in (data.pop("classes", []) or [])]
    split_data = data.get("split")
    lists: dict[str, list[str]] = {}
    if isinstance(split_data, dict):
        split_data = dict(split_data)
        for name in ("train", "val", "test"):
            if isinstance(split_data.get(name), list):
                lists[name] = [str(p) for p in split_data.pop(name)]
        data["split"] = split_data
    return TrainConfig.from_dict(data), classes, lists


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_json(Path(run_dir) / RUN_FILE, summary)


def load_run(run_dir: str | Path) -> RunInfo:
    """Read a run folder.

    Parameters
    ----------
    run_dir
        A folder written by :func:`tlstudio.core.train.trainer.train`.

    Returns
    -------
    RunInfo
        The configuration, classes, split, history, evaluation (None when the run did not get
        that far), summary (``run.json``), skipped files and the model path (None when absent).

    Raises
    ------
    RunError
        When the folder is not a run or a file in it is damaged.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run folder not found: {run_dir}")
    config, classes, split = read_run_config(run_dir)
    history = _read_json(run_dir / HISTORY_FILE, {"epochs": [], "batches": []})
    summary = _read_json(run_dir / RUN_FILE, {}) or {}
    model = run_dir / MODEL_FILE
    return RunInfo(
        run_dir=run_dir,
        config=config,
        classes=classes,
        split=split,
        history={"epochs": list(history.get("epochs", [])), "batches": list(history.get("batches", []))},
        evaluation=_read_json(run_dir / EVALUATION_FILE, None),
        summary=summary,
        skipped=list(_read_json(run_dir / SKIPPED_FILE, []) or []),
        model_path=model if model.is_file() else None,
    )
