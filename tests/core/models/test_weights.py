"""Weights resolution: official file names, bundled / cached / downloaded, offline errors, weights files."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled
from tlstudio.core.models import weights
from tlstudio.core.models.catalogue import ModelError, build_base, weights_status

BUNDLED = "mobilenet_2_5_224_tf_no_top.h5"
BUNDLED_SHA256 = "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf"
UNREACHABLE = "http://127.0.0.1:9/"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache for one test."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def no_bundled(tmp_path, monkeypatch):
    """Pretend tlstudio ships no weights."""
    empty = tmp_path / "no-bundled"
    empty.mkdir()
    monkeypatch.setattr(weights, "BUNDLED_DIR", empty)


@pytest.mark.parametrize(
    "name, alpha, size, expected",
    [
        ("MobileNet", 0.25, 224, "mobilenet_2_5_224_tf_no_top.h5"),
        ("mobilenet", 0.25, 96, "mobilenet_2_5_224_tf_no_top.h5"),  # no 96 file: Keras uses 224
        ("MobileNet", 0.5, 160, "mobilenet_5_0_160_tf_no_top.h5"),
        ("MobileNet", 1.0, 128, "mobilenet_1_0_128_tf_no_top.h5"),
        ("MobileNetV2", 0.35, 96, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"),
        ("MobileNetV2", 1.0, 100, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        ("MobileNetV2", 1.4, 224, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_224_no_top.h5"),
        ("MobileNetV3Small", 1.0, 224, "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
        ("MobileNetV3Large", 0.75, 160, "weights_mobilenet_v3_large_224_0.75_float_no_top_v2.h5"),
        ("EfficientNetB0", None, 224, "efficientnetb0_notop.h5"),
        ("EfficientNetB3", None, 300, "efficientnetb3_notop.h5"),
        ("EfficientNetV2B1", None, 240, "efficientnetv2-b1_notop.h5"),
        ("ResNet50", None, 224, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("ResNet50V2", None, 224, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("VGG16", None, 224, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("InceptionV3", None, 299, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("Xception", None, 299, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("DenseNet121", None, 224, "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("ConvNeXtTiny", None, 224, "convnext_tiny_notop.h5"),
        ("NASNetMobile", None, 224, "nasnet_mobile_no_top.h5"),
    ],
)
def test_official_file_names(name, alpha, size, expected):
    official = weights.find_official(name, alpha, size)
    assert official is not None and official.file_name == expected
    assert official.url.startswith("https://storage.googleapis.com/")


def test_no_official_file_for_unknown_width():
    assert weights.find_official("MobileNet", 0.3, 224) is None
    assert weights.find_official("MobileNetV3Small", 0.5, 224) is None
    assert weights.find_official("NoSuchNet", None, 224) is None


@pytest.mark.parametrize(
    "ctor, kwargs, size",
    [
        ("MobileNet", {"alpha": 0.25}, 96),
        ("MobileNetV2", {"alpha": 0.35}, 96),
        ("MobileNetV3Small", {"alpha": 0.75}, 64),
        ("EfficientNetB0", {}, 32),
    ],
)
def test_file_names_are_the_ones_keras_asks_for(ctor, kwargs, size, monkeypatch):
    """Keras itself is asked for its no-top weights; the file name and URL it wants are recorded."""
    import warnings

    import keras
    from keras.src.utils import file_utils

    asked = {}

    class Stop(Exception):
        pass

    def fake_get_file(fname=None, origin=None, **kw):
        asked.update(fname=fname, origin=origin, file_hash=kw.get("file_hash"))
        raise Stop

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    with warnings.catch_warnings(), pytest.raises(Stop):
        warnings.simplefilter("ignore")
        getattr(keras.applications, ctor)(
            include_top=False, weights="imagenet", input_shape=(size, size, 3), **kwargs
        )
    official = weights.find_official(ctor, kwargs.get("alpha"), size)
    assert official.file_name == asked["fname"]
    assert official.url == asked["origin"]
    if asked["file_hash"]:
        assert official.file_hash == asked["file_hash"]


def test_bundled_file_is_the_official_one():
    path = weights.bundled_path(BUNDLED)
    assert path is not None and path.parent.name == "weights"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == BUNDLED_SHA256
    official = weights.find_official("MobileNet", 0.25, 224)
    assert weights.hash_matches(path, official.file_hash)


def test_status_kinds(keras_home, tmp_path):
    assert weights_status(TrainConfig()).kind == "bundled"  # the default: MobileNet 0.25
    status = weights_status(TrainConfig(base="MobileNetV2", alpha=0.35, input_size=96))
    assert status.kind == "download" and status.ok and status.path is None
    assert status.file_name in status.message
    cached = keras_home / "models" / status.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    status = weights_status(TrainConfig(base="mobilenetv2", alpha=0.35, input_size=96))
    assert (status.kind, status.path) == ("cached", cached)
    assert weights_status(TrainConfig(weights="none")).message == "random (no pre-training)"
    missing = weights_status(TrainConfig(weights=str(tmp_path / "nope.h5")))
    assert (missing.kind, missing.ok) == ("file", False)
    assert weights_status(TrainConfig(base="NoSuchNet")).ok is False
    carried = weights_status(TrainConfig(base="MobileNetV2", alpha=0.25, input_size=96))
    assert carried.ok and "using 0.35" in carried.message and "0.35_96" in carried.file_name
    own = weights_status(TrainConfig(base_model_path=str(tmp_path / "mine.keras")))
    assert own.kind == "own-model" and not own.ok


def test_bundled_wins_over_cache(keras_home):
    cached = keras_home / "models" / BUNDLED
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not weights")
    kind, path = weights.locate(weights.find_official("MobileNet", 0.25, 96))
    assert kind == "bundled" and path == weights.bundled_path(BUNDLED)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that hung up early (cancel test)
        pass


@pytest.fixture
def weights_server(tmp_path):
    """A real local HTTP server that serves files from a folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *a, **kw: _Handler(*a, directory=str(root), **kw)  # noqa: E731
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_download_into_keras_cache_with_progress(keras_home, weights_server, monkeypatch):
    root, url = weights_server
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "thing_notop.h5").write_bytes(payload)
    monkeypatch.setenv(weights.MIRROR_ENV, url)
    official = weights.OfficialWeights(
        "thing_notop.h5", "https://example.invalid/thing_notop.h5", hashlib.md5(payload).hexdigest()
    )
    calls = []
    kind, path = weights.resolve_official(official, progress=lambda d, t: calls.append((d, t)))
    assert kind == "downloaded"
    assert path == keras_home / "models" / "thing_notop.h5"
    assert path.read_bytes() == payload
    assert calls[0] == (0, len(payload)) and calls[-1] == (len(payload), len(payload))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert weights.locate(official) == ("cached", path)  # the next time it is found offline
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary files left


