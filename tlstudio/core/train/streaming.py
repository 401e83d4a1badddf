"""Head training that streams features from the memory-mapped cache shards, in bounded memory.

The in-memory head phase copies every cached feature into one float32 array: fine for
thousands of images, impossible for a million (1M x 1,280 x 4 bytes = 5 GB, twice that while
stacking). Here the rows stay in the cache's shards (float16 ``.npy`` files, see
:mod:`tlstudio.core.train.feature_cache`) and one epoch reads them window by window:

1. the shards are visited in a new random order every epoch;
2. consecutive shards are gathered into a *window* of about ``buffer_rows`` rows: each shard is
   memory-mapped, the rows of this training set are copied out (in file order, so the reads
   are sequential) and the mapping is closed again, so its pages stop counting in the
   process's resident memory;
3. the window is shuffled and cut into batches; the rows left over (less than one batch) are
   carried into the next window, so every batch but the last is full.

Memory is therefore bounded by about ``buffer_rows`` rows plus one shard, whatever the size of
the training set, and the shuffle mixes rows from many shards at once (a shard holds the images
of one cache flush, which need not be mixed by class). The batches feed the same light training
step as the in-memory head (:func:`fit_small_model`), so events,
cancel, early stopping and checkpoints behave the same.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Rows gathered and shuffled together (65,536 rows of 1,280 float32 = 320 MB).
DEFAULT_BUFFER_ROWS = 65_536
#: A run's features above this many bytes (rows x width x 4) are streamed from the cache shards
#: instead of loaded; None: ``$TLSTUDIO_STREAM_ABOVE_BYTES``, else a quarter of the available memory.
STREAM_ABOVE_BYTES: int | None = None
#: Never stream below this (the automatic budget on a machine short of memory).
MIN_BUDGET_BYTES = 256 * 1024**2


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``; else free pages; else 4 GiB)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def memory_budget() -> int:
    """Bytes of features a run may hold in memory for its head phase (see :data:`STREAM_ABOVE_BYTES`).

    The automatic budget is a quarter of the available memory: the in-memory head holds the
    features about one and a half times (the cache's float16 rows and the float32 arrays), and
    TensorFlow, the base model and the rest of the machine need the remainder.
    """
    if STREAM_ABOVE_BYTES is not None:
        return int(STREAM_ABOVE_BYTES)
    text = os.environ.get("TLSTUDIO_STREAM_ABOVE_BYTES", "").strip()
    if text:
        try:
            return int(float(text))
        except ValueError:
            pass  # a malformed override: the automatic budget
    return max(MIN_BUDGET_BYTES, available_memory() // 4)


@dataclass(frozen=True)
class ShardRows:
    """The rows of one split, as places in the cache shards.

    Attributes
    ----------
    shards
        The shard ``.npy`` files the rows live in.
    shard_of, row
        Per row of the split: index into ``shards``, and row within that shard.
    labels
        Class index per row (int32).
    weights
        Sample weight per row (float32; class weights).
    dim
        Feature length.
    """

    shards: tuple[Path, ...]
    shard_of: np.ndarray
    row: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    dim: int

    def __len__(self) -> int:
        return int(len(self.row))


def shard_rows(
    locations: Sequence[tuple[str | Path, int]],
    labels: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> ShardRows:
    """Group ``(shard file, row)`` places (as from :meth:`FeatureCache.locate`) into a :class:`ShardRows`.

    Parameters
    ----------
    locations
        One ``(shard .npy path, row)`` per example, in the split's order.
    labels
        Class index per example.
    weights
        Sample weight per example (default 1).

    Raises
    ------
    ValueError
        When the lengths differ, or there are no rows.
    """
    n = len(locations)
    labels_arr = np.asarray(labels, dtype=np.int32).reshape(-1)
    weights_arr = np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32).reshape(-1)
    if len(labels_arr) != n or len(weights_arr) != n:
        raise ValueError(f"{n} feature rows but {len(labels_arr)} labels and {len(weights_arr)} weights")
    if n == 0:
        raise ValueError("no feature rows to train on")
    ids: dict[Any, int] = {}
    shard_of = np.fromiter((ids.setdefault(path, len(ids)) for path, _ in locations), np.int32, n)
    row = np.fromiter((r for _, r in locations), np.int64, n)
    shards = tuple(Path(p) for p in ids)
    first = np.load(shards[0], mmap_mode="r", allow_pickle=False)
    dim = int(first.shape[1])
    del first
    return ShardRows(shards, shard_of, row, labels_arr, weights_arr, dim)


def rows_from_cache(
    cache: Any, keys: Sequence[str], labels: Sequence[int] | np.ndarray, weights: Any = None
) -> ShardRows:
    """The :class:`ShardRows` of ``keys`` in a :class:`~tlstudio.core.train.feature_cache.FeatureCache`.

    Raises
    ------
    KeyError
        When some key is not in the cache (fill the cache first).
    """
    where = cache.locate(keys)
    missing = [k for k in keys if k not in where]
    if missing:
        raise KeyError(f"{len(missing)} of {len(keys)} feature rows are not in the cache")
    return shard_rows([where[k] for k in keys], labels, weights)


def _read_rows(path: Path, rows: np.ndarray) -> np.ndarray:
    """Copy ``rows`` (sorted) of one shard out of a short-lived memory mapping, as float32."""
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    try:
        return np.asarray(mapped[rows], dtype=np.float32)
    finally:
        # Dropping the last reference unmaps the file: its pages leave our resident set.
        del mapped


def _by_shard(rows: ShardRows) -> list[np.ndarray]:
    """Per shard, the indices (into the split) of its rows, sorted by row within the shard."""
    order = np.lexsort((rows.row, rows.shard_of))
    bounds = np.searchsorted(rows.shard_of[order], np.arange(len(rows.shards) + 1))
    return [order[bounds[s] : bounds[s + 1]] for s in range(len(rows.shards))]


def iterate_batches(
    rows: ShardRows,
    *,
    batch_size: int,
    num_classes: int,
    epoch: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
    one_hot: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of ``(features float32 (b, D), one-hot labels float32 (b, K), weights float32 (b,))``.

    Parameters
    ----------
    rows
        The split, from :func:`rows_from_cache` or :func:`shard_rows`.
    batch_size
        Rows per batch; only the last batch of the epoch may be smaller.
    num_classes
        Width of the one-hot labels.
    epoch, seed
        The shuffle of an epoch is a function of both, so a resumed run replays the same order.
    shuffle
        False reads the rows in shard order (prediction, evaluation); the batches then come in
        the split's order only when the split is itself in shard order.
    buffer_rows
        About how many rows are held and shuffled at once (the memory bound).
    one_hot
        False yields the labels as class indices (int32), as the numpy head takes them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rng = np.random.default_rng([int(seed), int(epoch)])
    groups = _by_shard(rows)
    shard_order = rng.permutation(len(groups)) if shuffle else np.arange(len(groups))
    eye = np.eye(num_classes, dtype=np.float32)
    # Plan the windows: consecutive shards (in this epoch's order) until about buffer_rows rows.
    windows: list[list[int]] = [[]]
    held = 0
    for s in shard_order:
        if len(groups[int(s)]) == 0:
            continue
        if held >= buffer_rows:
            windows.append([])
            held = 0
        windows[-1].append(int(s))
        held += len(groups[int(s)])
    carry_x = np.zeros((0, rows.dim), np.float32)
    carry_i = np.zeros(0, np.int64)
    for w, shards in enumerate(windows):
        last = w == len(windows) - 1
        count = len(carry_i) + sum(len(groups[s]) for s in shards)
        # One buffer per window, filled in place: the window's rows are held once, not copied.
        x = np.empty((count, rows.dim), np.float32)
        idx = np.empty(count, np.int64)
        x[: len(carry_i)], idx[: len(carry_i)] = carry_x, carry_i
        pos = len(carry_i)
        for s in shards:
            g = groups[s]
            x[pos : pos + len(g)] = _read_rows(rows.shards[s], rows.row[g])
            idx[pos : pos + len(g)] = g
            pos += len(g)
        order = rng.permutation(count) if shuffle else np.arange(count)
        full = count if last else (count // batch_size) * batch_size
        for start in range(0, full, batch_size):
            pick = order[start : start + batch_size]
            sel = idx[pick]
            labels = rows.labels[sel]
            yield x[pick], eye[labels] if one_hot else labels, rows.weights[sel]
        carry_x, carry_i = x[order[full:]], idx[order[full:]]
        del x, idx


class StreamedFeatures:
    """One split's features as a read-only array over the cache shards, read only when indexed.

    ``len(x)``, ``x.shape`` and ``x[a:b]`` / ``x[indices]`` (float32 rows, in the order asked)
    behave as on the in-memory array, so code that scores a head chunk by chunk (evaluation)
    runs unchanged on a split that does not fit in memory.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, rows: ShardRows) -> None:
        self.rows = rows

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.rows.dim)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        idx = np.arange(len(self.rows))[key] if isinstance(key, slice) else np.asarray(key, np.int64).reshape(-1)
        out = np.empty((len(idx), self.rows.dim), np.float32)
        if len(idx) == 0:
            return out
        shard, row = self.rows.shard_of[idx], self.rows.row[idx]
        order = np.lexsort((row, shard))  # shard by shard, rows in file order: sequential reads
        cuts = np.flatnonzero(np.diff(shard[order])) + 1
        for group in np.split(order, cuts):
            out[group] = _read_rows(self.rows.shards[int(shard[group[0]])], row[group])
        return out


