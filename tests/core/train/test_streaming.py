"""Streaming head training: every row once per epoch, shuffled across shards, bounded windows, real training."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.core.train import streaming
from tlstudio.core.train.feature_cache import FeatureCache


def _cache_with_rows(tmp_path, n=103, dim=6, shard=10, k=3, seed=0):
    """A real cache whose shards hold ``n`` rows; row i's first feature is i, its label i % k."""
    cache = FeatureCache("s" * 40, root=tmp_path)
    rng = np.random.default_rng(seed)
    keys = [f"file{i:04d}" for i in range(n)]
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    feats[:, 0] = np.arange(n)  # exact in float16 for n < 2048
    for start in range(0, n, shard):
        cache.store(keys[start : start + shard], feats[start : start + shard])
    labels = np.arange(n) % k
    return cache, keys, feats.astype(np.float16).astype(np.float32), labels


def test_rows_from_cache_finds_every_row_and_refuses_missing_ones(tmp_path):
    cache, keys, feats, labels = _cache_with_rows(tmp_path)
    rows = streaming.rows_from_cache(cache, keys, labels)
    assert len(rows) == len(keys) and rows.dim == feats.shape[1]
    assert len(rows.shards) == 11
    with pytest.raises(KeyError, match="1 of 2"):
        streaming.rows_from_cache(cache, [keys[0], "never-stored"], [0, 1])


def test_an_epoch_yields_every_row_once_with_its_label(tmp_path):
    cache, keys, feats, labels = _cache_with_rows(tmp_path)
    # The split is a shuffled subset, as a real split is: rows are found wherever they are.
    pick = np.random.default_rng(1).permutation(len(keys))[:77]
    rows = streaming.rows_from_cache(cache, [keys[i] for i in pick], labels[pick], weights=np.full(77, 0.5))
    batches = list(streaming.iterate_batches(rows, batch_size=8, num_classes=3, buffer_rows=20, seed=3))
    assert [len(b[0]) for b in batches] == [8] * 9 + [5]  # full batches, one short batch at the end
    assert len(batches) == streaming.steps_per_epoch(rows, 8)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    ids = x[:, 0].astype(int)
    assert sorted(ids) == sorted(pick)
    np.testing.assert_array_equal(x, feats[ids])  # the whole row, exactly as cached
    np.testing.assert_array_equal(y.argmax(axis=1), labels[ids])
    assert np.all(w == 0.5)


def test_epochs_are_shuffled_across_shards_and_reproducible(tmp_path):
    cache, keys, _, labels = _cache_with_rows(tmp_path, n=200, shard=20)
    rows = streaming.rows_from_cache(cache, keys, labels)

    def order(epoch, seed=0):
        return np.concatenate(
            [b[0][:, 0] for b in streaming.iterate_batches(rows, batch_size=16, num_classes=3, epoch=epoch, seed=seed, buffer_rows=60)]
        ).astype(int)

    e0, e1 = order(0), order(1)
    assert not np.array_equal(e0, e1)
    np.testing.assert_array_equal(e0, order(0))  # resuming replays the same order
    first_batch_shards = set(e0[:16] // 20)
    assert len(first_batch_shards) > 1  # a batch mixes rows of several shards, not one cache flush
    in_order = np.concatenate(
        [b[0][:, 0] for b in streaming.iterate_batches(rows, batch_size=16, num_classes=3, shuffle=False)]
    ).astype(int)
    np.testing.assert_array_equal(in_order, np.arange(200))


def test_memory_is_bounded_by_the_window_not_the_split(tmp_path, monkeypatch):
    cache, keys, _, labels = _cache_with_rows(tmp_path, n=400, shard=10)
    rows = streaming.rows_from_cache(cache, keys, labels)
    held: list[int] = []
    read = streaming._read_rows
    live = [0]

    def counting(path, idx):
        out = read(path, idx)
        live[0] += len(out)
        held.append(live[0])
        return out

    monkeypatch.setattr(streaming, "_read_rows", counting)
    for _x, _y, _w in streaming.iterate_batches(rows, batch_size=7, num_classes=3, buffer_rows=50):
        live[0] = 0  # the consumer has taken the window's batches
    assert max(held) <= 50 + 10  # one window: about buffer_rows, plus at most one shard


class _Recorder:
    """A plain Keras callback: records epoch logs, stops after ``stop_after`` batches (like a cancel)."""

    def __new__(cls, stop_after=None, validate=None):
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.epochs, self.batches = [], 0

            def on_train_batch_end(self, batch, logs=None):
                self.batches += 1
                if stop_after is not None and self.batches >= stop_after:
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                if validate is not None:
                    logs["val_loss"], logs["val_accuracy"] = validate()
                self.epochs.append(logs)

        return Recorder()


def test_a_head_learns_from_streamed_features(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    n, dim, k = 600, 8, 3
    labels = rng.integers(0, k, n)
    centers = rng.normal(size=(k, dim)) * 3
    feats = (centers[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    cache = FeatureCache("h" * 40, root=tmp_path)
    keys = [f"k{i}" for i in range(n)]
    for s in range(0, n, 64):
        cache.store(keys[s : s + 64], feats[s : s + 64])
    train_rows = streaming.rows_from_cache(cache, keys[:480], labels[:480])
    val_rows = streaming.rows_from_cache(cache, keys[480:], labels[480:])
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(k, activation="softmax", name="predictions")])
    head.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    before = streaming.validation_scores(head, val_rows)
    recorder = _Recorder(validate=lambda: streaming.validation_scores(head, val_rows))
    streaming.train_head_streaming(head, train_rows, epochs=4, batch_size=32, callbacks=[recorder], buffer_rows=128)
    loss, acc = streaming.validation_scores(head, val_rows)
    assert len(recorder.epochs) == 4 and recorder.batches == 4 * 15
    assert recorder.epochs[-1]["loss"] < recorder.epochs[0]["loss"]
    assert loss < before[0] and acc > 0.9
    probs = streaming.predict_streaming(head, val_rows)
    np.testing.assert_allclose(probs, np.asarray(head(feats[480:].astype(np.float16).astype(np.float32))), atol=1e-5)


def test_stop_training_ends_streaming_within_a_batch(tmp_path):
    import keras

    cache, keys, _, labels = _cache_with_rows(tmp_path, n=300, shard=30)
    rows = streaming.rows_from_cache(cache, keys, labels)
    head = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    head.compile(optimizer="adam", loss="categorical_crossentropy")
    recorder = _Recorder(stop_after=3)  # what the run's bridge does when cancel is set
    streaming.train_head_streaming(head, rows, epochs=5, batch_size=10, callbacks=[recorder])
    assert recorder.batches == 3 and len(recorder.epochs) == 1
