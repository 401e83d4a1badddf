"""A tiny trained run folder shared by the predict, Grad-CAM and export tests.

The run is built once per test session (cached under pytest's base temp folder, so the CLI tests
reuse the one made for the core tests) in the run-folder layout of ``tlstudio.core.run_folder``:
config.json (with the split), labels.txt, model.keras, run.json, evaluation.json.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = ["blue", "green", "red"]
COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 80, 220)}
SIZE = 32
EPOCHS = 30


def write_image(path: Path, color, size=(40, 36), pattern: int = 0, fmt=None) -> Path:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    x = (pattern * 7) % (size[0] - 6)
    y = (pattern * 5) % (size[1] - 6)
    draw.rectangle([x, y, x + 4, y + 4], fill=(128, 128, 128))
    img.save(path, format=fmt)
    return path


def make_dataset(root: Path, per_class: int = 10) -> dict[str, list[str]]:
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for name in CLASSES:
        for i in range(per_class):
            rel = f"{name}/{name}_{i:02d}.png"
            write_image(root / rel, COLORS[name], pattern=i)
            split["val" if i % 4 == 3 else "train"].append(rel)
    return split


def build_model(num_classes: int = 3, size: int = SIZE):
    """tlstudio's classifier layout around a tiny convolutional base (fast to train, 8 x 8 feature map).

    image -> "preprocess" -> nested Model "base" (called with training=False) -> "pool" -> Sequential "head".
    The base mixes the layer kinds of the catalogue's mobile bases (convolution, batch norm,
    depthwise convolution, ReLU6) so the converters meet them.
    """
    import keras

    layers = keras.layers
    base_in = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="conv1")(base_in)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(6.0, name="relu1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw2")(x)
    x = layers.Conv2D(16, 1, name="pw2")(x)
    x = layers.ReLU(6.0, name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    base = keras.Model(base_in, x, name="base")
    inputs = keras.Input((size, size, 3), name="image")
    h = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    h = base(h, training=False)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    head = keras.Sequential(
        [layers.Dropout(0.1), layers.Dense(num_classes, activation="softmax", name="predictions")], name="head"
    )
    return keras.Model(inputs, head(h), name="classifier")


def make_run(folder: Path) -> Path:
    """Write data + a trained run folder under ``folder``; returns the run folder."""
    import keras
    import numpy as np

    from tlstudio.core import run_folder
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.data import imageio
    from tlstudio.core.run_folder import write_run_config, write_summary

    data = folder / "data"
    split = make_dataset(data)
    run = folder / "run"
    run.mkdir(parents=True)
    config = TrainConfig(
        data_dir=str(data), base="MobileNet", alpha=0.25, input_size=SIZE, weights="none", resize_policy="stretch"
    )
    write_run_config(run, config, CLASSES, split)
    keras.utils.set_random_seed(3)
    model = build_model()
    x = np.stack([imageio.load_rgb(data / p, SIZE) for p in split["train"]]).astype("float32")
    y = np.array([CLASSES.index(p.split("/")[0]) for p in split["train"]])
    # The base is called with training=False, so its batch norms use moving statistics; a few
    # full-batch epochs at a high rate make the tiny colour problem learnable anyway.
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=EPOCHS, batch_size=len(x), verbose=0)
    model.save(run_folder.model_file(run))
    write_summary(
        run,
        {"status": "finished", "base": "MobileNet", "alpha": 0.25, "input_size": SIZE, "resize_policy": "stretch",
         "classes": CLASSES, "num_train": len(split["train"]), "num_val": len(split["val"]), "num_test": 0,
         "val_accuracy": 1.0, "test_accuracy": None, "epochs_run": EPOCHS},
    )
    evaluation = {
        "classes": CLASSES,
        "data_dir": str(data),
        "splits": {"val": {"accuracy": 1.0, "loss": 0.1, "macro_f1": 1.0,
                           "per_class": {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2} for c in CLASSES}}},
        "warnings": [],
    }
    run_folder.write_evaluation(run, evaluation)
    return run


def trained_run(tmp_path_factory) -> Path:
    """The session's shared run folder (built on first use)."""
    folder = tmp_path_factory.getbasetemp() / "predict-export-run"
    run = folder / "run"
    done = folder / "done"
    if not done.exists():
        make_run(folder)
        done.write_text("ok")
    return run

