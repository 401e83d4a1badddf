"""UI settings kept in QSettings, with a typed key table.

Only window-level preferences live here (geometry, recent files and folders); everything about a
user's work lives in the project file. Each key is declared once with its type and default, so a
value of the wrong type in the settings file (hand-edited, or from an older version) falls back to
the default instead of breaking the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "tlstudio"
APPLICATION = "tlstudio"
MAX_RECENT = 10


@dataclass(frozen=True)
class Key:
    name: str
    type: type
    default: Any
    doc: str


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("window/geometry", QByteArray, QByteArray(), "main window geometry (saveGeometry)"),
        Key("window/state", QByteArray, QByteArray(), "main window tool bar / dock state (saveState)"),
        Key("window/step", str, "data", "the workflow step shown last"),
        Key("recent/projects", list, [], "recently opened or saved project files, newest first"),
        Key("recent/folders", list, [], "recently opened dataset folders, newest first"),
        Key("recent/models", list, [], "recently opened model files, newest first"),
        Key("dialogs/last_dir", str, "", "the folder a file dialog opens in"),
        Key("dataset/thumbnail_size", int, 96, "thumbnail size on the Dataset page, in pixels"),
        Key("train/cluster", str, "", "a Ray cluster to train on (address or local:N); empty: this computer"),
    )
}


def settings() -> QSettings:
    """The application's settings store (an INI file in the user's configuration folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def get(name: str) -> Any:
    """The value of a declared key, or its default when missing or of the wrong type."""
    key = KEYS[name]
    value = settings().value(name, key.default)
    if key.type is list:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return list(key.default)
    if key.type is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return key.default
    if key.type is str:
        return value if isinstance(value, str) else key.default
    if key.type is QByteArray:
        return value if isinstance(value, QByteArray) else QByteArray()
    return value


def put(name: str, value: Any) -> None:
    """Store a declared key."""
    if name not in KEYS:
        raise KeyError(name)
    s = settings()
    s.setValue(name, value)
    s.sync()


def add_recent(name: str, path: str | Path) -> list[str]:
    """Put ``path`` first in the recent list ``name`` (no duplicates, at most MAX_RECENT)."""
    entry = str(Path(path).expanduser().resolve())
    items = [p for p in get(name) if p != entry]
    items.insert(0, entry)
    del items[MAX_RECENT:]
    put(name, items)
    return items


def remove_recent(name: str, path: str | Path) -> None:
    entry = str(path)
    put(name, [p for p in get(name) if p != entry])
