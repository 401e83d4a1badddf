"""Where tlstudio keeps things on disk: the embedding cache, default run folders, the Keras cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_home() -> Path:
    """tlstudio's own folder: ``$TLSTUDIO_HOME``, else the platform's user data folder."""
    env = os.environ.get("TLSTUDIO_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "tlstudio"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "tlstudio"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "tlstudio"


def cache_dir() -> Path:
    """The embedding cache (safe to delete: it only saves time)."""
    return data_home() / "cache"


def runs_dir() -> Path:
    """Default parent folder of training runs made without a project."""
    return data_home() / "runs"


def keras_home() -> Path:
    """Keras's own cache (``$KERAS_HOME``, default ``~/.keras``); official weights live in ``models/``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
