"""Building models: in-graph preprocessing, bases, the classifier layout, and the user's own model as base."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.models.builder import (
    build_base,
    build_classifier,
    feature_model,
    make_preprocess_layer,
)
from tlstudio.core.models.catalogue import CATALOGUE, ModelError, input_size
from tlstudio.core.models.layer_tree import LayerTree

# Family -> a block every base of it has (the tree groups layers into these) and the block count.
FAST = {
    "MobileNet": ("block_13", 14),
    "MobileNetV2": ("block_16", 19),
    "MobileNetV3Small": ("block_10", 13),
    "MobileNetV3Large": ("block_14", 17),
    "EfficientNetB0": ("block6a", 18),
    "EfficientNetV2B0": ("block2b", 23),
}
BIG = {
    "ResNet50": ("conv4_block2", 17),
    "ResNet50V2": ("conv5_block3", 18),
    "VGG16": ("block5", 5),
    "InceptionV3": ("mixed7", 12),
    "Xception": ("block14", 14),
    "DenseNet121": ("conv3_block5", 63),
    "ConvNeXtTiny": ("stage_3", 6),
    "NASNetMobile": ("cell_reduce_4", 17),
    "EfficientNetB3": ("block6a", 28),
}


def _x(size, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_preprocess_layer_matches_the_bases_own_preprocess_input(name):
    """The in-graph "preprocess" layer computes exactly what keras.applications.<module>.preprocess_input does."""
    spec = CATALOGUE[name]
    module = importlib.import_module(f"keras.applications.{spec.module}")
    x = _x(8, seed=3)
    expected = np.asarray(module.preprocess_input(x.copy()))
    layer = make_preprocess_layer(spec.preprocess)
    assert layer.name == "preprocess" and not layer.trainable_weights
    got = np.asarray(layer(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_bases_build_random_at_small_size_and_group_into_blocks(name):
    spec = CATALOGUE[name]
    base = build_base(TrainConfig(base=name, alpha=None, input_size=32, weights="none"))
    assert base.name == "base"
    assert base.count_params() == spec.params
    assert len(base.outputs[0].shape) == 4
    block, count = FAST[name]
    tree = LayerTree.from_model(base, family=spec.family)
    assert block in tree.block_names() and len(tree.block_names()) == count
    assert LayerTree.from_model(base).block_names() == tree.block_names()  # the family is recognised by names
    assert tree.total_params == spec.params


@pytest.mark.slow
def test_big_bases_build_random_and_group_into_blocks():
    import keras

    for name, (block, count) in BIG.items():
        spec = CATALOGUE[name]
        base = build_base(TrainConfig(base=name, input_size=spec.min_size, weights="none"))
        assert base.count_params() == spec.params, name
        tree = LayerTree.from_model(base)
        assert block in tree.block_names() and len(tree.block_names()) == count, (name, tree.block_names())
        del base, tree
        keras.backend.clear_session()


@pytest.fixture(scope="module")
def classifier():
    config = TrainConfig(
        base="MobileNet", alpha=0.25, input_size=32, weights="imagenet", dropout=0.0
    )  # shipped
    return config, build_classifier(config, 3)


def test_classifier_layout(classifier):
    import keras

    _, model = classifier
    assert [layer.name for layer in model.layers] == ["image", "preprocess", "base", "pool", "head"]
    assert model.inputs[0].shape[1:] == (32, 32, 3) and model.inputs[0].dtype == "float32"
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    head = model.get_layer("head")
    assert isinstance(head, keras.Sequential)
    assert head.layers[-1].name == "predictions" and head.layers[-1].get_config()["activation"] == "softmax"
    probs = np.asarray(model(_x(32)))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_base_runs_in_inference_mode_even_when_training(classifier):
    """BatchNormalization of the base uses its moving statistics: training=True changes nothing (dropout 0),
    also with every unlockable layer made trainable."""
    _, model = classifier
    base = model.get_layer("base")
    bns = [layer for layer in base.layers if type(layer).__name__ == "BatchNormalization"]
    assert bns and not any(bn.trainable for bn in bns)
    bns[0].moving_mean.assign(np.full(bns[0].moving_mean.shape, 0.3, dtype="float32"))
    tree = LayerTree.from_model(model)
    tree.unfreeze_all()
    tree.apply_to(model)
    assert model.get_layer("base").get_layer("conv1").trainable
    x = _x(32, n=4)
    np.testing.assert_allclose(
        np.asarray(model(x, training=True)), np.asarray(model(x, training=False)), atol=1e-6
    )
    tree.freeze_base()
    tree.apply_to(model)


def test_random_base_keeps_batchnorm_trainable():
    """A randomly initialised base has no statistics to keep: its BatchNormalization must learn them."""
    model = build_classifier(TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights="none"), 2)
    bns = [layer for layer in model.get_layer("base").layers if type(layer).__name__ == "BatchNormalization"]
    assert bns and all(bn.trainable for bn in bns)


def test_saved_classifier_loads_in_safe_mode_with_same_outputs(classifier, tmp_path):
    import keras

    _, model = classifier
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    x = _x(32)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


def test_feature_model_and_hidden_head(classifier):
    config, model = classifier
    features = feature_model(model)
    assert features.outputs[0].shape[-1] == 256  # MobileNet 0.25
    bigger = build_classifier(
        TrainConfig(
            base="MobileNet", alpha=0.25, input_size=32, weights="none", pooling="max", hidden_units=16
        ),
        2,
        base=model.get_layer("base"),
    )
    assert type(bigger.get_layer("pool")).__name__ == "GlobalMaxPooling2D"
    assert [layer.name for layer in bigger.get_layer("head").layers] == [
        "dropout", "hidden", "hidden_dropout", "predictions",
    ]  # fmt: skip
    with pytest.raises(ModelError, match="at least 2 classes"):
        build_classifier(config, 1, base=model.get_layer("base"))


def test_caffe_preprocess_is_frozen_and_matches_keras():
    """A caffe-mode base (ResNet50, VGG16) gets a frozen 1x1 convolution: RGB->BGR minus the ImageNet mean."""
    import keras

    tiny = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="c")], name="base")
    model = build_classifier(TrainConfig(base="ResNet50", input_size=16, weights="none"), 2, base=tiny)
    layer = model.get_layer("preprocess")
    assert isinstance(layer, keras.layers.Conv2D) and not layer.trainable
    assert all(id(w) not in {id(v) for v in model.trainable_weights} for w in layer.weights)
    from keras.applications import resnet

    x = _x(16)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(resnet.preprocess_input(x.copy())), atol=2e-4)


def test_unknown_base_and_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="unknown base model"):
        build_base(TrainConfig(base="LeNet", weights="none"))
    with pytest.raises(ModelError):
        build_base(TrainConfig(base_model_path=str(tmp_path / "missing.keras")))


# ------------------------------------------------------------------------------- own model as base


@pytest.fixture(scope="module")
def own_model_file(tmp_path_factory, classifier):
    _, model = classifier
    path = tmp_path_factory.mktemp("own") / "mine.keras"
    model.save(path)
    return path, model


def test_own_model_is_cut_below_its_classifier_or_at_a_chosen_layer(own_model_file):
    path, original = own_model_file
    config = TrainConfig(base_model_path=str(path), weights="none")
    assert input_size(config) == 32
    model = build_classifier(config, 4)
    assert [layer.name for layer in model.layers] == ["image", "preprocess", "base", "pool", "head"]
    assert type(model.get_layer("preprocess")).__name__ == "Identity"  # its own scaling is inside its base
    assert model.outputs[0].shape[-1] == 4
    x = _x(32)
    expected = np.asarray(feature_model(original)(x))
    np.testing.assert_allclose(np.asarray(feature_model(model)(x)), expected, atol=1e-5)
    tree = LayerTree.from_model(model)
    assert tree.base.name == "base"
    assert tree.block_names() == ["stem"] + [f"block_{i}" for i in range(1, 14)]  # the MobileNet inside

    base = build_base(TrainConfig(base_model_path=str(path), cut_layer="conv_pw_6_relu"))
    assert base.name == "base" and tuple(base.outputs[0].shape[1:]) == (2, 2, 128)
    with pytest.raises(ModelError, match="no_such_layer"):
        build_base(TrainConfig(base_model_path=str(path), cut_layer="no_such_layer"))


def test_own_model_with_code_is_refused(tmp_path):
    import keras

    marker = tmp_path / "ran.txt"
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    path = tmp_path / "lambda.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    with pytest.raises(ModelError) as info:
        build_base(TrainConfig(base_model_path=str(path)))
    assert "lambda" in str(info.value).lower() and "\n" not in str(info.value)
    assert not marker.exists()
