"""A run folder whose tiny model is sure of red, green and blue photos and unsure of anything else.

The model is written by hand rather than trained, so how sure it is stays the same from run to run:
its logits are ``STEEPNESS`` times the mean blue, green and red of the photo (0-1). A red photo
gives red about 100 %; a grey one gives a third to each class, a yellow one half to red and half to
green. The run records a "not sure" threshold of ``THRESHOLD`` in run.json as the trainer does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from support.predict_run import trained_run

THRESHOLD = 0.8
STEEPNESS = 20.0
OTHER_COLOURS = {"grey": (128, 128, 128), "yellow": (230, 220, 40)}


def colour_model(size: int = 32):
    import keras
    import numpy as np

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="preprocess")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    dense = keras.layers.Dense(3, activation="softmax", name="predictions")
    out = dense(x)
    # Output order is the run's classes (blue, green, red); the input channels are R, G, B.
    kernel = np.zeros((3, 3), np.float32)
    kernel[2, 0] = kernel[1, 1] = kernel[0, 2] = STEEPNESS
    dense.set_weights([kernel, np.zeros(3, np.float32)])
    return keras.Model(inputs, out, name="classifier")


def unsure_run(tmp_path_factory, folder: Path) -> Path:
    """A copy of the shared tiny run at ``folder`` with the hand-made model and a recorded threshold."""
    import json

    shutil.copytree(trained_run(tmp_path_factory), folder)
    colour_model().save(folder / "model.keras")
    summary = json.loads((folder / "run.json").read_text())
    summary["threshold"] = {"value": THRESHOLD, "source": "validation"}
    (folder / "run.json").write_text(json.dumps(summary))
    return folder
