"""Grad-CAM: the heatmap has the input's shape, is not constant, and peaks where the class is decided."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.predict_run import build_model, trained_run

from tlstudio.core.deploy.gradcam import GradCamModel, colorize, gradcam, jet_colormap, overlay_heatmap
from tlstudio.core.deploy.predict import Predictor

SIZE = 32
# Only this square decides the class: red there is class 1, blue there is class 0.
REGION = (slice(2, 12), slice(20, 30))  # rows, cols: top right


def _synthetic(n: int, rng: np.random.Generator):
    x = rng.integers(90, 166, (n, SIZE, SIZE, 3)).astype("float32")
    y = np.arange(n) % 2
    for i in range(n):
        x[i, REGION[0], REGION[1]] = (230, 30, 30) if y[i] == 1 else (30, 30, 230)
    return x, y


@pytest.fixture(scope="module")
def region_model():
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x, y = _synthetic(64, rng)
    model = build_model(num_classes=2, size=SIZE)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    xt, yt = _synthetic(8, np.random.default_rng(99))
    acc = float((model.predict_on_batch(xt).argmax(axis=1) == yt).mean())
    assert acc == 1.0, "the synthetic task should be learnt"
    return model, xt, yt


def test_heatmap_peaks_in_the_deciding_region(region_model):
    model, xt, yt = region_model
    gm = GradCamModel(model)
    assert gm.layer_name == "conv3"
    inside = np.zeros((SIZE, SIZE), bool)
    inside[REGION] = True
    for img, label in zip(xt[:4], yt[:4], strict=True):
        cam = gradcam(gm, img.astype(np.uint8), labels=["blue", "red"])
        heat = cam.heatmap
        assert heat.shape == (SIZE, SIZE) and heat.dtype == np.float32
        assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() == pytest.approx(1.0)
        assert heat.std() > 0.05, "the heatmap must not be constant"
        assert cam.class_index == label and cam.label == ["blue", "red"][label]
        # The hottest point lies in (or right at the edge of) the deciding square.
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        assert 0 <= r <= 14 and 18 <= c <= 31, (r, c)
        assert heat[inside].mean() > 2 * heat[~inside].mean()
        assert cam.overlay.size == (SIZE, SIZE) and cam.overlay.mode == "RGB"


def test_explaining_the_other_class_changes_the_map(region_model):
    model, xt, yt = region_model
    img = xt[0].astype(np.uint8)
    own = gradcam(model, img)
    other = gradcam(model, img, class_index=1 - own.class_index)
    assert other.class_index == 1 - own.class_index
    assert not np.allclose(own.heatmap, other.heatmap)


def test_predictor_gradcam_on_a_run(tmp_path_factory, tmp_path):
    from support.predict_run import COLORS, write_image

    run = trained_run(tmp_path_factory)
    p = Predictor.from_path(run)
    path = write_image(tmp_path / "red.png", COLORS["red"], size=(60, 40))
    cam = p.gradcam(path)
    assert cam.heatmap.shape == p.input_size
    assert cam.label == "red"
    assert cam.layer == "conv3"


@pytest.mark.parametrize("base, layer", [("MobileNetV2", "out_relu"), ("EfficientNetB0", "top_activation")])
def test_gradcam_finds_the_last_feature_map_of_a_catalogue_base(base, layer):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models.catalogue import build_classifier

    config = TrainConfig(base=base, alpha=0.35 if base == "MobileNetV2" else None, input_size=64, weights="none")
    model = build_classifier(config, 3)
    model.trainable = False  # a frozen model still explains itself
    gm = GradCamModel(model)
    assert gm.layer_name == layer  # 2 x 2 at 64 px: the base's last 4-D map
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    cam = gradcam(gm, img)
    assert cam.heatmap.shape == (64, 64)
    assert gm._logit_layers is not None, "the class score is the logit of the head's softmax Dense"
    assert np.isfinite(cam.heatmap).all() and 0 <= cam.heatmap.min() <= cam.heatmap.max() <= 1


def test_gradcam_follows_deeper_nesting_and_plain_sequential_models():
    import keras

    layers = keras.layers
    # Shaped like a Teachable Machine export: Sequential[Sequential[base, pooling], Sequential[Dense, Dense]].
    base_in = keras.Input((32, 32, 3))
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(base_in)
    h = layers.Conv2D(8, 3, strides=2, padding="same", name="c2")(h)
    h = layers.ReLU(name="last_relu")(h)
    base = keras.Model(base_in, h, name="model1")
    features = keras.Sequential([base, layers.GlobalAveragePooling2D()], name="features")
    head = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")], name="head")
    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(inputs)
    model = keras.Model(inputs, keras.Sequential([features, head], name="outer")(x))
    gm = GradCamModel(model)
    assert gm.layer_name == "last_relu" and gm._logit_layers is not None
    img = np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    cam = gradcam(gm, img)
    assert cam.heatmap.shape == (32, 32)
    np.testing.assert_allclose(cam.probability, model.predict_on_batch(img[None].astype("float32"))[0].max(), atol=1e-5)

    seq = keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Conv2D(4, 3, name="c1"), layers.AveragePooling2D(2, name="p1"),
         layers.Flatten(), layers.Dense(2, activation="softmax")]
    )
    gm2 = GradCamModel(seq)
    assert gm2.layer_name == "p1"
    assert gradcam(gm2, img).heatmap.shape == (32, 32)


def test_colormap_and_overlay():
    lut = jet_colormap()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0, 2] > lut[0, 0] and lut[-1, 0] > lut[-1, 2]  # blue when cold, red when hot
    heat = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    assert colorize(heat).size == (16, 16)
    img = Image.new("RGB", (40, 30), (0, 0, 0))
    over = overlay_heatmap(img, heat, alpha=0.5)
    assert over.size == (40, 30)
    arr = np.asarray(over)
    assert arr[0, 0, 2] > arr[0, 0, 0] and arr[-1, -1, 0] > arr[-1, -1, 2]
