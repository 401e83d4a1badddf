"""The actor's work without a cluster: the model travels as bytes, files decode as locally, bad files are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.cluster.features import FeatureActor, model_from_bytes, model_to_bytes


@pytest.fixture(scope="module")
def feature_model():
    import keras

    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models import catalogue

    keras.utils.set_random_seed(0)
    config = TrainConfig(base="MobileNet", alpha=0.25, weights="none", input_size=32)
    return catalogue.feature_model(catalogue.build_classifier(config, 2))


def test_the_model_survives_the_trip_as_bytes(feature_model):
    copy = model_from_bytes(model_to_bytes(feature_model))
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(copy(x, training=False)), np.asarray(feature_model(x, training=False)))


def test_a_batch_gives_the_local_pipelines_features_and_skips_bad_files(feature_model, image_folder, tmp_path):
    from tlstudio.core.data.pipeline import FileSet, make_dataset

    root = image_folder({"a": 3, "b": 2})
    (root / "a" / "broken.png").write_bytes(b"not an image")
    rels = sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))
    actor = FeatureActor(model_to_bytes(feature_model), str(root), 32, "stretch")
    out = actor({"rel": np.asarray(rels), "key": np.asarray([f"k{i}" for i in range(len(rels))])})
    bad = rels.index("a/broken.png")
    assert out["ok"].tolist() == [i != bad for i in range(len(rels))]
    assert out["reason"][bad] and out["features"].shape == (len(rels), feature_model.outputs[0].shape[-1])

    good = [r for r in rels if r != "a/broken.png"]
    ds = make_dataset(FileSet([str(root / r) for r in good], good, np.zeros(len(good), np.int32)), image_size=32,
                      batch_size=32)
    local = np.concatenate([np.asarray(feature_model(x, training=False)) for x, _, _ in ds])
    np.testing.assert_array_equal(out["features"][out["ok"]], local)
