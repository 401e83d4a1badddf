"""Tasks that touch Keras models: build the classifier for the layer tree, and open a model file.

Both run in the engine process (:mod:`tlstudio.workers.engine_calls`): the Keras model never reaches
the window's process, which receives the pure :class:`LayerTree` and plain facts about the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from tlstudio.core.config import TrainConfig
from tlstudio.engine import protocol as p
from tlstudio.engine.protocol import SOURCE_LABELS, BuiltModel, ModelFileInfo

__all__ = ["SOURCE_LABELS", "BuiltModel", "ModelFileInfo", "build_model", "open_model_file"]


def build_model(config: TrainConfig, num_classes: int, *, progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None, message: Callable[[str], None] | None = None) -> BuiltModel:
    """Build the classifier for ``config`` in the engine (weights are fetched if needed) and describe it.

    Run it with :func:`~tlstudio.workers.base.create_worker`: the Keras model stays in the engine process,
    the GUI gets the pure layer tree. ``progress`` reports weight-download bytes.
    """
    from tlstudio.workers.engine_calls import request

    return request(p.BuildModel(config, max(2, int(num_classes))), progress=progress, cancel=cancel,
                   message=message)


def open_model_file(path: str | Path, *, message: Callable[[str], None] | None = None,
                    cancel: threading.Event | None = None) -> ModelFileInfo:
    """Open a model file safely in the engine (:func:`tlstudio.core.models.open_model.load_model_file`); describe it."""
    from tlstudio.workers.engine_calls import request

    return request(p.OpenModelFile(str(path)), message=message, cancel=cancel)
