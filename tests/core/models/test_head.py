"""The classifier head: layout, and moving its weights between the standalone head and the whole model."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.models.catalogue import build_classifier, feature_model
from tlstudio.core.models.head import build_head, transfer_head_weights


def test_head_layout_follows_the_config():
    head = build_head(256, TrainConfig(dropout=0.3, hidden_units=0), 5)
    assert head.name == "head"
    assert [layer.name for layer in head.layers] == ["dropout", "predictions"]
    assert head.layers[0].rate == pytest.approx(0.3)
    assert head.outputs[0].shape[-1] == 5 and head.count_params() == 256 * 5 + 5
    plain = build_head(8, TrainConfig(dropout=0.0, hidden_units=4), 2)
    assert [layer.name for layer in plain.layers] == ["hidden", "predictions"]
    probs = np.asarray(plain(np.ones((3, 8), dtype="float32")))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(TlstudioError, match="at least 2 classes"):
        build_head(8, TrainConfig(), 1)


def test_head_trained_on_features_transfers_into_the_whole_model():
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights="none", hidden_units=8)
    model = build_classifier(config, 3)
    features = feature_model(model)
    head = build_head(int(features.outputs[0].shape[-1]), config, 3)
    rng = np.random.default_rng(0)
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = np.asarray(head(np.asarray(features(x)), training=False))
    assert not np.allclose(np.asarray(model(x)), expected)
    model.get_layer("head").set_weights(head.get_weights())  # the documented one-liner
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-5)
    other = build_head(int(features.outputs[0].shape[-1]), config, 3)
    transfer_head_weights(model, other)
    np.testing.assert_allclose(np.asarray(other(np.asarray(features(x)))), expected, atol=1e-5)
