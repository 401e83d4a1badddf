"""Keras 2 / tf.keras ``.h5`` model files: checked config, translated to Keras 3, weights read by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlstudio.core.model_safety import ModelFileError


def load_legacy_h5(file: Path) -> Any:
    """Open a legacy ``.h5`` full model (config checked first)."""
    raise ModelFileError("opening Keras 2 .h5 files is not available yet.")
