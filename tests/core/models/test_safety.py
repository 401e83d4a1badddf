"""Model files that would run code when loaded are refused, with a plain reason, and their code never runs."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from support.model_files import legacy_models, manifest

from tlstudio.core.models.open_model import ModelFileError, UnsafeModelError, load_model_file
from tlstudio.core.models.safety import check_config


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    return legacy_models(tmp_path_factory)


def marker_lambda(marker: Path):
    """A lambda whose bytecode creates ``marker`` (the path is a constant inside the marshalled code)."""
    return eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    """A .keras file with a Lambda layer whose code creates a marker file, and proof that the code is live."""
    import keras

    folder = tmp_path_factory.mktemp("evil_keras")
    marker = folder / "lambda_keras_ran.txt"
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(marker_lambda(marker), name="payload"), keras.layers.Dense(2)]
    )
    model.save(folder / "evil.keras")
    marker.unlink(missing_ok=True)  # building the model ran it once
    keras.saving.load_model(folder / "evil.keras", safe_mode=False)
    assert marker.exists(), "the crafted Lambda must really run when loaded unsafely"
    marker.unlink()
    return folder / "evil.keras", marker


def rewrite_keras_config(src: Path, dst: Path, edit, extra: dict[str, bytes] | None = None) -> Path:
    """Copy a .keras archive with its config.json changed by ``edit(config)`` and optional extra members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def plain_keras(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("plain_keras")
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, name="dense"),
        ]
    )
    model.save(folder / "plain.keras")
    return folder / "plain.keras"


def layer_entry(config: dict, name: str) -> dict:
    for entry in config["config"]["layers"]:
        if entry.get("config", {}).get("name") == name:
            return entry
    raise KeyError(name)


# --------------------------------------------------------------------------------------------------
# .keras


def test_keras_file_with_lambda_is_refused_and_its_code_never_runs(lambda_keras):
    path, marker = lambda_keras
    with pytest.raises(UnsafeModelError) as info:
        load_model_file(path)
    message = str(info.value)
    assert "evil.keras" in message and "Lambda" in message and "arbitrary code" in message
    assert "tlstudio does not load such models" in message
    assert "\n" not in message
    assert not marker.exists()


def test_lambda_hidden_as_an_activation_is_refused(plain_keras, tmp_path):
    def edit(config):
        layer_entry(config, "dense")["config"]["activation"] = {
            "class_name": "__lambda__",
            "config": {"value": "ZGF0YQ=="},
        }

    bad = rewrite_keras_config(plain_keras, tmp_path / "act.keras", edit)
    with pytest.raises(UnsafeModelError, match="Lambda function .*layer 'dense'"):
        load_model_file(bad)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"module": "os", "class_name": "system"}, "module 'os', outside Keras"),
        ({"module": None, "class_name": "MyDense"}, "custom class 'MyDense'"),
        ({"registered_name": "mypackage>MyDense"}, "custom class registered as 'mypackage>MyDense'"),
        ({"class_name": "TFSMLayer"}, "TFSMLayer"),
        ({"class_name": "TorchModuleWrapper"}, "unpickles"),
        ({"module": "keras.src.layers.core.lambda_layer", "class_name": "Dense"}, "unexpected module path"),
    ],
)
def test_keras_file_naming_code_outside_keras_is_refused(plain_keras, tmp_path, change, expected):
    bad = rewrite_keras_config(
        plain_keras, tmp_path / "bad.keras", lambda c: layer_entry(c, "dense").update(change)
    )
    with pytest.raises(UnsafeModelError, match=expected):
        load_model_file(bad)


def test_custom_function_reference_is_refused(plain_keras, tmp_path):
    def edit(config):
        layer_entry(config, "dense")["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "exec",
            "registered_name": "exec",
        }

    bad = rewrite_keras_config(plain_keras, tmp_path / "fn.keras", edit)
    with pytest.raises(UnsafeModelError, match="custom function 'exec'"):
        load_model_file(bad)


def test_keras_file_with_embedded_pickle_is_refused(plain_keras, tmp_path):
    bad = rewrite_keras_config(
        plain_keras, tmp_path / "pickle.keras", lambda c: None, {"assets/state.pkl": b"\x80\x04."}
    )
    with pytest.raises(UnsafeModelError, match="embedded Python code or pickled data .*state.pkl"):
        load_model_file(bad)


def test_standard_keras_file_passes_the_check(plain_keras):
    assert load_model_file(plain_keras).input_size == (8, 8)


# --------------------------------------------------------------------------------------------------
# legacy .h5 (Keras ignores safe_mode there, so tlstudio's own check is the guard)


def test_h5_with_lambda_is_refused_and_its_code_never_runs(legacy):
    info = manifest(legacy)["lambda"]
    assert info["payload_runs_when_loaded_unsafely"]  # tf.keras did run it: the file is a real threat
    marker = legacy / info["marker"]
    assert not marker.exists()
    with pytest.raises(UnsafeModelError) as err:
        load_model_file(legacy / info["file"])
    assert "lambda.h5: this model contains a Lambda layer, which can run arbitrary code" in str(err.value)
    assert not marker.exists()