def steps_per_epoch(rows: ShardRows, batch_size: int) -> int:
    """Batches in one epoch of :func:`iterate_batches`."""
    return math.ceil(len(rows) / int(batch_size))


def streaming_dataset(
    rows: ShardRows,
    *,
    batch_size: int,
    num_classes: int,
    seed: int = 0,
    first_epoch: int = 0,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
) -> Any:
    """A ``tf.data.Dataset`` over :func:`iterate_batches`; every new iteration is the next epoch.

    Its cardinality is known (:func:`steps_per_epoch`), as the progress events need, and one
    batch is prefetched so reading the next window overlaps the training step.
    """
    import tensorflow as tf

    epoch = [int(first_epoch)]

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        e = epoch[0]
        epoch[0] += 1
        yield from iterate_batches(
            rows, batch_size=batch_size, num_classes=num_classes, epoch=e, seed=seed, buffer_rows=buffer_rows
        )

    spec = (
        tf.TensorSpec((None, rows.dim), tf.float32),
        tf.TensorSpec((None, num_classes), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )
    ds = tf.data.Dataset.from_generator(generate, output_signature=spec)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps_per_epoch(rows, batch_size)))
    return ds.prefetch(2)


def predict_streaming(head: Any, rows: ShardRows, *, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities of every row, in the split's order, reading the shards window by window.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, K)``.
    """
    k = int(head.outputs[0].shape[-1])
    out = np.zeros((len(rows), k), np.float32)
    for s, idx in enumerate(_by_shard(rows)):
        if len(idx) == 0:
            continue
        x = _read_rows(rows.shards[s], rows.row[idx])
        for start in range(0, len(idx), batch_size):
            out[idx[start : start + batch_size]] = np.asarray(head(x[start : start + batch_size], training=False))
    return out


def validation_scores(
    head: Any, rows: ShardRows, *, label_smoothing: float = 0.0, batch_size: int = 4096
) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``head`` on a streamed split: the same cross-entropy as training."""
    probs = predict_streaming(head, rows, batch_size=batch_size).astype(np.float64)
    k = probs.shape[1]
    y = rows.labels
    picked = np.clip(probs, 1e-7, 1.0)
    # Smoothed cross-entropy without building an (n, K) one-hot: (1-s) * -log p_y + s/K * sum -log p.
    nll_true = -np.log(picked[np.arange(len(y)), y])
    nll_all = -np.log(picked).sum(axis=1)
    loss = (1.0 - label_smoothing) * nll_true + (label_smoothing / k) * nll_all
    return float(loss.mean()), float((probs.argmax(axis=1) == y).mean())


def train_head_streaming(
    head: Any,
    train_rows: ShardRows,
    *,
    epochs: int,
    batch_size: int,
    callbacks: Sequence[Any],
    label_smoothing: float = 0.0,
    seed: int = 0,
    initial_epoch: int = 0,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
) -> None:
    """Train a compiled ``head`` on streamed features for ``epochs`` epochs.

    Parameters
    ----------
    head
        The compiled head model (features -> softmax).
    train_rows
        The training split in the cache shards.
    epochs, initial_epoch
        Epoch budget, and where to start (resuming).
    batch_size
        Rows per step.
    callbacks
        Keras callbacks, as for the in-memory head: the run's
        :class:`~tlstudio.core.train.callbacks.TrainingEvents` (give it
        ``validate=lambda: validation_scores(head, val_rows)`` so validation streams as well)
        and :class:`~tlstudio.core.train.callbacks.CancelOnRequest`.
    label_smoothing
        Of the cross-entropy loss.
    seed
        Shuffling seed (each epoch's order depends on it and the epoch number).
    buffer_rows
        Rows held and shuffled at once.
    """
    import keras

    k = int(head.outputs[0].shape[-1])
    ds = streaming_dataset(
        train_rows, batch_size=batch_size, num_classes=k, seed=seed, first_epoch=initial_epoch, buffer_rows=buffer_rows
    )
    fit_small_model(
        head,
        ds,
        epochs=int(epochs),
        initial_epoch=int(initial_epoch),
        steps=steps_per_epoch(train_rows, batch_size),
        callbacks=list(callbacks),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(label_smoothing)),
    )


