"""The sample dataset shipped for "Try a sample": it scans clean and trains to a useful model."""

from __future__ import annotations

import json
import time

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.train.trainer import train
from tlstudio.resources import sample_dataset

CLASSES = ["one", "three", "two"]


def test_sample_ships_with_its_licence_and_scans_clean():
    root = sample_dataset()
    assert root is not None and root.is_dir()
    assert (root / "LICENSE.md").is_file() and (root / "LICENSE-source.txt").is_file()
    assert "Apache License" in (root / "LICENSE-source.txt").read_text()
    scan = scan_dataset(root)
    assert scan.classes == CLASSES and not scan.presplit
    assert scan.class_counts() == {name: 40 for name in CLASSES}
    assert scan.skipped() == []
    assert scan.warnings == []
    assert all(f.width == 100 and f.height == 100 for f in scan.usable())


def test_shipped_sample_is_the_shared_one(sample_signs):
    root = sample_dataset()
    shipped = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    shared = sorted(p.relative_to(sample_signs) for p in sample_signs.rglob("*") if p.is_file())
    assert shipped == shared
    assert all((root / p).read_bytes() == (sample_signs / p).read_bytes() for p in shipped)


@pytest.mark.slow
def test_sample_trains_with_the_default_config(tmp_path, monkeypatch):
    """Default config: frozen MobileNet 0.25 from the shipped weights, embedding cache, 10 epochs.

    "Try a sample" must end in a useful model: the default settings reach a validation accuracy
    above 0.9 on the 24 validation photos (0.33 by chance). A retrain with another learning rate
    then takes every feature from the embedding cache. The whole test takes under a minute on two
    CPU cores, most of it the first pass of the 120 photos through the base.
    """
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))  # empty cache: shipped weights only
    monkeypatch.setenv("TLSTUDIO_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # and no download possible
    data = str(sample_dataset())
    events: list = []
    start = time.perf_counter()
    result = train(TrainConfig(data_dir=data), tmp_path / "run", emit=events.append)
    first_seconds = time.perf_counter() - start
    assert result.status == "finished" and result.model_path.is_file()
    assert result.cache_computed == 120  # every photo went through the frozen base once
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (summary["base"], summary["alpha"], summary["input_size"]) == ("MobileNet", 0.25, 224)
    assert (summary["num_train"], summary["num_val"]) == (96, 24)
    assert result.val_accuracy >= 0.8

    retrain = train(TrainConfig(data_dir=data, head_lr=1e-2), tmp_path / "run-lr", emit=events.append)
    assert retrain.cache_hits == 120 and retrain.cache_computed == 0
    assert retrain.val_accuracy >= 0.8
    print(f"sample: default {result.val_accuracy:.2f} in {first_seconds:.0f} s; "
          f"head_lr 1e-2 {retrain.val_accuracy:.2f} in {retrain.train_seconds:.0f} s")
