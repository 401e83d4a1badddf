"""Walking a Keras model's graph: what a layer is, where it is called, sub-models between tensors.

Shared by the code that cuts a classifier down to a feature extractor
(:mod:`tlstudio.core.models.cut`) and by Grad-CAM (:mod:`tlstudio.core.deploy.gradcam`), which both
have to find a layer inside nested models and build a model that ends (or starts) there.
Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any


def is_model(layer: Any) -> bool:
    """True for a nested model (Functional or Sequential), which holds layers of its own."""
    import keras

    return isinstance(layer, keras.Model)


def is_sequential(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Sequential)


def is_input(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"


def body_layers(model: Any) -> list[Any]:
    """``model``'s layers without its input layers."""
    return [layer for layer in model.layers if not is_input(layer)]


def single_input(model: Any) -> Any:
    """The model's input as a bare tensor when it has one (a one-element list would warn at every call)."""
    inputs = model.inputs
    return inputs[0] if len(inputs) == 1 else inputs


def sub_model(inputs: Any, outputs: Any) -> Any | None:
    """``keras.Model(inputs, outputs)``, or None when the tensors do not cut the graph there."""
    import keras

    try:
        return keras.Model(inputs, outputs)
    except Exception:  # noqa: BLE001 - Keras says "not connected" in several exception types
        return None


def connected(model: Any, tensor: Any) -> bool:
    """True when ``tensor`` is reachable from ``model``'s input in ``model``'s own graph."""
    return sub_model(single_input(model), tensor) is not None


def outer_node(model: Any, layer: Any) -> tuple[Any, Any] | None:
    """(input tensor, output tensor) of ``layer``'s call inside ``model``'s graph.

    A nested model is called in several graphs (its own and each container's); only the call that
    ``model``'s input reaches counts. The input tensor is None when the call takes several.
    """
    for node in reversed(getattr(layer, "_inbound_nodes", [])):
        if len(node.output_tensors) != 1:
            continue
        if connected(model, node.output_tensors[0]):
            t_in = node.input_tensors[0] if len(node.input_tensors) == 1 else None
            return t_in, node.output_tensors[0]
    return None


def producer(layer: Any) -> Any | None:
    """The layer whose output is ``layer``'s (single) input, None when the graph does not say."""
    history = getattr(layer.input, "_keras_history", None)
    return history[0] if history is not None else None


def find_path(model: Any, name: str) -> tuple[str, ...] | None:
    """Names of the nested models leading to the layer called ``name``, then its own; None when absent."""
    for layer in model.layers:
        if layer.name == name:
            return (layer.name,)
    for layer in model.layers:
        if is_model(layer):
            sub = find_path(layer, name)
            if sub is not None:
                return (layer.name, *sub)
    return None
