"""The classifier head: the small network trained on top of the base's pooled features.

The same Sequential named ``"head"`` is used standalone (trained on cached features) and inside
the whole classifier, so its weights move from one to the other in one call::

    full.get_layer("head").set_weights(head.get_weights())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError

if TYPE_CHECKING:  # pragma: no cover
    import keras


def build_head(feature_dim: int, config: TrainConfig, num_classes: int) -> keras.Model:
    """Build the classifier head.

    Parameters
    ----------
    feature_dim : int
        Length of the pooled feature vector it takes.
    config : TrainConfig
        ``dropout`` (0 = none) and ``hidden_units`` (0 = none) are used.
    num_classes : int
        Number of classes (at least 2); the output is a softmax.

    Returns
    -------
    keras.Sequential
        Named ``"head"``: ``Dropout "dropout"`` (when > 0), ``Dense "hidden"`` relu (when
        ``hidden_units`` > 0, followed by a second dropout), ``Dense "predictions"`` softmax.
    """
    import keras

    if num_classes < 2:
        raise TlstudioError("a classifier needs at least 2 classes")
    if feature_dim < 1:
        raise TlstudioError("the base gives no features")
    layers: list = [keras.Input(shape=(int(feature_dim),), dtype="float32", name="features")]
    if config.dropout and config.dropout > 0:
        layers.append(keras.layers.Dropout(float(config.dropout), name="dropout"))
    if config.hidden_units and config.hidden_units > 0:
        layers.append(keras.layers.Dense(int(config.hidden_units), activation="relu", name="hidden"))
        if config.dropout and config.dropout > 0:
            layers.append(keras.layers.Dropout(float(config.dropout), name="hidden_dropout"))
    # float32 output even under a mixed-precision policy, so the softmax stays numerically sound.
    layers.append(
        keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="predictions")
    )
    return keras.Sequential(layers, name="head")


def transfer_head_weights(source, target) -> None:
    """Copy the weights of a standalone head into a classifier's ``"head"`` (or head into head)."""
    src = source.get_layer("head") if _has_layer(source, "head") else source
    dst = target.get_layer("head") if _has_layer(target, "head") else target
    dst.set_weights(src.get_weights())


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in getattr(model, "layers", []))
