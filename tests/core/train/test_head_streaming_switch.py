"""A run whose features exceed the memory budget streams its head phase from the cache shards.

Real runs on generated images (MobileNet 0.25 with its shipped ImageNet weights, 64 px); the budget is forced tiny
through ``streaming.STREAM_ABOVE_BYTES`` so a run of a few dozen images takes the streaming path.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.core.train import cached_features, head_fit, streaming
from tlstudio.core.train.feature_cache import FeatureCache
from tlstudio.core.train.trainer import train


def _config(data, **changes) -> TrainConfig:
    config = TrainConfig(
        data_dir=str(data), base="MobileNet", alpha=0.25, weights="imagenet", input_size=64, head_epochs=6,
        fine_tune_epochs=0, batch_size=8, auto_epochs=False, seed=3,
    )
    config.split.val_fraction = 0.25
    config.split.test_fraction = 0.2
    for k, v in changes.items():
        setattr(config, k, v)
    return config


@pytest.fixture
def fills(monkeypatch):
    """The CachedSplits each run's fill_cache returned."""
    seen = []
    real = cached_features.fill_cache

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(cached_features, "fill_cache", spy)
    return seen


def test_a_run_over_the_budget_streams_its_head_and_says_so(image_folder, tmp_path, monkeypatch, fills):
    data = image_folder({"a": 16, "b": 16, "c": 16})
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 1000)  # 48 rows x 256 x 4 bytes is far over
    monkeypatch.setattr(head_fit, "SEARCH_MIN_ROWS", 12)  # the search takes a real subsample
    monkeypatch.setattr(head_fit, "VALIDATION_CHUNK", 5)  # validation in several chunks
    events = []
    result = train(_config(data), tmp_path / "run", emit=events.append)

    assert result.status == "finished"
    assert result.val_accuracy >= 0.75 and result.test_accuracy >= 0.75  # three plain colours: easy when it works
    cached = fills[-1]
    assert cached.streamed and all(isinstance(x, streaming.StreamedFeatures) for x, _, _ in cached.arrays.values())
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["head_features"] == {"held": "streamed", "bytes": 48 * 256 * 4, "budget_bytes": 1000}
    rows = summary["search"]["rows"]  # the automatic settings were searched on a subsample
    assert (rows["of_train"], rows["of_val"]) == (summary["num_train"], summary["num_val"]) and 1 <= rows["train"] < rows["of_train"]
    texts = [e.text for e in events if isinstance(e, ev.LogMessage)]
    assert any("exceed the memory budget" in t and "streams them" in t for t in texts)
    assert any("searched on" in t and f"of {rows['of_train']} training" in t for t in texts)
    # The same history and best-epoch record as an in-memory run.
    epochs = [e for e in events if isinstance(e, ev.EpochEnded) and e.phase == ev.PHASE_HEAD]
    assert len(epochs) >= 1 and all(e.val_loss is not None for e in epochs)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert len(history) == len(epochs)
    best = min(history, key=lambda h: h["val_loss"])
    assert summary["head_only"]["run_epoch"] == best["run_epoch"]


def test_below_the_budget_the_features_stay_in_memory(image_folder, tmp_path, monkeypatch, fills):
    data = image_folder({"a": 8, "b": 8})
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 10**12)
    result = train(_config(data, head_epochs=2), tmp_path / "run")
    assert result.status == "finished" and not fills[-1].streamed
    assert isinstance(fills[-1].arrays["train"][0], np.ndarray)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["head_features"]["held"] == "in memory" and "rows" not in (summary["search"] or {})


def test_streamed_and_in_memory_heads_train_to_the_same_place(image_folder, tmp_path, monkeypatch):
    """Fixed settings, no search: both paths learn the task (the shuffles differ, the update rule not)."""
    data = image_folder({"a": 10, "b": 10})
    config = _config(data, head_epochs=4, auto_head_lr=False, auto_dropout=False, head_lr=0.01, dropout=0.0)
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 1)
    streamed = train(config, tmp_path / "streamed")
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 10**12)
    in_memory = train(config, tmp_path / "memory")
    assert streamed.cache_computed == in_memory.cache_hits == 20  # the second run read the first one's cache
    assert abs(streamed.val_accuracy - in_memory.val_accuracy) <= 0.25


def test_streamed_features_index_like_the_array(tmp_path):
    cache = FeatureCache("k" * 40, root=tmp_path)
    feats = np.random.default_rng(0).normal(size=(23, 5)).astype(np.float16).astype(np.float32)
    keys = [f"f{i}" for i in range(23)]
    for start in range(0, 23, 6):
        cache.store(keys[start : start + 6], feats[start : start + 6])
    order = np.random.default_rng(1).permutation(23)[:17]  # a split: a shuffled subset
    x = streaming.StreamedFeatures(streaming.rows_from_cache(cache, [keys[i] for i in order], np.zeros(17)))
    assert len(x) == 17 and x.shape == (17, 5)
    np.testing.assert_array_equal(x[3:11], feats[order[3:11]])
    np.testing.assert_array_equal(x[[16, 0, 0, 5]], feats[order[[16, 0, 0, 5]]])
    assert x[5:5].shape == (0, 5)


def test_the_budget_comes_from_the_constant_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", None)
    monkeypatch.setenv("TLSTUDIO_STREAM_ABOVE_BYTES", "123456")
    assert streaming.memory_budget() == 123456
    monkeypatch.delenv("TLSTUDIO_STREAM_ABOVE_BYTES")
    assert streaming.memory_budget() >= max(streaming.MIN_BUDGET_BYTES, streaming.available_memory() // 4 - 2**24)
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 7)
    assert streaming.memory_budget() == 7
