"""Tasks that touch Keras models: build the classifier for the layer tree, and open a model file.

Both run in the engine process (:mod:`tlstudio.workers.engine_calls`): the Keras model never reaches
the window's process, which receives the pure :class:`LayerTree` and plain facts about the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core.config import TrainConfig


@dataclass(frozen=True)
class BuiltModel:
    """What the Model page shows after a build."""

    tree: Any  # LayerTree
    base: str
    input_size: int
    num_classes: int
    total_params: int
    trainable_params: int
    weights_message: str
    seconds: float


@dataclass(frozen=True)
class ModelFileInfo:
    """Facts about a model file opened by the user (the model itself stays in the worker)."""

    path: str
    source: str  # "tlstudio" | "keras3" | "keras2" | "teachable-machine"
    labels: list[str] | None
    input_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    num_outputs: int | None = None
    params: int = 0

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)


SOURCE_LABELS = {
    "tlstudio": "tlstudio (Keras 3)",
    "keras3": "Keras 3",
    "keras2": "Keras 2 / tf.keras",
    "teachable-machine": "Teachable Machine",
}


def build_model(config: TrainConfig, num_classes: int, *, progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None, message: Callable[[str], None] | None = None) -> BuiltModel:
    """Build the classifier for ``config`` in the engine (weights are fetched if needed) and describe it.

    Run it with :func:`~tlstudio.workers.base.create_worker`: the Keras model stays in the engine process,
    the GUI gets the pure layer tree. ``progress`` reports weight-download bytes.
    """
    from tlstudio.engine import protocol as p
    from tlstudio.workers.engine_calls import request

    built = request(p.BuildModel(config, max(2, int(num_classes))), progress=progress, cancel=cancel,
                    message=message)
    return BuiltModel(built.tree, built.base, built.input_size, built.num_classes, built.total_params,
                      built.trainable_params, built.weights_message, built.seconds)


def open_model_file(path: str | Path, *, message: Callable[[str], None] | None = None,
                    cancel: threading.Event | None = None) -> ModelFileInfo:
    """Open a model file safely in the engine (:func:`tlstudio.core.models.open_model.load_model_file`); describe it."""
    from tlstudio.engine import protocol as p
    from tlstudio.workers.engine_calls import request

    info = request(p.OpenModelFile(str(path)), message=message, cancel=cancel)
    return ModelFileInfo(
        path=info.path,
        source=info.source,
        labels=list(info.labels) if info.labels else None,
        input_size=tuple(info.input_size),
        notes=list(info.notes),
        num_outputs=info.num_outputs,
        params=info.params,
    )
