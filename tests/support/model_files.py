"""Keras 2 model files for the model-loading tests, built once per session by tests/fixtures/make_legacy_models.py.

Keras 2 (``tf_keras``) and Keras 3 do not mix in one interpreter, so the files are made in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "make_legacy_models.py"
_built: dict[str, Path] = {}


def legacy_models(tmp_path_factory) -> Path:
    """Folder with the Keras 2 fixtures and manifest.json (built on first use, then reused)."""
    if "dir" in _built:
        return _built["dir"]
    if importlib.util.find_spec("tf_keras") is None:  # not imported here: it would clash with Keras 3
        pytest.skip("tf_keras (Keras 2) is not installed; it builds the legacy model fixtures")
    out = tmp_path_factory.mktemp("legacy_models")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building legacy fixtures failed:\n{proc.stderr[-4000:]}")
    _built["dir"] = out
    return out


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