def test_download_with_wrong_checksum_keeps_nothing(keras_home, weights_server, monkeypatch):
    root, url = weights_server
    (root / "bad_notop.h5").write_bytes(b"tampered")
    monkeypatch.setenv(weights.MIRROR_ENV, url)
    official = weights.OfficialWeights("bad_notop.h5", "https://example.invalid/x", "0" * 64)
    with pytest.raises(weights.WeightsError, match="checksum"):
        weights.download(official)
    folder = keras_home / "models"
    assert not folder.exists() or not list(folder.iterdir())


def test_download_can_be_cancelled(keras_home, weights_server, monkeypatch):
    root, url = weights_server
    (root / "big_notop.h5").write_bytes(b"0" * 500_000)
    monkeypatch.setenv(weights.MIRROR_ENV, url)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        weights.download(weights.OfficialWeights("big_notop.h5", "https://example.invalid/x"), cancel=cancel)
    assert not (keras_home / "models" / "big_notop.h5").exists()


def test_offline_and_not_cached_says_which_file_to_put_where(keras_home, no_bundled, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, UNREACHABLE)
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=32)
    assert weights_status(config).kind == "download"
    with pytest.raises(ModelError) as info:
        build_base(config)
    message = str(info.value)
    assert "\n" not in message
    assert BUNDLED in message
    assert str(keras_home / "models" / BUNDLED) in message
    assert "weights file" in message and "none" in message
    assert not (keras_home / "models" / BUNDLED).exists()


