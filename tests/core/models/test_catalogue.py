"""The base-model catalogue: the bases it lists, names, widths and input sizes (no model is built)."""

from __future__ import annotations

import importlib

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.models.catalogue import (
    CATALOGUE,
    ModelError,
    alpha_note,
    get_spec,
    input_size,
    resolve_alpha,
    top1_for,
)

REQUIRED = [
    "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetB1",
    "EfficientNetB2", "EfficientNetB3", "EfficientNetV2B0", "EfficientNetV2B1", "ResNet50", "ResNet50V2", "VGG16",
    "InceptionV3", "Xception", "DenseNet121", "ConvNeXtTiny", "NASNetMobile",
]  # fmt: skip


def test_catalogue_has_every_required_base_with_sane_fields():
    assert set(REQUIRED) <= set(CATALOGUE)
    for name, spec in CATALOGUE.items():
        assert spec.name == name
        assert spec.speed in ("fast", "medium", "slow")
        assert spec.preprocess in ("tf", "caffe", "torch", "none")
        assert spec.min_size <= spec.default_size
        assert spec.params > 0 and spec.description
        assert (spec.default_alpha is None) == (not spec.alphas)
        if spec.alphas:
            assert spec.default_alpha in spec.alphas
        assert spec.top1 is None or 60 < spec.top1 < 90
        importlib.import_module(f"keras.applications.{spec.module}")  # its own preprocess_input lives there


def test_names_are_case_insensitive_and_unknown_names_are_refused():
    assert get_spec("mobilenetv2") is CATALOGUE["MobileNetV2"]
    assert get_spec(" EFFICIENTNETB0 ") is CATALOGUE["EfficientNetB0"]
    with pytest.raises(ModelError, match="unknown base model 'ResNet999'.*MobileNet"):
        get_spec("ResNet999")


def test_alpha_and_input_size_rules():
    mobilenet = CATALOGUE["MobileNet"]
    assert resolve_alpha(mobilenet, None) == 0.25
    assert resolve_alpha(mobilenet, 0.5) == 0.5
    assert resolve_alpha(CATALOGUE["ResNet50"], 0.25) is None  # no width multiplier: ignored
    assert resolve_alpha(mobilenet, 0.3) == 0.25  # the nearest width it has
    assert resolve_alpha(CATALOGUE["MobileNetV2"], 0.25) == 0.35  # a MobileNet setting carried over
    assert resolve_alpha(CATALOGUE["MobileNetV3Small"], 0.875) == 1.0  # a tie goes to the wider one
    assert "not available for MobileNetV2; using 0.35" in alpha_note(CATALOGUE["MobileNetV2"], 0.25)
    assert alpha_note(mobilenet, 0.5) is None
    assert top1_for(mobilenet, 1.0) == 70.4 and top1_for(mobilenet, 0.25) is None
    assert input_size(TrainConfig(base="InceptionV3")) == 299
    assert input_size(TrainConfig(base="MobileNet", input_size=96)) == 96
    with pytest.raises(ModelError, match="at least 75"):
        input_size(TrainConfig(base="InceptionV3", input_size=64))
