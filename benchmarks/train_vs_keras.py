"""Training speed: tlstudio's defaults against the plain Keras transfer-learning recipe.

Usage::

    python benchmarks/train_vs_keras.py DATA WEIGHTS [--epochs 10]

DATA is an image folder (class sub-folders, or train/ and val/ with class sub-folders); WEIGHTS is
``mobilenet_2_5_224_tf_no_top.h5`` (MobileNet alpha 0.25, ImageNet, no top). In one process it runs

(a) the recipe of the Keras transfer-learning guide: ``image_dataset_from_directory``, a frozen
    MobileNet called with ``training=False``, GlobalAveragePooling, Dropout 0.2, Dense softmax,
    Adam 1e-3, ``fit`` for the epoch budget;
(b) ``tlstudio.core.train.trainer.train`` with its defaults for frozen-base training at the same
    epoch budget, with an empty embedding cache;
(c) (b) again with another learning rate: the cache is warm, only the head is trained.

It prints the wall times (``fit`` for the recipe; ``train_seconds`` for tlstudio, which counts
feature caching, every phase and validation), their ratio and the validation accuracies.
Timings are of this machine at this moment: other work on it slows both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def keras_recipe(data: Path, weights: Path, epochs: int, size: int = 224, batch: int = 32, seed: int = 1337):
    import keras

    common = dict(image_size=(size, size), batch_size=batch, label_mode="int")
    if (data / "train").is_dir() and (data / "val").is_dir():
        train_ds = keras.utils.image_dataset_from_directory(data / "train", shuffle=True, seed=seed, **common)
        val_ds = keras.utils.image_dataset_from_directory(data / "val", shuffle=False, **common)
    else:
        train_ds = keras.utils.image_dataset_from_directory(
            data, validation_split=0.2, subset="training", seed=seed, **common
        )
        val_ds = keras.utils.image_dataset_from_directory(
            data, validation_split=0.2, subset="validation", seed=seed, **common
        )
    num_classes = len(train_ds.class_names)
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNet(
        alpha=0.25, include_top=False, weights=str(weights), input_shape=(size, size, 3)
    )
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # mobilenet.preprocess_input
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    t0 = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - t0
    return seconds, float(history.history["val_accuracy"][-1])


def tlstudio_run(data: Path, weights: Path, epochs: int, run_dir: Path, **changes):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.train.trainer import train

    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights=str(weights), head_epochs=epochs)
    for k, v in changes.items():
        setattr(config, k, v)
    t0 = time.perf_counter()
    result = train(config, run_dir)
    wall = time.perf_counter() - t0
    return result, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    data, weights = args.data.resolve(), args.weights.resolve()
    if not data.is_dir() or not weights.is_file():
        parser.error("DATA must be a folder and WEIGHTS a file")

    with tempfile.TemporaryDirectory(prefix="tlstudio-bench-") as tmp:
        os.environ["TLSTUDIO_HOME"] = str(Path(tmp) / "home")  # an empty embedding cache
        cold, cold_wall = tlstudio_run(data, weights, args.epochs, Path(tmp) / "cold")
        warm, warm_wall = tlstudio_run(data, weights, args.epochs, Path(tmp) / "warm", head_lr=3e-3)
        recipe_seconds, recipe_acc = keras_recipe(data, weights, args.epochs)

    ratio = cold.train_seconds / recipe_seconds
    print(f"data: {data}  epochs: {args.epochs}  cpu cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}")
    print(f"(a) Keras recipe        fit {recipe_seconds:8.2f} s   val accuracy {recipe_acc:.3f}")
    print(
        f"(b) tlstudio defaults   train {cold.train_seconds:6.2f} s   val accuracy {cold.val_accuracy:.3f}"
        f"   ({cold.epochs_run} epochs, {cold.cache_computed} images through the base; whole call {cold_wall:.1f} s)"
    )
    print(
        f"(c) head retrain, warm  train {warm.train_seconds:6.2f} s   val accuracy {warm.val_accuracy:.3f}"
        f"   ({warm.cache_hits} cache hits, {warm.cache_computed} computed; whole call {warm_wall:.1f} s)"
    )
    print(f"time ratio (b)/(a): {ratio:.3f}   goal <= 0.25")
    print(f"accuracy (b) - (a): {cold.val_accuracy - recipe_acc:+.3f}   goal >= -0.01")
    print(f"warm head retrain: {warm.train_seconds:.2f} s   goal < 3 s")
    print(
        json.dumps(
            {
                "recipe_seconds": round(recipe_seconds, 3),
                "recipe_val_accuracy": recipe_acc,
                "tlstudio_seconds": round(cold.train_seconds, 3),
                "tlstudio_val_accuracy": cold.val_accuracy,
                "ratio": round(ratio, 4),
                "warm_retrain_seconds": round(warm.train_seconds, 3),
                "warm_val_accuracy": warm.val_accuracy,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
