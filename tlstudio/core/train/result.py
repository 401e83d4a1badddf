"""What a training run returns: :class:`TrainResult` (also what ``tlstudio train --json`` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainResult:
    """What :func:`train` returns (and what ``tlstudio train --json`` prints)."""

    run_dir: Path
    status: str  # "finished" | "cancelled"
    model_path: Path
    val_accuracy: float | None
    test_accuracy: float | None
    epochs_run: int
    train_seconds: float
    warnings: list[str] = field(default_factory=list)
    cache_hits: int = 0  # images whose features came from the embedding cache
    cache_computed: int = 0  # images the base was run on to fill the cache
    settings: dict[str, Any] = field(default_factory=dict)  # learning rates, dropout... as chosen or given
    kept: str = ""  # "head only" | "after fine-tuning": which phase's weights the model has
    threshold: float = 0.0  # below this confidence, answer "not sure"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_dir": str(self.run_dir),
            "model_path": str(self.model_path),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "epochs_run": self.epochs_run,
            "train_seconds": round(self.train_seconds, 3),
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
            "kept": self.kept,
            "threshold": self.threshold,
        }
