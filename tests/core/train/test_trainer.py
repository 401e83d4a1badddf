"""train(): events, the run folder, cancel, the embedding cache, resume, files that break mid-run.

Tiny on purpose: generated 40x48 images, MobileNet alpha 0.25 with random weights at 32 px.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.run_folder import load_run
from tlstudio.core.train import cached_features
from tlstudio.core.train import trainer as training
from tlstudio.core.train.run_data import class_weights_for
from tlstudio.core.train.trainer import train


def tiny_config(data, **changes) -> TrainConfig:
    config = TrainConfig(
        data_dir=str(data),
        base="MobileNet",
        alpha=0.25,
        weights="none",
        input_size=32,
        head_epochs=2,
        fine_tune_epochs=0,
        batch_size=8,
        head_lr=0.01,
        auto_epochs=False,  # the epoch counts below are the tests' own
    )
    config.split.val_fraction = 0.2  # the counts below assume a fixed share, not the automatic one
    for k, v in changes.items():
        setattr(config, k, v)
    return config


@pytest.fixture
def count_base_calls(monkeypatch):
    """Counts the images the frozen base is run on to fill the cache."""
    seen = {"images": 0, "calls": 0}
    real = cached_features.compute_features

    def counting(fn, images):
        seen["calls"] += 1
        seen["images"] += int(images.shape[0])
        return real(fn, images)

    monkeypatch.setattr(cached_features, "compute_features", counting)
    return seen


def kinds(events):
    return [type(e).__name__ for e in events]


def test_events_in_order_and_a_complete_run_folder(image_folder, tmp_path):
    data = image_folder({"red": 10, "green": 10})
    config = tiny_config(data, fine_tune_epochs=1, unfreeze_top=1)
    config.split.test_fraction = 0.2
    events = []
    result = train(config, tmp_path / "run", emit=events.append)

    names = kinds(events)
    assert names[0] in ("RunStarted", "LogMessage") and names[-1] == "TrainFinished"
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert (started.num_train, started.num_val, started.num_test) == (12, 4, 4)
    assert started.phases == (ev.PHASE_CACHING, ev.PHASE_HEAD, ev.PHASE_FINE_TUNE, ev.PHASE_EVALUATING)
    assert started.total_epochs == 3 and started.classes == ("green", "red")
    phases = [e.phase for e in events if isinstance(e, ev.PhaseStarted)]
    assert phases == list(started.phases)
    # every event of a phase comes after its PhaseStarted and before the next one
    current = None
    for e in events:
        if isinstance(e, ev.PhaseStarted):
            current = e.phase
        elif isinstance(e, (ev.BatchEnded, ev.EpochEnded)):
            assert e.phase == current
        elif isinstance(e, ev.CacheProgress):
            assert current == ev.PHASE_CACHING and 0 <= e.hits <= e.done <= e.total == 20  # test split too
    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    assert all(b.steps == 2 for b in batches)  # 12 images, batch 8
    assert [b.global_step for b in batches] == list(range(1, len(batches) + 1)) and len(batches) == 6
    epochs = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert [(e.phase, e.epoch, e.run_epoch) for e in epochs] == [
        ("head", 0, 1),
        ("head", 1, 2),
        ("fine_tune", 0, 3),
    ]
    assert all(e.val_loss is not None and 0 <= e.val_accuracy <= 1 for e in epochs)

    assert result.status == "finished" and result.epochs_run == 3 and result.train_seconds > 0
    assert result.val_accuracy is not None and result.test_accuracy is not None
    run = tmp_path / "run"
    for name in ("config.json", "labels.txt", "model.keras", "history.json", "evaluation.json", "skipped.json", "run.json"):
        assert (run / name).is_file(), name
    info = load_run(run)
    assert info.status == "finished" and info.classes == ["green", "red"]
    assert sorted(info.split) == ["test", "train", "val"] and len(info.split["train"]) == 12
    assert len(info.history["epochs"]) == 3 and len(info.history["batches"]) == 6
    assert info.evaluation["splits"]["val"]["confusion"] and "test" in info.evaluation["splits"]
    assert info.summary["num_test"] == 4 and info.summary["epochs_run"] == 3
    stages = info.summary["stage_seconds"]  # where the run's time went, stage by stage
    assert list(stages) == ["data", "tensorflow", "build", "features", "search", "head", "fine_tune", "save", "evaluate"]
    assert all(seconds >= 0 for seconds in stages.values())
    assert info.config.fine_tune_epochs == 1 and info.config.split.test_fraction == 0.2
    assert (run / "labels.txt").read_text().split() == ["green", "red"]

    # model.keras is a plain Keras model that takes raw RGB 0-255 and loads in safe mode
    import keras

    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    probs = np.asarray(model(np.full((1, 32, 32, 3), 200.0, np.float32)))
    assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1) < 1e-4


def test_cancel_in_the_first_epoch_stops_within_a_batch(image_folder, tmp_path):
    from tlstudio.core.models import catalogue as base_models
    from tlstudio.core.models.layer_tree import LayerTree

    data = image_folder({"a": 12, "b": 12})
    config = tiny_config(data, head_epochs=3, batch_size=4)
    config.augment.enabled = True  # augmentation: no cache, the head trains end to end through the images
    tree = LayerTree.from_model(base_models.build_classifier(config, 2), family="mobilenet")
    tree.unfreeze_top_blocks(1)
    config.layer_state = tree.state()
    cancel = threading.Event()
    events = []

    def emit(e):
        events.append(e)
        if isinstance(e, ev.BatchEnded):
            cancel.set()

    result = train(config, tmp_path / "run", emit=emit, cancel=cancel)
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert ev.PHASE_CACHING not in started.phases and ev.PHASE_FINE_TUNE in started.phases
    assert any(isinstance(e, ev.LogMessage) and "end to end" in e.text for e in events)
    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    assert len(batches) == 1 and batches[0].steps == 5  # no batch after the one where cancel was asked
    assert not [e for e in events if isinstance(e, ev.EpochEnded)]
    assert not [e for e in events if isinstance(e, ev.PhaseStarted) and e.phase == ev.PHASE_FINE_TUNE]
    assert result.status == "cancelled" and isinstance(events[-1], ev.TrainFinished)
    info = load_run(tmp_path / "run")
    assert info.status == "cancelled" and info.model_path is not None
    assert info.evaluation["splits"]["val"]["n"] == len(info.split["val"])
    assert info.config.layer_state == config.layer_state


def test_the_cache_is_hit_on_a_second_run_and_a_changed_file_invalidates_only_itself(
    image_folder, tmp_path, count_base_calls
):
    data = image_folder({"a": 6, "b": 6})
    first = train(tiny_config(data, head_epochs=1), tmp_path / "r1")
    assert count_base_calls["images"] == 12 and first.cache_computed == 12

    count_base_calls.update(images=0, calls=0)
    events = []
    second = train(tiny_config(data, head_epochs=2, head_lr=0.003, dropout=0.5), tmp_path / "r2", emit=events.append)
    assert count_base_calls["calls"] == 0  # the base never ran
    assert second.cache_hits == 12 and second.status == "finished"
    progress = [e for e in events if isinstance(e, ev.CacheProgress)]
    assert progress[-1].done == progress[-1].hits == 12

    changed = data / "a" / "a_all_002.png"
    from PIL import Image

    Image.new("RGB", (40, 48), (1, 2, 3)).save(changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 5 * 10**9))
    count_base_calls.update(images=0, calls=0)
    third = train(tiny_config(data, head_epochs=1), tmp_path / "r3")
    assert count_base_calls["images"] == 1 and third.cache_hits == 11


def test_resume_continues_an_interrupted_run_at_the_right_epoch(image_folder, tmp_path):
    data = image_folder({"a": 8, "b": 8})
    config = tiny_config(data, head_epochs=2, fine_tune_epochs=3, early_stopping=False)
    run = tmp_path / "run"

    def crash(e):  # dies in the middle of the second fine-tuning epoch, as a killed process would
        if isinstance(e, ev.BatchEnded) and e.phase == ev.PHASE_FINE_TUNE and e.epoch == 1:
            raise RuntimeError("power cut")

    with pytest.raises(training.TrainingError):
        train(config, run, emit=crash)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not (run / "model.keras").exists()

    events = []
    result = train(None, run, emit=events.append, resume=True)
    epochs = [(e.phase, e.epoch, e.run_epoch) for e in events if isinstance(e, ev.EpochEnded)]
    assert epochs == [("fine_tune", 1, 4), ("fine_tune", 2, 5)]
    assert not [e for e in events if isinstance(e, ev.LogMessage) and "optimizer" in e.text]
    assert result.status == "finished" and result.epochs_run == 5
    history = load_run(run).history["epochs"]
    assert [(h["phase"], h["run_epoch"]) for h in history] == [
        ("head", 1),
        ("head", 2),
        ("fine_tune", 3),
        ("fine_tune", 4),
        ("fine_tune", 5),
    ]
    with pytest.raises(training.TrainingError, match="already finished"):
        train(None, run, resume=True)


def test_a_file_that_breaks_after_the_scan_is_skipped_not_fatal(image_folder, tmp_path):
    data = image_folder({"a": 8, "b": 8})
    scan = scan_dataset(data)
    bad = data / "b" / "b_all_003.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # corrupted after the scan
    config = tiny_config(data, head_epochs=1)
    events = []
    result = train(config, tmp_path / "run", emit=events.append, scan=scan)
    assert result.status == "finished"
    skipped = [e for e in events if isinstance(e, ev.FileSkipped)]
    assert [s.path for s in skipped] == ["b/b_all_003.png"]
    assert result.cache_computed == 15  # every other image went through the base
    recorded = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert {"path": "b/b_all_003.png", "reason": skipped[0].reason} in recorded
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert "b/b_all_003.png" not in [s["path"] for s in evaluation["splits"]["val"]["samples"]]


def test_bad_configuration_is_a_one_line_error(image_folder, tmp_path):
    data = image_folder({"a": 5, "b": 5})
    events = []
    with pytest.raises(Exception) as info:
        train(tiny_config(data, resize_policy="squash"), tmp_path / "run", emit=events.append)
    assert "resize policy" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(events[-1], ev.TrainFailed)


@pytest.mark.slow
def test_hymenoptera_reaches_80_percent_with_the_shared_weights(hymenoptera, shared_weights, tmp_path):
    config = TrainConfig(
        data_dir=str(hymenoptera), base="MobileNet", alpha=0.25, weights=str(shared_weights), head_epochs=8
    )
    result = train(config, tmp_path / "run")
    assert result.status == "finished"
    assert result.val_accuracy >= 0.80


def test_class_weights_balance_only_imbalanced_classes():
    even = class_weights_for(np.array([0, 0, 1, 1, 1]), 2)
    assert list(even) == [1.0, 1.0]
    skewed = class_weights_for(np.array([0] * 8 + [1] * 2), 2)
    assert skewed == pytest.approx([10 / 16, 10 / 4])
    assert list(class_weights_for(np.array([0] * 8 + [1] * 2), 2, "none")) == [1.0, 1.0]


def test_early_stopping_keeps_the_best_epoch():
    from tlstudio.core.train.checkpoints import BestTracker

    best = BestTracker(patience=2)
    losses = [1.0, 0.5, 0.6, 0.4, 0.45, 0.41]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        best.update(loss, lambda e=epoch: [np.full(1, e)], "full", epoch)
        stops.append(best.should_stop())
    assert best.best_run_epoch == 4 and best.best_weights[0][0] == 4
    assert stops == [False, False, False, False, False, True]
