"""First run, offline: the default model is pre-trained from the weights shipped in the package.

Nothing in the Keras cache, no network: the default TrainConfig (MobileNet, alpha 0.25, ImageNet
weights) must still build a pre-trained base and classifier, and must not write into the cache.
The shipped file's equality with the official one is checked in tests/core/test_weights.py.
"""

from __future__ import annotations

import importlib.resources
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.models import weights
from tlstudio.core.models.catalogue import build_base, build_classifier, input_size, weights_status

BUNDLED = "mobilenet_2_5_224_tf_no_top.h5"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache, an unreachable weights mirror, and no outgoing connections at all."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv(weights.MIRROR_ENV, "http://127.0.0.1:9/")

    def refuse(self, address, *args, **kwargs):
        raise OSError(f"no network in this test (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return home


def _shipped_file() -> Path:
    return Path(str(importlib.resources.files("tlstudio.weights") / BUNDLED))


def test_default_config_resolves_to_the_shipped_weights(offline):
    config = TrainConfig()
    assert (config.base, config.alpha, config.weights) == ("MobileNet", 0.25, "imagenet")
    status = weights_status(config)
    assert status.kind == "bundled" and status.ok
    assert status.path is not None and status.path.resolve() == _shipped_file().resolve()
    assert status.file_name == BUNDLED


def test_default_base_builds_pretrained_offline_and_leaves_the_cache_empty(offline):
    config = TrainConfig()
    size = input_size(config)
    assert size == 224
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32") / 127.5 - 1.0
    base = build_base(config)
    features = np.asarray(base(x, training=False))
    random_base = build_base(TrainConfig(weights="none"))
    random_features = np.asarray(random_base(x, training=False))
    assert features.shape == random_features.shape and features.shape[1:3] == (7, 7)
    assert not np.allclose(features, random_features, atol=1e-3)  # the pre-trained weights were loaded

    import keras

    reference = keras.applications.MobileNet(
        alpha=0.25, include_top=False, weights=str(_shipped_file()), input_shape=(size, size, 3)
    )
    np.testing.assert_allclose(features, np.asarray(reference(x, training=False)), rtol=0, atol=1e-5)

    classifier = build_classifier(config, 3, base=base)
    probs = np.asarray(classifier(np.full((1, size, size, 3), 128.0, "float32"), training=False))
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1.0) < 1e-4
    # Keras may write its keras.json there, but no weights were downloaded or cached
    assert not list(offline.rglob("*.h5")) and not (offline / "models").exists()


def test_the_shipped_file_matches_the_shared_official_file(shared_weights):
    """The package data is byte-for-byte the official Keras file (features: tests/core/test_weights.py)."""
    assert _shipped_file().read_bytes() == shared_weights.read_bytes()


@pytest.mark.slow
def test_wheel_carries_weights_sample_data_and_icons(tmp_path):
    """`pip install .` from a clone installs everything the first run needs, licences included."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("tlstudio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"tlstudio/weights/{BUNDLED}" in names
    assert "tlstudio/weights/PROVENANCE.md" in names
    assert "tlstudio/resources/sample-signs/LICENSE.md" in names
    for cls in ("one", "two", "three"):
        assert sum(n.startswith(f"tlstudio/resources/sample-signs/{cls}/") for n in names) == 40
    assert "tlstudio/gui/icons/tlstudio.svg" in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
