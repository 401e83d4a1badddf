"""Prediction: a run's own preprocessing, top-k, "not sure", bad files, folders to CSV."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from support.predict_run import COLORS, SIZE, trained_run, write_image

from tlstudio.core.deploy.predict import NOT_SURE, Predictor
from tlstudio.core.errors import TlstudioError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor.from_path(run_dir)


def test_from_run_folder_reads_labels_size_and_policy(predictor, run_dir):
    assert predictor.labels == ["blue", "green", "red"]
    assert predictor.input_size == (SIZE, SIZE)
    assert predictor.resize_policy == "stretch"
    assert predictor.run_dir == run_dir


def test_resize_policy_comes_from_the_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["resize_policy"] = "pad"
    (copy / "config.json").write_text(json.dumps(cfg))
    p = Predictor.from_path(copy)
    assert p.resize_policy == "pad"
    # A wide white image padded with black keeps black bars top and bottom.
    arr = p.load_image(Image.new("RGB", (64, 16), (255, 255, 255)))
    assert arr.shape == (SIZE, SIZE, 3)
    assert arr[0].max() == 0 and arr[SIZE // 2].min() == 255


def test_predicts_the_colour_classes_from_paths_pil_and_arrays(predictor, tmp_path):
    red = write_image(tmp_path / "red.jpg", COLORS["red"], size=(50, 30))
    green_pil = Image.new("RGB", (20, 20), COLORS["green"])
    blue_arr = np.zeros((25, 33, 3), np.uint8) + np.array(COLORS["blue"], np.uint8)
    preds = predictor.predict([red, green_pil, blue_arr], top_k=2)
    assert [p.label for p in preds] == ["red", "green", "blue"]
    assert preds[0].source == str(red)
    for p in preds:
        assert p.error is None and len(p.top) == 2
        assert p.top[0][1] >= p.top[1][1] and p.probability == p.top[0][1]
        assert 0.0 <= p.probability <= 1.0


def test_single_image_and_top_k_limits(predictor, tmp_path):
    img = write_image(tmp_path / "one.png", COLORS["red"])
    (pred,) = predictor.predict(img, top_k=10)
    assert len(pred.top) == 3
    assert abs(sum(prob for _, prob in pred.top) - 1.0) < 1e-4


def test_exif_orientation_is_applied(predictor, tmp_path):
    # Stored as a 40 x 20 image, shown rotated (EXIF 6) as 20 x 40: the left half red, right blue
    # once rotated means the top half and bottom half in storage.
    stored = Image.new("RGB", (40, 20), COLORS["red"])
    stored.paste(Image.new("RGB", (40, 10), COLORS["blue"]), (0, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    arr = predictor.load_image(path)
    # Orientation 6 turns the image clockwise: the stored top (red) ends on the right.
    left, right = arr[:, : SIZE // 2 - 2].mean(axis=(0, 1)), arr[:, SIZE // 2 + 2 :].mean(axis=(0, 1))
    assert right[0] > right[2] and left[2] > left[0]


def test_threshold_gives_not_sure(predictor, tmp_path):
    img = write_image(tmp_path / "r.png", COLORS["red"])
    (sure,) = predictor.predict(img, threshold=0.0)
    (unsure,) = predictor.predict(img, threshold=1.01)
    assert sure.label == "red"
    assert unsure.label == NOT_SURE and unsure.top[0][0] == "red"


def test_bad_images_get_a_reason_not_an_exception(predictor, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not really a jpeg")
    good = write_image(tmp_path / "g.png", COLORS["green"])
    preds = predictor.predict([bad, good, tmp_path / "missing.png"])
    assert preds[0].error and "broken.jpg" in preds[0].error and preds[0].top == []
    assert preds[1].label == "green" and preds[1].error is None
    assert preds[2].error and "not found" in preds[2].error


def test_missing_paths_and_models_are_clear_errors(tmp_path):
    with pytest.raises(TlstudioError, match="no such model"):
        Predictor.from_path(tmp_path / "nope.keras")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TlstudioError, match="run folder"):
        Predictor.from_path(tmp_path / "empty")


def test_bare_model_file_uses_its_input_shape_and_default_labels(run_dir, tmp_path):
    import shutil

    shutil.copy(run_dir / "model.keras", tmp_path / "m.keras")
    p = Predictor.from_path(tmp_path / "m.keras")
    assert p.input_size == (SIZE, SIZE) and p.resize_policy == "stretch"
    assert p.labels == ["class 0", "class 1", "class 2"]
    (tmp_path / "labels.txt").write_text("blue\ngreen\nred\n")
    assert Predictor.from_path(tmp_path / "m.keras").labels == ["blue", "green", "red"]


def test_compiled_path_matches_keras(predictor):
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (5, SIZE, SIZE, 3)).astype("float32")
    ours = predictor.predict_array(batch)
    ref = predictor.model.predict_on_batch(batch)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
