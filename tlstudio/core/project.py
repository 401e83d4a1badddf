"""The project file: a JSON document with ``schema_version`` that holds a user's whole setup.

It stores the dataset folder (relative to the project file where possible), the training
configuration (split, base model, weights, head, layer-tree frozen state, hyper-parameters) and
the list of runs. Writes are atomic; a corrupt or newer file raises :class:`ProjectError` and is
never overwritten by loading it.

Persistence around the file lives here too, free of Qt: :func:`save_project` (refuses to overwrite a
project written by a newer tlstudio, then drops the recovery copies it supersedes), :func:`write_autosave`
(a recovery copy beside the file, or in the data home while untitled) and :func:`recovery_for`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core import paths
from tlstudio.core.atomic import write_json
from tlstudio.core.config import ConfigError, TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import JsonError, loads_json, read_json
from tlstudio.core.project_schema import repair_fields, repair_run

PROJECT_SCHEMA_VERSION = 1
PROJECT_SUFFIX = ".tlsproj"


class ProjectError(TlstudioError):
    """A project file that cannot be read or written."""


@dataclass
class RunRecord:
    """One training run listed in a project; the run folder holds the details."""

    run_dir: str
    name: str = ""
    created: str = ""  # ISO 8601
    base: str = ""
    status: str = ""  # "finished" | "cancelled" | "failed" | "interrupted" (resumable)
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0
    frozen_summary: str = ""


@dataclass
class Project:
    """Everything the app's pages edit, in one object."""

    name: str = "Untitled"
    train: TrainConfig = field(default_factory=TrainConfig)
    runs: list[RunRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # UI-only settings worth keeping with the project
    schema_version: int = PROJECT_SCHEMA_VERSION
    #: What opening the file repaired (one line each); never saved.
    repairs: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def dataset_dir(self) -> str:
        return self.train.data_dir

    def to_dict(self, project_file: Path | None = None) -> dict[str, Any]:
        data = asdict(self)
        data.pop("repairs", None)
        data["train"] = self.train.to_dict()
        if project_file is not None:
            data["train"]["data_dir"] = _relative(self.train.data_dir, project_file.parent)
            for run in data["runs"]:
                run["run_dir"] = _relative(run["run_dir"], project_file.parent)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], project_file: Path | None = None) -> Project:
        if not isinstance(data, dict):
            raise ProjectError("not a tlstudio project (the file does not hold a JSON object)")
        version = data.get("schema_version")
        if not isinstance(version, int):
            raise ProjectError("not a tlstudio project (no schema_version)")
        if version > PROJECT_SCHEMA_VERSION:
            raise ProjectError(
                f"this project was saved by a newer tlstudio (schema {version}, this one reads up to "
                f"{PROJECT_SCHEMA_VERSION}); please update tlstudio to open it"
            )
        base = project_file.parent if project_file is not None else None
        notes: list[str] = []  # what was repaired, shown to the user
        try:
            train_data = repair_fields(TrainConfig, data.get("train") or {}, "train", notes)
            if base is not None and train_data.get("data_dir"):
                train_data["data_dir"] = _absolute(train_data["data_dir"], base)
            train = TrainConfig.from_dict(train_data)
            train.validate()
            raw_runs = data.get("runs") or []
            if not isinstance(raw_runs, list):
                notes.append("the list of runs was not a list; it is left empty")
                raw_runs = []
            runs = []
            for i, r in enumerate(raw_runs):
                values = repair_run(r, i, notes)
                if values is None:
                    continue
                if base is not None:
                    values["run_dir"] = _absolute(values["run_dir"], base)
                runs.append(RunRecord(**values))
        except (ConfigError, TypeError, KeyError, ValueError) as exc:
            raise ProjectError(f"the project file is damaged: {exc}") from None
        extra = data.get("extra") or {}
        if not isinstance(extra, dict):
            notes.append("the project's display settings were not valid; defaults are used")
            extra = {}
        name = data.get("name")
        project = cls(
            name=name if isinstance(name, str) and name else "Untitled",
            train=train,
            runs=runs,
            extra=dict(extra),
            schema_version=PROJECT_SCHEMA_VERSION,
        )
        project.repairs = notes
        return project

    def save(self, path: str | Path) -> None:
        """Write the project atomically to ``path``."""
        path = Path(path)
        try:
            write_json(path, self.to_dict(path))
        except OSError as exc:
            raise ProjectError(f"cannot save the project to {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Project:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProjectError(f"project file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProjectError(f"cannot read the project file {path}: {exc}") from None
        try:
            data = loads_json(text, source=path.name)
        except JsonError as exc:
            raise ProjectError(f"the project file is damaged ({exc})") from None
        return cls.from_dict(data, path)


def autosave_path(project_path: str | Path | None) -> Path:
    """Where the recovery copy of a project goes: beside its file, or in the data home while untitled."""
    if project_path is not None:
        return Path(str(project_path) + ".autosave")
    return paths.data_home() / "autosave" / f"untitled{PROJECT_SUFFIX}"


def write_autosave(project: Project, project_path: str | Path | None) -> Path:
    """Write the recovery copy of ``project`` (the project file itself is untouched); returns its path.

    Raises :class:`ProjectError` when it cannot be written.
    """
    target = autosave_path(project_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_json(target, project.to_dict(Path(project_path) if project_path is not None else target))
    except OSError as exc:
        raise ProjectError(f"cannot write the recovery copy {target}: {exc.strerror or exc}") from None
    return target


def recovery_for(project_path: str | Path | None) -> Path | None:
    """The recovery copy of a project when it holds changes newer than the project file, else None."""
    copy = autosave_path(project_path)
    if not copy.is_file():
        return None
    if project_path is not None:
        try:
            if copy.stat().st_mtime <= Path(project_path).stat().st_mtime:
                return None
        except OSError:  # the project file is gone: the copy is all there is
            pass
    return copy


def load_recovery(copy: str | Path, project_path: str | Path | None) -> Project:
    """Read a recovery copy; paths in it are relative to ``project_path`` (to the copy while untitled)."""
    copy = Path(copy)
    try:
        data = read_json(copy)
    except (OSError, ValueError) as exc:
        raise ProjectError(f"the recovery copy {copy.name} cannot be read: {exc}") from None
    return Project.from_dict(data, Path(project_path) if project_path is not None else copy)


def discard_autosave(project_path: str | Path | None) -> None:
    """Delete the recovery copy of a project, if there is one."""
    try:
        autosave_path(project_path).unlink()
    except OSError:
        pass


def check_overwritable(path: str | Path) -> None:
    """Refuse to overwrite a project written by a newer tlstudio (it may hold settings this one would drop)."""
    path = Path(path)
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > PROJECT_SCHEMA_VERSION:
        raise ProjectError(f"{path.name} was saved by a newer tlstudio; save under another name to keep it intact")


def save_project(project: Project, path: str | Path, previous_path: str | Path | None = None) -> None:
    """Save ``project`` to ``path`` and drop the recovery copies the saved file supersedes.

    Parameters
    ----------
    project : Project
        What to write.
    path : str or Path
        The project file; an existing one written by a newer tlstudio is refused (:class:`ProjectError`).
    previous_path : str or Path, optional
        Where the project was saved before (None while untitled): its recovery copy is dropped too.
    """
    path = Path(path)
    if path.exists():
        check_overwritable(path)
    project.save(path)
    discard_autosave(previous_path)
    discard_autosave(path)


def _relative(p: str, base: Path) -> str:
    """``p`` relative to ``base`` when it lies inside it (it moves with the project), else absolute.

    A path outside the project's folder stays absolute: a relative ``../../photos`` would point
    somewhere else once the project folder is moved or copied.
    """
    if not p:
        return p
    target, root = Path(p).resolve(), base.resolve()
    if target.is_relative_to(root):
        return target.relative_to(root).as_posix() or "."
    return str(target)


def _absolute(p: str, base: Path) -> str:
    if not p:
        return p
    q = Path(p)
    return str(q if q.is_absolute() else (base / q).resolve())
