"""Opening model files: .keras (Keras 3 / tlstudio), labels, cutting a classifier into a base."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlstudio.core.models.open_model import (
    LoadedModel,
    ModelFileError,
    check_keras_version,
    cut_below_classifier,
    load_model_file,
    read_labels,
)


def tiny_classifier(size=32, classes=3):
    import keras

    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="preprocess")(inp)
    base = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="c2"),
        ],
        name="base",
    )
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(classes, activation="softmax", name="predictions"),
        ],
        name="head",
    )
    return keras.Model(inp, head(x), name="tiny")


@pytest.fixture(scope="module")
def saved_keras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("k3")
    model = tiny_classifier()
    model.save(folder / "model.keras")
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    return folder, run(model, x), x


def test_keras3_file_loads_with_same_predictions(saved_keras):
    folder, expected, x = saved_keras
    loaded = load_model_file(folder / "model.keras")
    assert isinstance(loaded, LoadedModel)
    assert loaded.source == "tlstudio"  # preprocess / base / head layout
    assert loaded.input_size == (32, 32)
    assert loaded.path == folder / "model.keras"
    np.testing.assert_allclose(run(loaded.model, x), expected, atol=1e-5)


def test_run_folder_labels_and_folder_path(saved_keras, tmp_path):
    folder, _, _ = saved_keras
    (folder / "labels.txt").write_text("ants\nbees\nwasps\n", encoding="utf-8")
    try:
        loaded = load_model_file(folder)  # a folder: its model.keras
        assert loaded.labels == ["ants", "bees", "wasps"]
    finally:
        (folder / "labels.txt").unlink()


def test_mismatched_labels_are_ignored_with_a_note(saved_keras):
    folder, _, _ = saved_keras
    (folder / "labels.txt").write_text("a\nb\n", encoding="utf-8")
    try:
        loaded = load_model_file(folder / "model.keras")
        assert loaded.labels is None
        assert any("2 classes" in n and "3 outputs" in n for n in loaded.notes)
    finally:
        (folder / "labels.txt").unlink()


def test_read_labels_formats(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("\ufeff0 Class 1\n1 Class 2\n\n2 Nothing\n", encoding="utf-8")
    assert read_labels(f) == ["Class 1", "Class 2", "Nothing"]
    f.write_text("cats\ndogs\n", encoding="utf-8")
    assert read_labels(f) == ["cats", "dogs"]
    f.write_text("3 dogs\n1 cat\n", encoding="utf-8")  # not an index sequence: names kept whole
    assert read_labels(f) == ["3 dogs", "1 cat"]
    f.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ModelFileError, match="no class names"):
        read_labels(f)


def test_cut_below_classifier_gives_feature_map(saved_keras):
    folder, _, x = saved_keras
    model = load_model_file(folder / "model.keras").model
    features = cut_below_classifier(model)
    assert tuple(features.output.shape) == (None, 16, 16, 6)
    base_out = run(model.get_layer("base"), x / 255.0)
    np.testing.assert_allclose(run(features, x), base_out, atol=1e-5)
    named = cut_below_classifier(model, "c1")
    assert tuple(named.output.shape) == (None, 32, 32, 4)
    # Weights are shared and the input stays raw 0-255 (the preprocess layer is kept in front).
    assert named.get_layer("preprocess") is model.get_layer("preprocess")
    with pytest.raises(ModelFileError, match="no layer named 'nope'"):
        cut_below_classifier(model, "nope")


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model_file(tmp_path / "notes.txt")
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ModelFileError, match="broken.keras: .*damaged"):
        load_model_file(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="no model file"):
        load_model_file(empty)


def test_old_keras_is_refused_for_keras_files():
    check_keras_version("3.12.0")
    check_keras_version("3.15.1")
    with pytest.raises(ModelFileError, match="Keras 3.11.3 is installed.*3.12 or newer"):
        check_keras_version("3.11.3")
    with pytest.raises(ModelFileError):
        check_keras_version("2.15.0")


def test_installed_keras_meets_the_pin():
    import keras

    check_keras_version(keras.__version__)


# --------------------------------------------------------------------------------------------------
# Keras 2 / tf.keras / Teachable Machine .h5 files (built with tf_keras in a subprocess)

from support.model_files import legacy_models  # noqa: E402


def run(model, images):
    """Probabilities for a batch, called eagerly (tracing predict() for a big graph costs seconds)."""
    return np.asarray(model(np.asarray(images, dtype="float32"), training=False))


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    return legacy_models(tmp_path_factory)


@pytest.fixture(scope="module")
def teachable(legacy):
    return load_model_file(legacy / "teachable" / "keras_model.h5")


def test_teachable_machine_export_loads_takes_raw_rgb_and_matches_tf_keras(legacy, teachable):
    loaded = teachable
    assert loaded.source == "teachable-machine"
    assert loaded.labels == ["Class 1", "Class 2", "Nothing"]
    assert loaded.input_size == (96, 96)
    assert any("preprocessing added" in n and "[-1, 1]" in n for n in loaded.notes)
    assert any("Keras 2" in n for n in loaded.notes)
    first = loaded.model.layers[1]
    assert type(first).__name__ == "Rescaling" and first.name == "preprocess"
    images = np.load(legacy / "inputs96.npy")  # raw uint8 RGB; tf.keras was given them scaled to [-1, 1]
    expected = np.load(legacy / "teachable.probs.npy")
    np.testing.assert_allclose(run(loaded.model, images), expected, atol=1e-5)
    assert not np.allclose(expected, expected[:, :1])  # the comparison is not trivially flat

    # Its base: the truncated MobileNetV2 feature map, below GlobalAveragePooling and the Dense head.
    features = cut_below_classifier(loaded.model)
    assert tuple(features.output.shape) == (None, 3, 3, 1280)


@pytest.mark.slow
def test_converted_teachable_machine_model_saves_as_safe_keras_file(legacy, teachable, tmp_path):
    teachable.model.save(tmp_path / "converted.keras")
    again = load_model_file(tmp_path / "converted.keras")  # safe_mode=True, standard layers only
    images = np.load(legacy / "inputs96.npy")
    np.testing.assert_allclose(run(again.model, images), np.load(legacy / "teachable.probs.npy"), atol=1e-5)


def test_keras2_functional_model_with_depthwise_groups_loads(legacy):
    loaded = load_model_file(legacy / "plain_functional.h5")
    assert loaded.source == "keras2"
    assert loaded.input_size == (32, 32)
    assert loaded.labels is None
    assert any("DepthwiseConv2D 'groups'" in n for n in loaded.notes)
    images = np.load(legacy / "inputs32.npy")
    np.testing.assert_allclose(
        run(loaded.model, images), np.load(legacy / "plain_functional.probs.npy"), atol=1e-5
    )
    assert loaded.model.get_layer("bn").moving_variance.numpy().std() > 0  # BN statistics came across
    assert tuple(cut_below_classifier(loaded.model).output.shape) == (None, 16, 16, 8)


def test_keras2_sequential_with_batch_input_shape_loads(legacy):
    loaded = load_model_file(legacy / "plain_sequential.h5")
    assert loaded.source == "keras2"
    images = np.load(legacy / "inputs32.npy") / 255.0
    np.testing.assert_allclose(
        run(loaded.model, images), np.load(legacy / "plain_sequential.probs.npy"), atol=1e-5
    )


def test_h5_whose_weights_do_not_fit_its_config_is_refused_clearly(legacy, tmp_path):
    import shutil

    import h5py

    bad = tmp_path / "resized.h5"
    shutil.copy(legacy / "plain_functional.h5", bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"filters": 8', '"filters": 5')
    with pytest.raises(ModelFileError, match="resized.h5: .*shape"):
        load_model_file(bad)


def test_weights_only_h5_is_explained(tmp_path):
    model = tiny_classifier()
    model.save_weights(tmp_path / "only.weights.h5")
    with pytest.raises(ModelFileError, match="only weights"):
        load_model_file(tmp_path / "only.weights.h5")


def test_older_style_teachable_machine_file_with_renamed_weights_loads(legacy, tmp_path):
    """Older exports: class "Model", no module keys, Dense with batch_input_shape, weight names that do not
    match the layer names (the loader then falls back to Keras 2's weight order)."""
    import shutil

    import h5py

    path = tmp_path / "keras_model.h5"
    shutil.copy(legacy / "teachable" / "keras_model.h5", path)
    shutil.copy(legacy / "teachable" / "labels.txt", tmp_path / "labels.txt")

    def strip(node):
        if isinstance(node, dict):
            for key in ("module", "registered_name", "build_config"):
                node.pop(key, None)
            if node.get("class_name") == "Functional":
                node["class_name"] = "Model"
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        strip(config)
        head = config["config"]["layers"][2]["config"]["layers"]
        head[0]["config"]["batch_input_shape"] = [None, 1280]
        f.attrs["model_config"] = json.dumps(config)
        group = f["model_weights"]["sequential_1"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        renamed = [f"model1/{n.split('/')[0]}_1/{n.split('/')[-1]}" for n in names]
        for old, new in zip(names, renamed, strict=True):
            group[new] = np.asarray(group[old])
            del group[old]
        group.attrs["weight_names"] = [n.encode() for n in renamed]
    loaded = load_model_file(path)
    assert loaded.source == "teachable-machine"
    images = np.load(legacy / "inputs96.npy")
    np.testing.assert_allclose(run(loaded.model, images), np.load(legacy / "teachable.probs.npy"), atol=1e-5)


def test_h5_saved_by_keras3_loads(tmp_path):
    model = tiny_classifier()
    model.save(tmp_path / "k3.h5")
    loaded = load_model_file(tmp_path / "k3.h5")
    assert loaded.source == "keras3"
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3))
    np.testing.assert_allclose(run(loaded.model, x), run(model, x), atol=1e-5)


