"""A stand-in for core's ``Predictor`` in the window's process: the model itself lives in the engine.

It has what the prediction worker uses (``labels``, ``input_size``, ``resize_policy``, ``predict``,
``gradcam``) and sends each call to the engine, which keeps the model loaded between calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlstudio.engine import protocol as p
from tlstudio.workers.engine_calls import request

#: Overlays are drawn by the engine on a copy of the original image this wide at most.
OVERLAY_SIZE = 320


@dataclass(frozen=True)
class GradCamView:
    """Grad-CAM as the window uses it: the overlay as a PIL image."""

    overlay: Any  # PIL.Image
    heatmap: Any
    class_index: int
    label: str
    probability: float


def _plain(image: Any) -> Any:
    """A path as a string, anything else as a uint8 RGB array (plain data for the pipe)."""
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    return np.asarray(image)


class EnginePredictor:
    """Predicts with a run folder or model file loaded in the engine."""

    #: The engine already drew the Grad-CAM overlay on a sharp copy of the image.
    overlay_is_sharp = True

    def __init__(self, source: str, info: p.PredictorInfo) -> None:
        self.source = source
        self.labels = list(info.labels)
        self.input_size = tuple(info.input_size)
        self.resize_policy = info.resize_policy
        self.notes = list(info.notes)
        self.threshold = info.threshold  # the engine applies it when a request gives none

    @classmethod
    def load(cls, source: str | Path) -> EnginePredictor:
        """Load ``source`` in the engine (raises its one-line reason when it cannot)."""
        return cls(str(source), request(p.LoadPredictor(str(source))))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def predict(self, images: Any, top_k: int = 3, threshold: float | None = None) -> list[Any]:
        if isinstance(images, str | os.PathLike) or not isinstance(images, list | tuple):
            images = [images]
        items = tuple((i, _plain(image)) for i, image in enumerate(images))
        return list(request(p.PredictImages(self.source, items, top_k, threshold)))

    def gradcam(self, image: Any, class_index: int | None = None) -> GradCamView:
        from PIL import Image

        result = request(p.GradCamRequest(self.source, _plain(image), class_index, overlay_size=OVERLAY_SIZE,
                                          overlay_format="rgb"))
        return GradCamView(Image.fromarray(result.overlay_rgb, "RGB"), result.heatmap, result.class_index,
                           result.label, result.probability)
