"""Checking a project file's contents before anything is built from them.

A project file is JSON that people edit, merge and copy by hand. Each value is checked against the
type its dataclass field declares (``TrainConfig``, ``RunRecord``): a value of the wrong type, a
number that is not finite, or an unknown run status is *repaired* (set back to its default) with a
message saying so; unknown keys are dropped with a message; values of the right type that cannot
work (a negative learning rate, fractions that leave no training images) *refuse* the file with
:class:`~tlstudio.core.config.ConfigError`'s one-line reason. Nothing here raises anything else.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

#: Statuses a run record may carry (run_folder's, plus "" for unknown).
RUN_STATUSES = ("", "running", "finished", "cancelled", "failed", "interrupted")


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (from JSON) is of the declared type ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list or hint is list:
        return isinstance(value, list)
    if is_dataclass(hint):
        return isinstance(value, dict)
    return True  # a type this check does not know: left to the dataclass


def repair_fields(cls: type, data: Any, where: str, notes: list[str]) -> dict[str, Any]:
    """``data`` with each field of dataclass ``cls`` of its declared type.

    Wrong-typed values go back to the field's default, unknown keys are dropped and nested
    dataclass fields are checked the same way; each change is added to ``notes`` as one line.
    """
    if not isinstance(data, dict):
        notes.append(f"{where} was not a set of values; defaults are used")
        return {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            notes.append(f"{where}: unknown setting {key!r} ignored")
            continue
        hint = hints.get(key, Any)
        if is_dataclass(hint) and isinstance(value, dict):
            out[key] = repair_fields(hint, value, f"{where}.{key}", notes)
            continue
        if not _fits(value, hint):
            default = _default(f)
            reset = "left out" if default is MISSING else f"reset to {default!r}"
            notes.append(f"{where}: {key} = {value!r} is not valid; {reset}")
            continue
        out[key] = value
    return out


def repair_run(data: Any, index: int, notes: list[str]) -> dict[str, Any] | None:
    """A run record's values repaired, or None (with a note) when it names no run folder."""
    from tlstudio.core.project import RunRecord

    values = repair_fields(RunRecord, data, f"run {index + 1}", notes)
    if not values.get("run_dir"):
        notes.append(f"run {index + 1} names no run folder; it is left out")
        return None
    if values.get("status", "") not in RUN_STATUSES:
        notes.append(f"run {index + 1}: unknown status {values['status']!r}; shown as unknown")
        values["status"] = ""
    for key in ("val_accuracy", "test_accuracy"):
        if values.get(key) is not None and not 0.0 <= values[key] <= 1.0:
            notes.append(f"run {index + 1}: {key} {values[key]!r} is outside 0..1; dropped")
            values[key] = None
    for key in ("epochs_run", "train_seconds"):
        if values.get(key, 0) < 0:
            notes.append(f"run {index + 1}: negative {key} reset to 0")
            values[key] = 0
    return values
