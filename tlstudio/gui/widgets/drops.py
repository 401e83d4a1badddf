"""What a drop or a paste carries, and accepting drops as Copy.

A drop is always accepted as Copy, never Move: a file manager that honours Move would take the
person's photos away from where they were.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt


def local_paths(mime) -> list[Path]:
    """The local files and folders in ``mime`` (a drop's or the clipboard's QMimeData)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def accept_copy(event) -> None:
    """Accept a drag or drop event as a copy, whatever the source proposed."""
    event.setDropAction(Qt.DropAction.CopyAction)
    event.accept()
