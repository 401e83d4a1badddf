"""``tlstudio models`` and ``tlstudio layers``: tables, JSON, and one-line failures."""

from __future__ import annotations

import json

import pytest

from tlstudio.cli import main
from tlstudio.core.models import weights
from tlstudio.core.models.catalogue import CATALOGUE


def test_models_table_lists_the_catalogue(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in CATALOGUE:
        assert name in out
    line = next(row for row in out.splitlines() if row.startswith("MobileNet "))
    assert "shipped" in line and "fast" in line


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(CATALOGUE)
    assert by_name["MobileNet"]["weights"] == "bundled"
    assert by_name["EfficientNetB0"]["top1"] == pytest.approx(77.1)
    assert by_name["MobileNetV2"]["alphas"] == [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]


def test_layers_prints_blocks_shapes_counts_and_frozen_state(capsys):
    code = main(
        ["layers", "--base", "mobilenet", "--alpha", "0.25", "--input-size", "32", "--unfreeze-top", "1"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "weights: ImageNet" in out
    lines = out.splitlines()
    block13 = next(row for row in lines if "block_13" in row and "Block" in row)
    block12 = next(row for row in lines if "block_12" in row and "Block" in row)
    assert block13.lstrip().startswith("[train]") and block12.lstrip().startswith("[frozen]")
    assert "(None, 1, 1, 256)" in block13
    assert "[lock]" in out and "inference mode" in out
    assert "parameters trainable" in out


def test_layers_json_and_random_weights(capsys):
    assert main(["layers", "--base", "MobileNet", "--input-size", "32", "--weights", "none", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["weights"] == "random (no pre-training)"
    assert data["blocks"][-1] == "block_13"
    assert data["trainable_params"] == 514  # base frozen: only the head (256 * 2 + 2)
    names = [c["name"] for c in data["root"]["children"]]
    assert names == ["preprocess", "base", "pool", "head"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["layers", "--base", "LeNet"], "unknown base model"),
        (["layers", "--base", "MobileNet", "--input-size", "16"], "at least 32"),
        (["layers", "--base", "MobileNet", "--weights", "/no/such/file.h5"], "weights file not found"),
        (
            ["layers", "--base", "MobileNet", "--input-size", "32", "--unfreeze-from", "nope"],
            "no layer or block",
        ),
    ],
)
def test_layers_failures_are_one_line(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlstudio layers: ") and expected in err and "\n" not in err
    assert "Traceback" not in err


def test_layers_says_when_a_width_is_replaced(capsys):
    assert (
        main(
            ["layers", "--base", "MobileNetV2", "--alpha", "0.25", "--input-size", "32", "--weights", "none"]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "alpha 0.25 is not available for MobileNetV2; using 0.35" in captured.err
    assert captured.out.startswith("MobileNetV2  alpha 0.35  input 32x32")


def test_layers_offline_without_weights_says_where_to_put_them(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(weights.MIRROR_ENV, "http://127.0.0.1:9/")
    assert main(["layers", "--base", "MobileNetV2", "--alpha", "0.35", "--input-size", "96"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in err
    assert str(tmp_path / "keras" / "models") in err
