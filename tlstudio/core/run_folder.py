"""The run folder: what one training run leaves on disk, written and read back here only.

::

    RUN_DIR/
      config.json       TrainConfig dict + "classes" + "split" {"train": [paths], "val": [...], "test": [...]}
      labels.txt        one class per line, in index order
      model.keras       best weights; a plain Keras model taking raw RGB 0-255 images
      history.json      {"epochs": [...], "batches": [...]}
      evaluation.json   metrics on val (and test), see tlstudio.core.evaluate
      skipped.json      [{"path", "reason"}] files dropped and why
      run.json          status and summary (:class:`Summary`)
      error.log         the traceback of a run that failed with an unexpected error
      checkpoints/      per-epoch state (state.json + arrays) for --resume
      .lock             locked by the process writing the run (tlstudio.core.run_lock)

Every other module asks this one for a run's files (:func:`load_run`, :func:`read_summary`,
:func:`model_file`, ...), so the names above are spelled here and nowhere else. Every file is
written atomically (tlstudio.core.atomic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlstudio.core.atomic import write_json, write_text
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled, Interrupted, TlstudioError
from tlstudio.core.json_file import read_json

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.txt"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
EVALUATION_FILE = "evaluation.json"
SKIPPED_FILE = "skipped.json"
RUN_FILE = "run.json"
ERROR_FILE = "error.log"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"  # inside CHECKPOINT_DIR
LOCK_FILE = ".lock"  # held by the process writing the run (tlstudio.core.run_lock)

#: run.json "status" values
STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_CANCELLED = "cancelled"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"  # stopped by a signal, a second Ctrl-C or a killed process; resumable
STATUS_UNKNOWN = "unknown"


class RunError(TlstudioError):
    """A run folder that is missing or cannot be read."""


@dataclass(frozen=True)
class Summary:
    """``run.json``: a run's status and headline numbers.

    Keys this version does not know are kept in ``extra``. It reads like the JSON object too
    (``summary["epochs_run"]``, ``summary.get("base")``) for code that shows it as a table.
    """

    status: str = STATUS_UNKNOWN
    created: str = ""
    updated: str = ""
    base: str = ""
    alpha: float | None = None
    input_size: Any = None
    resize_policy: str = "stretch"
    classes: tuple[str, ...] = ()
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0
    num_train: int = 0
    num_val: int = 0
    num_test: int = 0
    frozen_summary: str = ""
    error: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """A Summary from a ``run.json`` object; wrong types become the field's default."""
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known or value is None:
                continue
            default = known[name].default
            if name == "classes":
                values[name] = tuple(str(c) for c in value) if isinstance(value, list) else ()
            elif isinstance(default, str):
                values[name] = str(value)
            elif name in ("epochs_run", "num_train", "num_val", "num_test"):
                values[name] = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
            elif name in ("alpha", "val_accuracy", "test_accuracy", "train_seconds"):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values[name] = float(value)
            else:
                values[name] = value
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The ``run.json`` object."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data["classes"] = list(self.classes)
        if not data["error"]:
            del data["error"]
        data.update(self.extra)
        return data

    def get(self, key: str, default: Any = None) -> Any:
        value = self.to_dict().get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


@dataclass(frozen=True)
class Run:
    """Everything a run left behind, read back from its folder.

    ``model_path`` is None when the run never got as far as saving a model; ``evaluation`` is None
    when it never got as far as evaluating it.
    """

    run_dir: Path
    config: TrainConfig
    classes: list[str]
    split: dict[str, list[str]]
    history: dict[str, list[dict[str, Any]]]
    evaluation: dict[str, Any] | None
    summary: Summary
    skipped: list[dict[str, str]] = field(default_factory=list)
    model_path: Path | None = None

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def val_accuracy(self) -> float | None:
        return self.summary.val_accuracy

    @property
    def test_accuracy(self) -> float | None:
        return self.summary.test_accuracy

    @property
    def data_dir(self) -> Path:
        return Path(self.config.data_dir)

    @property
    def input_size(self) -> Any:
        """What the run resized images to: the summary's (the base's default filled in), else the config's."""
        return self.summary.input_size or self.config.input_size

    def split_images(self, names: tuple[str, ...] | list[str]) -> list[Path]:
        """Existing image files of the first of ``names`` that has any (paths are relative to the data folder)."""
        for name in names:
            files = [self.data_dir / p for p in self.split.get(name) or []]
            files = [f for f in files if f.is_file()]
            if files:
                return files
        return []


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return read_json(path, default)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None


