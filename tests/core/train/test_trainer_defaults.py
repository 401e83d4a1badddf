"""train() right by default: automatic head settings recorded, unfreezing means fine-tuning after the
head with the better phase kept, a "not sure" threshold from validation, evaluation without the base.

Tiny on purpose: generated images, MobileNet alpha 0.25 with random weights at 32 px.
"""

from __future__ import annotations

import json

import numpy as np

from tlstudio.core import evaluate as evaluation_module
from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.core.evaluate import THRESHOLDS
from tlstudio.core.train import cached_features
from tlstudio.core.train.head_search import ADAM_LEARNING_RATES, DROPOUTS
from tlstudio.core.train.trainer import train


def defaults(data, **changes) -> TrainConfig:
    """A one-click configuration (every automatic setting on), only made tiny."""
    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights="none", input_size=32, batch_size=8)
    config.split.val_fraction = 0.2  # the call counts below assume a fixed share
    for k, v in changes.items():
        setattr(config, k, v)
    return config


def unfrozen_top_block(config: TrainConfig) -> dict:
    from tlstudio.core.models import catalogue
    from tlstudio.core.models.layer_tree import LayerTree

    tree = LayerTree.from_model(catalogue.build_classifier(config, 2), family="mobilenet")
    tree.unfreeze_top_blocks(1)
    return tree.state()


def test_a_one_click_run_chooses_its_settings_from_the_grid_and_records_them(image_folder, tmp_path):
    data = image_folder({"red": 10, "green": 10})
    events = []
    result = train(defaults(data), tmp_path / "run", emit=events.append)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    settings = summary["settings"]
    assert settings["head_lr"] in ADAM_LEARNING_RATES and settings["dropout"] in DROPOUTS
    assert {"head_lr", "dropout", "epochs", "threshold"} <= set(settings["automatic"])
    grid = summary["search"]["grid"]
    assert len(grid) == len(ADAM_LEARNING_RATES) * len(DROPOUTS)
    best = min(grid, key=lambda p: (round(p["val_loss"], 4), -p["val_accuracy"], p["head_lr"], p["dropout"]))
    assert (best["head_lr"], best["dropout"]) == (settings["head_lr"], settings["dropout"])
    assert result.settings == settings and summary["kept"] == result.kept == "head only"
    # trained to convergence: early stopping ended the head phase, far below its generous cap
    head_epochs = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert head_epochs[0].epochs == 300 and len(head_epochs) < 300
    assert any(isinstance(e, ev.LogMessage) and "automatic settings" in e.text for e in events)
    threshold = summary["threshold"]
    assert threshold["source"] == "validation" and threshold["value"] in THRESHOLDS
    assert result.threshold == threshold["value"]
    lo, hi = summary["val_accuracy_ci95"]
    assert lo <= summary["val_accuracy"] <= hi


def test_given_values_are_used_as_they_are(image_folder, tmp_path):
    data = image_folder({"red": 8, "green": 8})
    config = defaults(data, head_lr=0.005, auto_head_lr=False, dropout=0.3, auto_dropout=False,
                      threshold=0.4, auto_threshold=False, head_epochs=3, auto_epochs=False)
    result = train(config, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["search"] is None and summary["settings"]["head_lr"] == 0.005
    assert summary["settings"]["dropout"] == 0.3 and result.epochs_run == 3
    assert summary["threshold"] == {"value": 0.4, "source": "set"}


def test_unfrozen_blocks_train_only_after_the_head_and_a_worse_fine_tuning_is_not_kept(image_folder, tmp_path):
    data = image_folder({"a": 10, "b": 10})
    config = defaults(data)
    config.layer_state = unfrozen_top_block(config)  # ticked on the Model page, fine-tuning epochs left at 0
    # A learning rate that wrecks the network, so fine-tuning is sure to do worse than the head alone.
    config.fine_tune_lr, config.auto_fine_tune_lr = 5.0, False
    events = []
    result = train(config, tmp_path / "run", emit=events.append)

    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.phases == (ev.PHASE_CACHING, ev.PHASE_HEAD, ev.PHASE_FINE_TUNE, ev.PHASE_EVALUATING)
    phases = [e.phase for e in events if isinstance(e, ev.EpochEnded)]
    first_ft = phases.index(ev.PHASE_FINE_TUNE)
    assert set(phases[:first_ft]) == {ev.PHASE_HEAD} and set(phases[first_ft:]) == {ev.PHASE_FINE_TUNE}
    assert any(isinstance(e, ev.LogMessage) and "fine-tuned after the classifier" in e.text for e in events)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["kept"] == result.kept == "head only"
    assert summary["val_accuracy"] == summary["head_only"]["val_accuracy"]
    assert any(isinstance(e, ev.LogMessage) and "did not do better" in e.text for e in events)


def test_fine_tuning_at_the_automatic_rate_is_a_hundredth_of_the_heads(image_folder, tmp_path):
    data = image_folder({"a": 8, "b": 8})
    result = train(defaults(data, fine_tune_epochs=1, unfreeze_top=1), tmp_path / "run")
    settings = result.settings
    assert settings["fine_tune_lr"] == settings["head_lr"] / 100
    assert result.kept in ("head only", "after fine-tuning")


def test_evaluating_a_frozen_run_does_not_call_the_base_again(image_folder, tmp_path, monkeypatch):
    data = image_folder({"a": 10, "b": 10})
    seen = {"images": 0, "predict_probs": 0}
    real_features, real_predict = cached_features.compute_features, evaluation_module.predict_probs

    def counting_features(fn, images):
        seen["images"] += int(images.shape[0])
        return real_features(fn, images)

    def counting_predict(model, batches, **kw):
        seen["predict_probs"] += 1
        return real_predict(model, batches, **kw)

    monkeypatch.setattr(cached_features, "compute_features", counting_features)
    monkeypatch.setattr(evaluation_module, "predict_probs", counting_predict)
    config = defaults(data)
    config.split.test_fraction = 0.2
    result = train(config, tmp_path / "run")
    assert seen == {"images": 20, "predict_probs": 0}  # each image through the base once, in caching
    splits = json.loads((tmp_path / "run" / "evaluation.json").read_text())["splits"]
    assert splits["val"]["n"] == 4 and splits["test"]["n"] == 4 and result.test_accuracy is not None
    # the saved classifier (base + head) agrees with the evaluation made from the cached features
    import keras
    from PIL import Image

    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    sample = splits["val"]["samples"][0]
    img = np.asarray(Image.open(data / sample["path"]).convert("RGB").resize((32, 32)), np.float32)[None]
    assert abs(float(np.asarray(model(img))[0].max()) - sample["prob"]) < 0.02

    seen.update(images=0, predict_probs=0)
    config = defaults(data, fine_tune_epochs=1, unfreeze_top=1)
    config.split.test_fraction = 0.2
    fine = train(config, tmp_path / "run2")
    assert seen["images"] == 0 and (seen["predict_probs"] > 0) == (fine.kept == "after fine-tuning")
