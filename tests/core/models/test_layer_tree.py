"""The layer tree: structure, tri-state groups, freezing presets, counts, JSON state, applying to a model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.models.catalogue import build_classifier
from tlstudio.core.models.layer_tree import BN_NOTE, LayerTree, LayerTreeError, apply_freezing

CONFIG = TrainConfig(
    base="MobileNet", alpha=0.25, input_size=32, weights="imagenet", dropout=0.0
)  # shipped weights


@pytest.fixture(scope="module")
def model():
    return build_classifier(CONFIG, 3)


@pytest.fixture
def tree(model):
    return LayerTree.from_model(model, family="mobilenet")


def _on(tree, node_path=("base",)):
    """Names of the trainable layers that have weights (layers without weights have nothing to train)."""
    return {leaf.name for leaf in tree.node(node_path).leaves() if leaf.trainable and leaf.params}


def _weights_size(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_structure_groups_and_notes(tree, model):
    root = tree.root
    assert [c.name for c in root.children] == ["preprocess", "base", "pool", "head"]
    assert [c.kind for c in root.children] == ["layer", "model", "layer", "model"]
    assert tree.block_names() == ["stem"] + [f"block_{i}" for i in range(1, 14)]
    block = tree.node(("base", "block_12"))
    assert block.kind == "group"
    assert [c.name for c in block.children] == [
        "conv_pad_12", "conv_dw_12", "conv_dw_12_bn", "conv_dw_12_relu", "conv_pw_12", "conv_pw_12_bn", "conv_pw_12_relu",
    ]  # fmt: skip
    bn = tree.node(("base", "block_12", "conv_dw_12_bn"))
    assert bn.is_batchnorm and bn.note == BN_NOTE and bn.locked and bn.trainable is False
    assert tree.node(("preprocess",)).locked
    random_tree = LayerTree.from_model(
        build_classifier(TrainConfig(base="MobileNet", input_size=32, weights="none"), 2)
    )
    random_bn = random_tree.node(("base", "block_12", "conv_dw_12_bn"))
    assert not random_bn.locked and random_bn.trainable and "random" in random_bn.note
    conv = tree.node(("base", "block_12", "conv_dw_12"))
    assert conv.layer_type == "DepthwiseConv2D" and conv.output_shape == "(None, 1, 1, 128)"
    assert conv.params == 3 * 3 * 128
    assert tree.total_params == model.count_params()
    assert tree.node(("base",)).params == model.get_layer("base").count_params()
    assert LayerTree.from_model(model).block_names() == tree.block_names()
    with pytest.raises(LayerTreeError):
        tree.node(("base", "nope"))


def test_set_trainable_changes_exactly_one_layer_and_the_states_above(tree):
    tree.freeze_base()
    before = tree.trainable_params
    changed = tree.set_trainable(("base", "block_5", "conv_pw_5"), True)
    assert _on(tree) == {"conv_pw_5"}
    assert set(changed) == {("base", "block_5", "conv_pw_5"), ("base", "block_5"), ("base",)}
    assert tree.node(("base", "block_5")).trainable is None  # mixed
    assert tree.node(("base",)).trainable is None
    assert tree.trainable_params == before + 64 * 64  # 1x1 conv 64 -> 64 channels, no bias
    assert tree.set_trainable(("base", "block_5", "conv_pw_5"), True) == []  # nothing changed


def test_group_toggle_and_locked_layers(tree):
    tree.freeze_base()
    tree.set_trainable(("base", "block_13"), True)
    assert _on(tree) == {"conv_dw_13", "conv_pw_13"}
    assert (
        tree.node(("base", "block_13")).trainable is True
    )  # BatchNorm is locked, so it does not make it mixed
    tree.set_trainable(("preprocess",), True)
    assert tree.node(("preprocess",)).trainable is False


def test_presets_change_exactly_the_intended_layers(tree, model):
    tree.freeze_base()
    assert _on(tree) == set()
    head = tree.node(("head",))
    assert head.trainable is True and tree.trainable_params == head.params

    tree.unfreeze_top_blocks(2)
    on = _on(tree)
    assert on == {"conv_dw_12", "conv_pw_12", "conv_dw_13", "conv_pw_13"}
    assert not any(tree.node(("base", b)).trainable for b in tree.block_names()[:-2])
    expected = head.params + sum(
        leaf.trainable_capacity
        for b in ("block_12", "block_13")
        for leaf in tree.node(("base", b)).leaves()
        if not leaf.locked
    )
    assert tree.trainable_params == expected

    tree.unfreeze_from("conv_pw_12")
    on = _on(tree)
    assert "conv_pw_12" in on and "conv_dw_12" not in on and "conv_pw_13" in on

    tree.unfreeze_from("block_11")
    assert {"conv_dw_11", "conv_pw_11", "conv_pw_13"} <= _on(tree) and "conv_pw_10" not in _on(tree)
    with pytest.raises(LayerTreeError, match="no layer or block named 'nope'"):
        tree.unfreeze_from("nope")

    tree.unfreeze_all()
    all_unlocked = {leaf.name for leaf in tree.node(("base",)).leaves() if not leaf.locked and leaf.params}
    assert _on(tree) == all_unlocked
    assert tree.node(("base",)).trainable is True


def test_apply_to_matches_counts_and_trains_only_unfrozen_layers(tree, model):
    import keras

    tree.unfreeze_top_blocks(1)
    tree.apply_to(model)
    assert _weights_size(model.trainable_weights) == tree.trainable_params
    assert _weights_size(model.weights) == tree.total_params
    base = model.get_layer("base")
    frozen = base.get_layer("conv_pw_12").kernel.numpy().copy()
    moving = base.get_layer("conv_pw_13_bn").moving_mean.numpy().copy()
    unfrozen = base.get_layer("conv_pw_13").kernel.numpy().copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(base.get_layer("conv_pw_12").kernel.numpy(), frozen)
    np.testing.assert_array_equal(base.get_layer("conv_pw_13_bn").moving_mean.numpy(), moving)
    assert not np.array_equal(base.get_layer("conv_pw_13").kernel.numpy(), unfrozen)

    tree.freeze_base()
    tree.apply_to(model)
    assert (
        _weights_size(model.trainable_weights)
        == tree.trainable_params
        == model.get_layer("head").count_params()
    )


def test_state_round_trips_through_json_onto_a_rebuilt_model(tree, model):
    tree.freeze_base()
    tree.set_trainable(("base", "block_3"), True)
    tree.set_trainable(("base", "block_13", "conv_pw_13"), True)
    tree.set_trainable(("head", "predictions"), False)
    state = json.loads(json.dumps(tree.state()))

    rebuilt = build_classifier(CONFIG, 3)
    other = LayerTree.from_model(rebuilt)
    other.apply_state(state)
    flags = {leaf.layer_path: leaf.trainable for leaf in tree.root.leaves() if leaf.params}
    assert {leaf.layer_path: leaf.trainable for leaf in other.root.leaves() if leaf.params} == flags
    assert other.trainable_params == tree.trainable_params
    other.apply_to(rebuilt)
    assert _weights_size(rebuilt.trainable_weights) == tree.trainable_params
    assert apply_freezing(build_classifier(CONFIG, 3), state).trainable_params == tree.trainable_params


def test_state_matches_by_position_when_automatic_names_differ(tree):
    tree.freeze_base()
    tree.set_trainable(("base", "block_7"), True)
    state = tree.state()
    for entry in state["layers"]:
        entry["path"] = entry["path"].replace("conv_", "renamed_")
    other_tree = LayerTree.from_model(tree_model_for_rename())
    other_tree.apply_state(state)
    assert _on(other_tree) == _on(tree)


def tree_model_for_rename():
    return build_classifier(CONFIG, 3)


def test_state_that_does_not_fit_is_refused_and_changes_nothing(tree):
    tree.unfreeze_top_blocks(1)
    before = {leaf.path: leaf.trainable for leaf in tree.root.leaves()}
    bad = {"version": 1, "layers": [{"path": "base/unknown", "trainable": True}]}
    with pytest.raises(LayerTreeError, match="does not fit"):
        tree.apply_state(bad)
    assert {leaf.path: leaf.trainable for leaf in tree.root.leaves()} == before
    with pytest.raises(LayerTreeError):
        tree.apply_state({"nonsense": 1})


def test_fallback_grouping_for_unknown_architectures():
    import keras

    named = keras.Sequential(
        [keras.Input((4,))] + [keras.layers.Dense(4, name=f"layer{i // 4}_dense{i % 4}") for i in range(20)]
    )
    tree = LayerTree.from_model(named)
    assert tree.block_names() == [f"layer{i}" for i in range(5)]
    anonymous = keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(4) for _ in range(24)])
    tree = LayerTree.from_model(anonymous)
    blocks = tree.block_names()
    assert 4 <= len(blocks) <= 8
    assert sum(len(list(tree.node((b,)).leaves())) for b in blocks) == 24
    tree.unfreeze_top_blocks(1)
    assert 0 < tree.trainable_params < tree.total_params
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="only")])
    assert [c.kind for c in LayerTree.from_model(small).root.children] == ["layer"]