def test_keras_files_are_refused_on_a_keras_without_the_safe_mode_fixes(saved_keras, monkeypatch):
    import keras

    folder, _, _ = saved_keras
    monkeypatch.setattr(keras, "__version__", "3.8.0")
    with pytest.raises(ModelFileError, match=r"model.keras: Keras 3.8.0 is installed.*3.12 or newer"):
        load_model_file(folder / "model.keras")


def test_keras2_dtype_policy_objects_and_unknown_settings_are_translated(legacy, tmp_path):
    import shutil

    import h5py

    path = tmp_path / "policy.h5"
    shutil.copy(legacy / "plain_functional.h5", path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for entry in config["config"]["layers"]:
            if entry["config"]["name"] in ("conv", "predictions"):
                entry["config"]["dtype"] = {"class_name": "Policy", "config": {"name": "float32"}}
            if entry["config"]["name"] == "drop":
                entry["config"]["noise_shape_legacy"] = None  # a setting Keras 3 has never heard of
        f.attrs["model_config"] = json.dumps(config)
    loaded = load_model_file(path)
    assert any("dtype policies" in n for n in loaded.notes)
    assert any("Dropout 'noise_shape_legacy'" in n for n in loaded.notes)
    images = np.load(legacy / "inputs32.npy")
    np.testing.assert_allclose(
        run(loaded.model, images), np.load(legacy / "plain_functional.probs.npy"), atol=1e-5
    )


def test_downloaded_zip_with_model_and_labels_opens(legacy, tmp_path):
    import zipfile

    archive = tmp_path / "converted_keras.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(legacy / "plain_sequential.h5", "converted_keras/keras_model.h5")
        zf.writestr("converted_keras/labels.txt", "0 left\n1 right\n")
    loaded = load_model_file(archive)
    assert loaded.labels == ["left", "right"]
    assert loaded.path.name == "keras_model.h5" and loaded.path.parent != tmp_path
    assert any("converted_keras.zip" in n for n in loaded.notes)

    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(legacy / "plain_sequential.h5", "a.h5")
        zf.write(legacy / "plain_functional.h5", "b.h5")
    with pytest.raises(ModelFileError, match="several model files"):
        load_model_file(two)
