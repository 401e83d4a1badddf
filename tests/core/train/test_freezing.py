"""Which layers train in which phase: frozen base for the head, the top blocks for fine-tuning."""

from __future__ import annotations

import numpy as np

from tlstudio.core.config import TrainConfig
from tlstudio.core.train import freezing


def tiny_classifier(**changes):
    from tlstudio.core.models.catalogue import build_classifier

    config = TrainConfig(base="MobileNet", alpha=0.25, weights="none", input_size=32, **changes)
    return build_classifier(config, 2), config


def test_head_phase_freezes_the_base_and_fine_tuning_unfreezes_only_the_top_blocks():
    model, config = tiny_classifier(unfreeze_top=1, fine_tune_epochs=2)
    freezing.set_head_phase_trainable(model, config)
    assert freezing.base_trainable_params(model) == 0
    assert model.get_layer("head").trainable
    assert "base frozen (cached features)" in freezing.describe_freezing(model, cached=True)

    flags = freezing.set_fine_tune_trainable(model, config)
    one_block = freezing.base_trainable_params(model)
    assert 0 < one_block < sum(int(np.prod(w.shape)) for w in model.get_layer("base").weights)
    assert flags["head"] is True and flags.get("preprocess", False) is False

    model2, config2 = tiny_classifier(unfreeze_top=2, fine_tune_epochs=2)
    freezing.set_fine_tune_trainable(model2, config2)
    assert freezing.base_trainable_params(model2) > one_block


def test_saved_flags_are_put_back_exactly_on_resume():
    model, config = tiny_classifier(unfreeze_top=1, fine_tune_epochs=1)
    flags = freezing.set_fine_tune_trainable(model, config)
    fresh, _ = tiny_classifier()
    freezing.set_head_phase_trainable(fresh, config)
    assert freezing.trainable_flags(fresh) != flags
    assert freezing.set_fine_tune_trainable(fresh, config, flags) == flags
    restored = freezing.trainable_flags(fresh)
    common = set(restored) & set(flags)  # auto-named input layers differ between two builds
    assert len(common) > 50 and all(restored[k] == flags[k] for k in common)
    assert freezing.base_trainable_params(fresh) == freezing.base_trainable_params(model)
