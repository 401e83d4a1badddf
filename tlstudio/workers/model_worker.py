"""Tasks that touch Keras models: build the classifier for the layer tree, and open a model file.

The Keras model never leaves the worker: the GUI receives the pure :class:`LayerTree` and plain
facts about the model, so no TensorFlow object is used from the GUI thread.
"""

from __future__ import annotations

import threading
import time
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
    """Build the classifier for ``config`` (weights are fetched if needed) and describe it as a :class:`BuiltModel`.

    Run it with :func:`~tlstudio.workers.base.create_worker`: the Keras model stays in the worker thread,
    the GUI gets the pure layer tree. ``progress`` reports weight-download bytes.
    """
    from tlstudio.core.errors import Cancelled
    from tlstudio.core.models import catalogue as base_models
    from tlstudio.core.models.layer_tree import LayerTree

    say = message or (lambda _text: None)
    num_classes = max(2, int(num_classes))
    start = time.perf_counter()
    status = base_models.weights_status(config)
    say(status.message or "Building the model...")
    base = base_models.build_base(config, progress=progress)
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    say("Adding the classifier...")
    model = base_models.build_classifier(config, num_classes, base=base)
    family = None
    if not config.base_model_path:
        try:
            family = base_models.get_spec(config.base).family
        except Exception:  # an unknown name was already reported by build_base
            family = None
    tree = LayerTree.from_model(model, family=family)
    if config.layer_state:
        tree.apply_state(config.layer_state)
    return BuiltModel(
        tree=tree,
        base=config.base if not config.base_model_path else Path(config.base_model_path).name,
        input_size=int(base_models.input_size(config)),
        num_classes=num_classes,
        total_params=int(tree.total_params),
        trainable_params=int(tree.trainable_params),
        weights_message=status.message,
        seconds=time.perf_counter() - start,
    )


def open_model_file(path: str | Path, *, message: Callable[[str], None] | None = None) -> ModelFileInfo:
    """Load a model file safely (:func:`tlstudio.core.models.open_model.load_model_file`); describe it."""
    from tlstudio.core.models.open_model import load_model_file

    if message is not None:
        message(f"Opening {Path(path).name}...")
    loaded = load_model_file(str(path))
    model = loaded.model
    try:
        outputs = int(model.outputs[0].shape[-1])
    except Exception:  # a model without a simple single output: leave it unknown
        outputs = None
    try:
        params = int(model.count_params())
    except Exception:
        params = 0
    return ModelFileInfo(
        path=str(loaded.path),
        source=loaded.source,
        labels=list(loaded.labels) if loaded.labels else None,
        input_size=tuple(loaded.input_size),
        notes=list(loaded.notes or []),
        num_outputs=outputs,
        params=params,
    )