def _read_object(path: Path, default: Any) -> Any:
    data = _read_json(path, default)
    if data is not default and not isinstance(data, dict):
        raise RunError(f"cannot read {path}: not a JSON object")
    return data


# --- where things are ------------------------------------------------------------------------------


def model_file(run_dir: str | Path) -> Path:
    """Where a run keeps its model (whether or not it is there yet)."""
    return Path(run_dir) / MODEL_FILE


def has_model(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a trained model."""
    return model_file(run_dir).is_file()


def labels_file(folder: str | Path) -> Path:
    """The class names file of a run folder or of an export folder."""
    return Path(folder) / LABELS_FILE


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def is_run(folder: str | Path) -> bool:
    """True when ``folder`` holds a run's configuration or summary (a run folder, finished or not)."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() or (folder / RUN_FILE).is_file()


# --- writing -------------------------------------------------------------------------------------


def write_run_config(run_dir: Path, config: TrainConfig, classes: list[str], split: dict[str, list[str]]) -> None:
    """Write ``config.json`` and ``labels.txt``."""
    data = config.to_dict()
    data["classes"] = list(classes)
    # "split" holds both the split settings (fractions, seed) and the resulting file lists.
    data["split"] = {**data.get("split", {}), **{k: list(v) for k, v in split.items()}}
    write_json(Path(run_dir) / CONFIG_FILE, data)
    write_text(Path(run_dir) / LABELS_FILE, "".join(f"{c}\n" for c in classes))


def write_summary(run_dir: Path, summary: Mapping[str, Any] | Summary) -> None:
    """Write ``run.json``."""
    data = summary.to_dict() if isinstance(summary, Summary) else dict(summary)
    write_json(Path(run_dir) / RUN_FILE, data)


def write_history(run_dir: Path, history: Mapping[str, Any]) -> None:
    write_json(Path(run_dir) / HISTORY_FILE, dict(history))


def write_evaluation(run_dir: Path, evaluation: Mapping[str, Any] | None) -> None:
    write_json(Path(run_dir) / EVALUATION_FILE, evaluation)


def write_skipped(run_dir: Path, skipped: list[dict[str, str]]) -> None:
    write_json(Path(run_dir) / SKIPPED_FILE, list(skipped))


def write_error_log(run_dir: Path, text: str) -> None:
    write_text(Path(run_dir) / ERROR_FILE, text)


# --- reading -------------------------------------------------------------------------------------


def read_run_config(run_dir: Path) -> tuple[TrainConfig, list[str], dict[str, list[str]]]:
    """The configuration, classes and split recorded in ``config.json``."""
    data = _read_json(Path(run_dir) / CONFIG_FILE)
    if data is None:
        raise RunError(f"{run_dir} is not a training run (no {CONFIG_FILE})")
    config, classes, split = config_from_json(data, source=Path(run_dir) / CONFIG_FILE)
    if not classes:
        labels = labels_file(run_dir)
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
    try:
        return TrainConfig.from_dict(data), classes, lists
    except (TypeError, ValueError) as exc:
        raise RunError(f"{source} is damaged: {exc}") from None


def read_summary(run_dir: str | Path) -> Summary:
    """``run.json`` of a run; an empty :class:`Summary` (status "unknown") when there is none.

    A run that says "running" while no live process holds its lock was killed: it is read as
    "interrupted" (and can be resumed).

    Raises
    ------
    RunError
        When the file is damaged.
    """
    summary = Summary.from_dict(_read_object(Path(run_dir) / RUN_FILE, {}))
    if summary.status == STATUS_RUNNING:
        from tlstudio.core.run_lock import is_locked

        if not is_locked(run_dir):
            summary = replace(summary, status=STATUS_INTERRUPTED)
    return summary


def failure_status(exc: BaseException, quitting: bool = False) -> str:
    """The status of a run that stopped with ``exc``: "interrupted" when it stopped because the app is
    closing (``quitting``, or :class:`~tlstudio.core.errors.Interrupted`), "cancelled" or "failed"."""
    if isinstance(exc, Interrupted) or (quitting and isinstance(exc, Cancelled)):
        return STATUS_INTERRUPTED
    return STATUS_CANCELLED if isinstance(exc, Cancelled) else STATUS_FAILED


def mark_interrupted(run_dir: str | Path) -> None:
    """Say "interrupted" in ``run.json`` of a run that was stopped while it said "running"."""
    try:
        data = _read_object(Path(run_dir) / RUN_FILE, None)
    except RunError:
        return
    if isinstance(data, dict) and data.get("status") == STATUS_RUNNING:
        write_summary(Path(run_dir), {**data, "status": STATUS_INTERRUPTED, "updated": now_iso()})


def check_resumable(run_dir: str | Path) -> None:
    """Refuse to resume a run whose checkpoint is damaged, rather than restart it from epoch 0.

    Raises
    ------
    RunError
        When its configuration or checkpoint state cannot be read, the state
        is missing although epochs were completed, or a checkpoint file it names is missing or damaged.
    """
    run_dir = Path(run_dir)
    read_run_config(run_dir)
    if read_summary(run_dir).status == STATUS_FINISHED:
        return  # nothing to resume; the trainer says so (its checkpoints were cleared at the end)
    state_path = checkpoint_dir(run_dir) / STATE_FILE
    how = "start a new run (the model of the run, if any, is kept)"
    if not state_path.exists():
        try:
            done = len(read_history(run_dir)["epochs"])
        except RunError:
            done = 0
        if done:
            raise RunError(f"cannot resume {run_dir}: {done} epoch(s) were completed but their checkpoint "
                           f"({CHECKPOINT_DIR}/{STATE_FILE}) is missing; {how}")
        return
    try:
        state = _read_object(state_path, None)
    except RunError as exc:
        raise RunError(f"cannot resume {run_dir}: its checkpoint is damaged ({exc}); {how}") from None
    if not isinstance(state, dict) or not isinstance(state.get("weights"), str):
        raise RunError(f"cannot resume {run_dir}: its checkpoint {STATE_FILE} is incomplete; {how}")
    for name in {state.get("weights"), state.get("optimizer")} - {None, ""}:
        _check_arrays(checkpoint_dir(run_dir) / str(name), run_dir, how)
    best: dict[str, Any] = state["best"] if isinstance(state.get("best"), dict) else {}
    if best.get("file") and (checkpoint_dir(run_dir) / str(best["file"])).exists():
        _check_arrays(checkpoint_dir(run_dir) / str(best["file"]), run_dir, how)


def _check_arrays(path: Path, run_dir: Path, how: str) -> None:
    """A checkpoint's .npz must open and its members must pass their CRC check."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise RunError(f"cannot resume {run_dir}: checkpoint file {path.name} is missing or damaged ({exc}); {how}") from None
    if bad is not None:
        raise RunError(f"cannot resume {run_dir}: checkpoint file {path.name} is damaged ({bad}); {how}")


def read_history(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``history.json``: ``{"epochs": [...], "batches": [...]}``, empty lists when absent."""
    data = _read_object(Path(run_dir) / HISTORY_FILE, {})
    return {key: [e for e in data.get(key) or [] if isinstance(e, dict)] for key in ("epochs", "batches")}


def read_evaluation(run_dir: str | Path) -> dict[str, Any] | None:
    """``evaluation.json`` (see :mod:`tlstudio.core.evaluate`), None when the run has none."""
    return _read_object(Path(run_dir) / EVALUATION_FILE, None) or None


def read_labels(folder: str | Path) -> list[str] | None:
    """The class names in ``labels.txt`` of a run or export folder, None when there is none."""
    path = labels_file(folder)
    if not path.is_file():
        return None
    from tlstudio.core.models.open_model import read_labels as parse_labels

    return parse_labels(path)


def load_run(run_dir: str | Path) -> Run:
    """Read a run folder.

    Parameters
    ----------
    run_dir
        A folder written by :func:`tlstudio.core.train.trainer.train`.

    Returns
    -------
    Run
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
    skipped = _read_json(run_dir / SKIPPED_FILE, [])
    return Run(
        run_dir=run_dir,
        config=config,
        classes=classes,
        split=split,
        history=read_history(run_dir),
        evaluation=read_evaluation(run_dir),
        summary=read_summary(run_dir),
        skipped=[s for s in skipped if isinstance(s, dict)] if isinstance(skipped, list) else [],
        model_path=model_file(run_dir) if has_model(run_dir) else None,
    )
