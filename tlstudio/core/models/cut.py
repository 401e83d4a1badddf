"""Cutting a classifier down to a feature extractor, to train a new head on another model's features.

The cut goes below the classifier: the Dense stack at the end (with its dropout, normalisation and
activations) and the global pooling before it. The result shares layers and weights with the model.
"""

from __future__ import annotations

from typing import Any

from tlstudio.core.models.graph import (
    body_layers,
    find_path,
    is_model,
    is_sequential,
    outer_node,
    producer,
    single_input,
)
from tlstudio.core.models.safety import ModelFileError

_CLASSIFIER_LAYERS = {
    "Dense",
    "Dropout",
    "Activation",
    "Softmax",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "LayerNormalization",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "ActivityRegularization",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "InputLayer",
}
_POOLING_LAYERS = {
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
}


def _is_classifier_block(layer: Any) -> bool:
    """A Dense stack (possibly a nested Sequential of Dense/Dropout layers): the part that is cut off."""
    if is_model(layer):
        body = body_layers(layer)
        return bool(body) and all(_is_classifier_block(sub) for sub in body)
    name = type(layer).__name__
    if name in ("BatchNormalization", "ReLU", "LeakyReLU", "PReLU", "ELU"):
        try:
            rank = len(layer.output.shape)
        except (AttributeError, ValueError):
            return False
        return rank == 2  # after pooling only: part of the classifier
    return name in _CLASSIFIER_LAYERS


def _feature_path(model: Any) -> tuple[str, ...]:
    """Names leading to the layer whose output feeds global pooling (or the final Dense stack)."""
    body = body_layers(model)
    while body and _is_classifier_block(body[-1]):
        body.pop()
    if not body:
        raise ModelFileError("this model has no layers below its classifier to use as a base.")
    last = body[-1]
    if type(last).__name__ in _POOLING_LAYERS:
        if len(body) < 2:
            raise ModelFileError("this model has nothing before its global pooling to use as a base.")
        # In a Functional model the layer before pooling in list order may not feed it; follow the graph.
        prev = body[-2] if is_sequential(model) else producer(last)
        if prev is None:
            raise ModelFileError(f"cannot follow the model's graph below layer '{last.name}'.")
        return (prev.name,)
    if is_model(last):
        return (last.name, *_feature_path(last))
    return (last.name,)


def _outer_tensor(model: Any, layer: Any, which: str) -> Any:
    """``layer``'s input or output tensor in ``model``'s own graph (a nested model has nodes elsewhere too)."""
    node = outer_node(model, layer)
    if node is None or (which == "input" and node[0] is None):
        raise ModelFileError(f"cannot follow the model's graph at layer '{layer.name}'.")
    return node[0] if which == "input" else node[1]


def _truncate(model: Any, path: tuple[str, ...]) -> Any:
    """A model from ``model``'s input to the output of the layer at ``path`` (sharing its weights)."""
    import keras

    layer = model.get_layer(path[0])
    inner = _truncate(layer, path[1:]) if len(path) > 1 else None
    if is_sequential(model):
        x = inp = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype, name="image")
        for sub in body_layers(model):
            if sub is layer:
                x = inner(x) if inner is not None else sub(x)
                break
            x = sub(x)
        return keras.Model(inp, x, name=f"{model.name}_features")
    if inner is None:
        return keras.Model(single_input(model), _outer_tensor(model, layer, "output"), name=f"{model.name}_features")
    return keras.Model(
        single_input(model), inner(_outer_tensor(model, layer, "input")), name=f"{model.name}_features"
    )


def cut_below_classifier(model: Any, cut_layer: str | None = None) -> Any:
    """A feature extractor: ``model`` up to the layer before global pooling / its final Dense stack.

    The result shares layers and weights with ``model`` and takes the same input (for models opened with
    :func:`tlstudio.core.models.open_model.load_model_file`, raw RGB 0-255 including any preprocessing
    layers put in front).

    Parameters
    ----------
    model : keras.Model
        A classifier, e.g. ``load_model_file(path).model``.
    cut_layer : str, optional
        Name of the layer whose output becomes the features (searched in nested models too). By default
        the output of the layer feeding global pooling, or else feeding the final Dense stack.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelFileError
        When ``cut_layer`` does not exist or no feature layer can be found.
    """
    if cut_layer:
        path = find_path(model, cut_layer)
        if path is None:
            raise ModelFileError(f"the model has no layer named '{cut_layer}'.")
    else:
        path = _feature_path(model)
    return _truncate(model, path)
