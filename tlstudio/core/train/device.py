"""Where and how a run computes: the distribution strategy, mixed precision on GPUs, the optimizer."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlstudio.core.atomic import atomic_path
from tlstudio.core.config import TrainConfig


@dataclass
class Device:
    """The strategy of a run, whether it is on a GPU, and the dtype policy to put back afterwards."""

    strategy: Any
    on_gpu: bool
    gpus: int
    policy_to_restore: str | None = None

    def scope(self) -> AbstractContextManager[Any]:
        return self.strategy.scope()

    def restore(self) -> None:
        """Put back the global dtype policy that :func:`setup_device` changed."""
        if self.policy_to_restore is not None:
            import keras

            keras.mixed_precision.set_dtype_policy(self.policy_to_restore)
            self.policy_to_restore = None


def load_keras() -> None:
    """Import Keras and TensorFlow, the first time without pandas.

    Keras imports pandas, when it is installed, only to recognise DataFrames among the inputs of
    ``fit``; tlstudio never passes one, and that import is about a tenth of Keras's start-up
    (0.3-0.4 CPU-seconds). So while Keras loads, pandas reads as not installed; afterwards it
    can be imported as usual (by Ray, for instance). Nothing changes when pandas or Keras is
    already loaded.
    """
    if "keras" in sys.modules or "pandas" in sys.modules:
        import keras  # noqa: F401
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # "import pandas" raises ImportError
    try:
        import keras  # noqa: F401
    finally:
        if "pandas" in sys.modules and sys.modules["pandas"] is None:
            del sys.modules["pandas"]


def setup_device() -> Device:
    """One GPU: mixed precision; several: MirroredStrategy as well; none: the default strategy."""
    load_keras()
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    device = Device(strategy=strategy, on_gpu=bool(gpus), gpus=len(gpus))
    if gpus:
        device.policy_to_restore = keras.mixed_precision.dtype_policy().name
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    return device


def make_optimizer(name: str, lr: float) -> Any:
    """A fresh Keras optimizer by configuration name."""
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


def compile_model(model: Any, config: TrainConfig, lr: float, device: Device) -> None:
    """Compile with a fresh optimizer, the run's loss and a weighted accuracy."""
    import keras

    with device.scope():
        model.compile(
            optimizer=make_optimizer(config.optimizer, lr),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(config.label_smoothing)),
            weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile="auto" if device.on_gpu else False,
        )


def save_classifier(model: Any, config: TrainConfig, num_classes: int, device: Device, target: Path) -> Path:
    """Save the classifier atomically; trained in mixed precision, as a float32 twin, which runs anywhere."""
    if device.policy_to_restore is not None:
        import keras

        from tlstudio.core.models import catalogue

        keras.mixed_precision.set_dtype_policy("float32")
        twin = catalogue.build_classifier(config, num_classes)
        twin.set_weights(model.get_weights())
        model = twin
    with atomic_path(target) as tmp:
        model.save(tmp)
    return target
