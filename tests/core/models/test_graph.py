"""Graph helpers shared by Grad-CAM and the classifier cut, on a real nested Keras model."""

from __future__ import annotations

import pytest

from tlstudio.core.models import graph


@pytest.fixture(scope="module")
def nested():
    import keras

    base_in = keras.Input((16, 16, 3))
    b = keras.layers.Conv2D(4, 3, name="conv")(base_in)
    base = keras.Model(base_in, keras.layers.ReLU(name="relu")(b), name="base")
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="preprocess")(inp)
    x = base(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head = keras.Sequential([keras.layers.Dense(2, name="dense")], name="head")
    return keras.Model(inp, head(pooled), name="classifier")


def test_kinds_and_body(nested):
    assert graph.is_model(nested.get_layer("base")) and not graph.is_model(nested.get_layer("pool"))
    assert graph.is_sequential(nested.get_layer("head")) and not graph.is_sequential(nested)
    assert [layer.name for layer in graph.body_layers(nested)] == ["preprocess", "base", "pool", "head"]
    assert graph.single_input(nested) is nested.inputs[0]


def test_find_path_goes_into_nested_models(nested):
    assert graph.find_path(nested, "pool") == ("pool",)
    assert graph.find_path(nested, "conv") == ("base", "conv")
    assert graph.find_path(nested, "dense") == ("head", "dense")
    assert graph.find_path(nested, "nope") is None


def test_outer_node_is_the_call_in_the_containers_own_graph(nested):
    base = nested.get_layer("base")
    t_in, t_out = graph.outer_node(nested, base)
    # The nested model's own graph has a node too; the one found is reachable from the classifier's input.
    assert graph.connected(nested, t_out) and tuple(t_out.shape) == (None, 14, 14, 4)
    assert graph.producer(nested.get_layer("pool")) is base
    assert graph.sub_model(graph.single_input(nested), t_out) is not None
    assert graph.sub_model(base.inputs[0], nested.outputs[0]) is None  # not one graph: no model