def edited_h5(src: Path, dst: Path, edit) -> Path:
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return dst


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"class_name": "MyConv2D"}, "type 'MyConv2D', which is not a standard Keras class"),
        ({"module": "subprocess"}, "module 'subprocess', outside Keras"),
        ({"registered_name": "Custom>Conv2D"}, "registered as 'Custom>Conv2D'"),
        ({"class_name": "TFOpLambda"}, "TFOpLambda"),
    ],
)
def test_h5_with_custom_or_foreign_classes_is_refused(legacy, tmp_path, change, expected):
    bad = edited_h5(
        legacy / "plain_functional.h5", tmp_path / "bad.h5", lambda c: layer_entry(c, "conv").update(change)
    )
    with pytest.raises(UnsafeModelError, match=expected):
        load_model_file(bad)


def test_h5_with_keras2_function_code_field_is_refused(legacy, tmp_path):
    def edit(config):
        layer_entry(config, "conv")["config"].update(
            {"function": ["YWJj", None, None], "function_type": "lambda"}
        )

    bad = edited_h5(legacy / "plain_functional.h5", tmp_path / "code.h5", edit)
    with pytest.raises(UnsafeModelError, match="Python function stored as code"):
        load_model_file(bad)


def test_h5_with_custom_activation_name_is_refused(legacy, tmp_path):
    bad = edited_h5(
        legacy / "plain_functional.h5",
        tmp_path / "act.h5",
        lambda c: layer_entry(c, "predictions")["config"].update({"activation": "my_softmax"}),
    )
    with pytest.raises(UnsafeModelError, match="custom activation 'my_softmax'"):
        load_model_file(bad)


def test_nested_custom_layer_deep_inside_teachable_machine_is_found(legacy, tmp_path):
    def edit(config):
        features = config["config"]["layers"][1]  # the Sequential holding the truncated MobileNetV2
        mobilenet = features["config"]["layers"][1]
        mobilenet["config"]["layers"][5]["class_name"] = "SneakyLayer"

    bad = edited_h5(legacy / "teachable" / "keras_model.h5", tmp_path / "keras_model.h5", edit)
    with pytest.raises(UnsafeModelError, match="SneakyLayer"):
        load_model_file(bad)


def test_not_a_model_config_is_a_plain_file_error():
    with pytest.raises(ModelFileError):
        check_config(["not", "a", "dict"], keras3=True)


def test_h5_weights_stored_in_another_file_are_refused(legacy, tmp_path):
    import h5py
    import numpy as np

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8 * 4, dtype="float32").tobytes())
    bad = tmp_path / "external.h5"
    shutil.copy(legacy / "plain_functional.h5", bad)
    with h5py.File(bad, "r+") as f:
        group = f["model_weights"]["predictions"]
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][
            1
        ]  # bias (4,)
        del group[name]
        group.create_dataset(name, shape=(4,), dtype="float32", external=[(str(secret), 0, 16)])
    with pytest.raises(UnsafeModelError, match="stores weights in other files"):
        load_model_file(bad)


def test_h5_external_link_is_refused(legacy, tmp_path):
    import h5py

    bad = tmp_path / "linked.h5"
    shutil.copy(legacy / "plain_functional.h5", bad)
    with h5py.File(bad, "r+") as f:
        f["model_weights"]["elsewhere"] = h5py.ExternalLink(
            str(legacy / "plain_sequential.h5"), "/model_weights"
        )
    with pytest.raises(UnsafeModelError, match="links to data elsewhere"):
        load_model_file(bad)


def test_keras_archive_member_outside_the_archive_is_refused(plain_keras, tmp_path):
    bad = rewrite_keras_config(plain_keras, tmp_path / "slip.keras", lambda c: None, {"../../evil.txt": b"x"})
    with pytest.raises(UnsafeModelError, match=r"'\.\.' in its path"):
        load_model_file(bad)


def test_function_reference_must_be_an_activation_loss_or_metric(plain_keras, tmp_path):
    def edit(config):
        layer_entry(config, "dense")["config"]["activation"] = {
            "module": "keras.ops",
            "class_name": "function",
            "config": "relu",
            "registered_name": None,
        }

    ok = rewrite_keras_config(plain_keras, tmp_path / "ops_relu.keras", edit)
    with pytest.raises(UnsafeModelError, match="'keras.ops.relu' that is not an activation"):
        load_model_file(ok)


def test_keras_activation_function_entry_is_accepted(plain_keras, tmp_path):
    def edit(config):
        layer_entry(config, "dense")["config"]["activation"] = {
            "module": "keras.activations",
            "class_name": "function",
            "config": "relu",
            "registered_name": None,
        }

    good = rewrite_keras_config(plain_keras, tmp_path / "relu.keras", edit)
    assert load_model_file(good).input_size == (8, 8)