def test_offline_mobilenet_at_another_size_uses_the_shipped_224_weights(keras_home, monkeypatch):
    """Keras has a 128x128 file for MobileNet; offline, the shipped 224x224 one (same weights shapes) is used."""
    monkeypatch.setenv(weights.MIRROR_ENV, UNREACHABLE)
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=128)
    status = weights_status(config)
    assert status.kind == "download" and status.file_name == "mobilenet_2_5_128_tf_no_top.h5"
    assert "shipped 224x224 weights" in status.message
    official = weights.find_official("MobileNet", 0.25, 128)
    assert weights.resolve_official(official) == ("fallback-bundled", weights.bundled_path(BUNDLED))
    with pytest.raises(weights.WeightsError, match="mobilenet_5_0_128_tf_no_top.h5"):
        weights.resolve_official(weights.find_official("MobileNet", 0.5, 128))  # nothing to fall back on


def test_cached_file_is_used_offline(keras_home, no_bundled, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, UNREACHABLE)
    target = keras_home / "models" / BUNDLED
    target.parent.mkdir(parents=True)
    shutil.copy(Path(weights.__file__).parents[2] / "weights" / BUNDLED, target)
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=32)
    assert weights_status(config).kind == "cached"
    base = build_base(config)  # no network needed
    assert base.name == "base" and base.count_params() == 218_544


def test_weights_file_for_another_architecture_is_refused(tmp_path):
    bundled = str(weights.bundled_path(BUNDLED))
    with pytest.raises(ModelError, match="does not fit MobileNet alpha 0.5"):
        build_base(TrainConfig(base="MobileNet", alpha=0.5, input_size=32, weights=bundled))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5")
    with pytest.raises(ModelError, match="junk.h5"):
        build_base(TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights=str(junk)))
    whole = tmp_path / "model.keras"
    whole.write_bytes(b"zip")
    with pytest.raises(ModelError, match="whole model"):
        build_base(TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights=str(whole)))
    with pytest.raises(ModelError, match="not found"):
        build_base(
            TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights=str(tmp_path / "gone.h5"))
        )


def _features(model, x):
    return np.asarray(model(x, training=False))


@pytest.mark.slow
def test_bundled_cached_and_file_weights_give_identical_features(shared_weights, tmp_path, monkeypatch):
    """The shipped file, the Keras-cache copy, a chosen weights file and Keras itself agree exactly."""
    import warnings

    import keras

    assert (
        hashlib.sha256(shared_weights.read_bytes()).digest()
        == hashlib.sha256(weights.bundled_path(BUNDLED).read_bytes()).digest()
    )
    x = np.random.default_rng(1).uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=96)

    assert weights_status(config).kind == "bundled"
    bundled = _features(build_base(config), x)

    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path)  # nothing shipped
    monkeypatch.setenv(weights.MIRROR_ENV, UNREACHABLE)  # and no network
    (home / "models").mkdir(parents=True)
    shutil.copy(shared_weights, home / "models" / BUNDLED)
    assert weights_status(config).kind == "cached"
    cached = _features(build_base(config), x)

    from_file = build_base(
        TrainConfig(base="MobileNet", alpha=0.25, input_size=96, weights=str(shared_weights))
    )
    chosen = _features(from_file, x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = _features(
            keras.applications.MobileNet(
                alpha=0.25, include_top=False, weights=str(shared_weights), input_shape=(96, 96, 3)
            ),
            x,
        )
    random_init = _features(
        build_base(TrainConfig(base="MobileNet", alpha=0.25, input_size=96, weights="none")), x
    )
    np.testing.assert_array_equal(bundled, cached)
    np.testing.assert_array_equal(bundled, chosen)
    np.testing.assert_allclose(bundled, reference, rtol=0, atol=1e-6)
    assert not np.allclose(bundled, random_init)


def test_keras3_weights_file_of_the_same_architecture_loads(tmp_path):
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights="none")
    trained = build_base(config)
    path = tmp_path / "mine.weights.h5"
    trained.save_weights(path)
    loaded = build_base(TrainConfig(base="MobileNet", alpha=0.25, input_size=32, weights=str(path)))
    assert weights_status(TrainConfig(weights=str(path))).kind == "file"
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(trained(x)))
    with pytest.raises(ModelError, match="does not fit MobileNet alpha 0.5.*shape"):
        build_base(TrainConfig(base="MobileNet", alpha=0.5, input_size=32, weights=str(path)))