def fit_small_model(
    model: Any, dataset: Any, *, epochs: int, initial_epoch: int, steps: int, callbacks: Sequence[Any], loss: Any
) -> None:
    """Train ``model`` (compiled) on ``dataset`` of ``(x, one-hot y, sample weight)`` batches.

    Parameters
    ----------
    model
        A compiled Keras model; its optimizer is used.
    dataset
        A ``tf.data.Dataset`` of ``(x, y, w)`` batches.
    epochs, initial_epoch
        As for ``Model.fit``.
    steps
        Batches per epoch, given to the callbacks' ``set_params``.
    callbacks
        Keras callbacks, called in order.
    loss
        A Keras loss object taking ``(y, probs, sample_weight=w)``.
    """
    import keras
    import tensorflow as tf

    optimizer = model.optimizer
    variables = model.trainable_variables
    spec = dataset.element_spec

    @tf.function(input_signature=list(spec), reduce_retracing=True)
    def step(x: Any, y: Any, w: Any) -> Any:
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            value = loss(y, probs, sample_weight=w)
        grads = tape.gradient(value, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        hits = tf.cast(tf.equal(tf.argmax(probs, axis=-1), tf.argmax(y, axis=-1)), tf.float32)
        return value, tf.reduce_sum(hits * w), tf.reduce_sum(w), tf.cast(tf.shape(x)[0], tf.float32)

    hooks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, steps=steps, verbose=0)
    model.stop_training = False
    hooks.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        loss_sum = seen = correct = weight = 0.0
        for batch, (x, y, w) in enumerate(dataset):
            value, c, sw, n = (float(v) for v in step(x, y, w))
            loss_sum += value * n
            seen += n
            correct += c
            weight += sw
            logs = {"loss": loss_sum / max(seen, 1.0), "accuracy": correct / weight if weight else 0.0}
            hooks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        hooks.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    hooks.on_train_end()
