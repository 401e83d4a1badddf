"""The project file: a JSON document with ``schema_version`` that holds a user's whole setup.

It stores the dataset folder (relative to the project file where possible), the training
configuration (split, base model, weights, head, layer-tree frozen state, hyper-parameters) and
the list of runs. Writes are atomic; a corrupt or newer file raises :class:`ProjectError` and is
never overwritten by loading it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core.atomic import write_json
from tlstudio.core.config import ConfigError, TrainConfig
from tlstudio.core.errors import TlstudioError

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
    status: str = ""  # "finished" | "cancelled" | "failed"
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

    @property
    def dataset_dir(self) -> str:
        return self.train.data_dir

    def to_dict(self, project_file: Path | None = None) -> dict[str, Any]:
        data = asdict(self)
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
        try:
            train_data = dict(data.get("train") or {})
            if base is not None and train_data.get("data_dir"):
                train_data["data_dir"] = _absolute(train_data["data_dir"], base)
            train = TrainConfig.from_dict(train_data)
            runs = []
            for r in data.get("runs") or []:
                r = dict(r)
                if base is not None:
                    r["run_dir"] = _absolute(r["run_dir"], base)
                runs.append(RunRecord(**r))
        except (ConfigError, TypeError, KeyError) as exc:
            raise ProjectError(f"the project file is damaged: {exc}") from None
        return cls(
            name=str(data.get("name") or "Untitled"),
            train=train,
            runs=runs,
            extra=dict(data.get("extra") or {}),
            schema_version=PROJECT_SCHEMA_VERSION,
        )

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
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProjectError(f"the project file {path.name} is damaged (not valid JSON: {exc.msg}, line {exc.lineno})") from None
        return cls.from_dict(data, path)


def _relative(p: str, base: Path) -> str:
    if not p:
        return p
    try:
        return os.path.relpath(Path(p).resolve(), base.resolve()).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return str(Path(p).resolve())


def _absolute(p: str, base: Path) -> str:
    if not p:
        return p
    q = Path(p)
    return str(q if q.is_absolute() else (base / q).resolve())
