"""The head phase on cached features: the small head trained on the cached features, in seconds.

The head trains in numpy (:class:`~tlstudio.core.train.head_stack.HeadStack`, Keras's own update
rules) and its weights are put into the Keras head after every epoch, so the same Keras callbacks
as ``fit``'s (events, cancel, early stopping, checkpoints) see it exactly as they would a fitted
model: nothing is traced, which on cached features costs more than the training itself. With
several replicas (multi-GPU) Keras's ``fit`` is used instead.

Features that exceed the memory budget (``CachedSplits.streamed``) are never loaded whole: the
batches stream from the cache shards window by window (:func:`tlstudio.core.train.streaming.iterate_batches`),
validation reads them chunk by chunk, and the automatic settings are searched on a random
subsample that fits in memory (recorded in the search's ``"rows"``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from tlstudio.core.config import TrainConfig
from tlstudio.core.events import PHASE_HEAD, Event, PhaseStarted
from tlstudio.core.train.cached_features import CachedSplits
from tlstudio.core.train.head_stack import HeadStack
from tlstudio.core.train.run_data import TrainingError

Batches = Callable[[int], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]
#: Validation rows scored at once on streamed features.
VALIDATION_CHUNK = 16_384
#: The settings search on streamed features uses at least this many training rows (all when fewer).
SEARCH_MIN_ROWS = 1024


@dataclass
class HeadSettings:
    """What the head phase on cached features trains with (chosen or given)."""

    head_lr: float
    dropout: float
    batch_size: int
    epochs: int
    patience: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def zero_output_layer(head: Any) -> None:
    """Start the head's softmax layer at zero: uniform predictions, no confidently wrong start.

    Glorot-initialised logits on large pooled features start with a high loss and take epochs
    to recover; from zero, a linear head converges in a few epochs (on hymenoptera with
    MobileNet 0.25, validation accuracy after 10 epochs goes from about 0.80 to about 0.87).
    """
    try:
        layer = head.get_layer("predictions")
    except ValueError:
        return
    layer.set_weights([np.zeros(w.shape, dtype=w.dtype) for w in layer.get_weights()])


def set_dropout(model: Any, rate: float) -> None:
    """Set the rate of every Dropout layer of ``model`` (the head's chosen regularisation)."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "Dropout":
            layer.rate = float(rate)
        set_dropout(layer, rate)


def fit_numpy_head(
    head: Any,
    stack: HeadStack,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    epochs: int,
    initial_epoch: int,
    batch_size: int,
    callbacks: Sequence[Any],
    seed: int,
) -> None:
    """Train head 0 of ``stack`` on ``data`` = ``(x, y, w)``, driving Keras ``callbacks`` as ``fit`` would.

    ``head`` (a Keras model) receives the weights after every epoch, before ``on_epoch_end``.
    """
    x, y, w = data
    n, bs = len(x), max(1, int(batch_size))
    rng = np.random.default_rng(seed + initial_epoch)

    def batches(epoch: int) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        order = rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            yield x[idx], y[idx], w[idx]

    fit_numpy_batches(head, stack, batches, steps=math.ceil(n / bs), epochs=epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks)


def fit_numpy_batches(
    head: Any, stack: HeadStack, batches: Batches, *, steps: int, epochs: int, initial_epoch: int,
    callbacks: Sequence[Any],
) -> None:
    """Train head 0 of ``stack`` on ``batches(epoch)`` = ``(x, class indices, weights)`` batches, epoch by epoch.

    The Keras ``callbacks`` are driven as ``fit`` would (``steps`` batches an epoch); ``head`` (a
    Keras model) receives the weights after every epoch, before ``on_epoch_end``.
    """
    import keras

    hooks = keras.callbacks.CallbackList(list(callbacks), model=head, epochs=epochs, steps=steps, verbose=0)
    head.stop_training = False
    hooks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        loss_sum = seen = correct = weight = 0.0
        logs: dict[str, float] = {}
        for batch, (xb, yb, wb) in enumerate(batches(epoch)):
            loss, hits = stack.step(xb, yb, wb)
            loss_sum += float(loss[0]) * len(yb)
            seen += len(yb)
            correct += float(hits[0])
            weight += float(wb.sum())
            logs = {"loss": loss_sum / seen, "accuracy": correct / weight if weight else 0.0}
            hooks.on_train_batch_end(batch, logs)
            if head.stop_training:
                break
        head.set_weights(stack.weights(0))
        hooks.on_epoch_end(epoch, dict(logs))
        if head.stop_training:
            break
    hooks.on_train_end()


def train_head_on_features(
    cached: CachedSplits,
    config: TrainConfig,
    settings: HeadSettings,
    *,
    num_classes: int,
    device: Any,
    class_weights: np.ndarray,
    start: int,
    state: dict[str, Any] | None,
    ckpt: Any,
    emit: Callable[[Event], None],
    cancel: threading.Event,
    skip_log: Any,
    log: Callable[..., None],
) -> tuple[Any, bool]:
    """Train a fresh head on the cached train features, validated on the cached val features.

    Emits PhaseStarted(head) and the epoch events; ``ckpt`` (a
    :class:`~tlstudio.core.train.checkpoints.Checkpointer`) checkpoints each epoch and keeps the best.
    ``start`` > 0 with a head ``state`` resumes. Returns ``(head, interrupted by cancel)``.
    """

    from tlstudio.core.models.head import build_head
    from tlstudio.core.train.callbacks import CancelOnRequest, TrainingEvents
    from tlstudio.core.train.checkpoints import load_arrays

    k = num_classes
    x, y, _ = cached.arrays["train"]
    xv, yv, _ = cached.arrays["val"]
    if len(x) == 0 or len(xv) == 0:
        raise TrainingError("no training or validation image could be read")
    with device.scope():
        head = build_head(int(x.shape[1]), config, k)
    set_dropout(head, settings.dropout)
    zero_output_layer(head)
    stack = HeadStack(
        int(x.shape[1]), k, [settings.head_lr], [settings.dropout], hidden_units=int(config.hidden_units),
        optimizer=config.optimizer, label_smoothing=float(config.label_smoothing), seed=int(config.seed),
    )
    if state and start > 0 and state.get("kind") == "head":
        head.set_weights(load_arrays(ckpt.dir / state["weights"]))
    stack.set_weights(0, head.get_weights())

    def validate() -> tuple[float, float]:
        if cached.streamed:  # chunk by chunk: the rows are read from the cache shards
            loss_sum = hits = 0.0
            for i in range(0, len(xv), VALIDATION_CHUNK):
                loss, acc = stack.loss_and_accuracy(xv[i : i + VALIDATION_CHUNK], yv[i : i + VALIDATION_CHUNK])
                n = min(VALIDATION_CHUNK, len(xv) - i)
                loss_sum, hits = loss_sum + float(loss[0]) * n, hits + float(acc[0]) * n
            return loss_sum / len(xv), hits / len(xv)
        loss, acc = stack.loss_and_accuracy(xv, yv)
        return float(loss[0]), float(acc[0])

    epochs, bs = int(settings.epochs), int(settings.batch_size)
    steps = math.ceil(len(x) / bs)
    emit(PhaseStarted(phase=PHASE_HEAD, epochs=epochs, steps_per_epoch=steps))
    if start >= epochs:
        return head, False
    events = TrainingEvents(
        phase=PHASE_HEAD, emit=emit, cancel=cancel, progress=ckpt.progress, skip_log=skip_log,
        on_epoch=ckpt.on_epoch(phase=PHASE_HEAD, epochs=epochs, model=head, kind="head", log=log),
        validate=validate, steps=steps, epochs=epochs,
    )
    stopper = CancelOnRequest(cancel)
    w = class_weights[y].astype(np.float32)
    if cached.streamed:
        # The head is tiny and the shards are read at disk speed: one process, numpy, whatever the replicas.
        from tlstudio.core.train.streaming import iterate_batches

        rows = replace(x.rows, weights=w)
        seed = int(config.seed)

        def streamed_batches(epoch: int) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            return iterate_batches(rows, batch_size=bs, num_classes=k, epoch=epoch, seed=seed, one_hot=False)

        log(f"the classifier trains on {len(x)} feature rows streamed from the cache")
        fit_numpy_batches(head, stack, streamed_batches, steps=steps, epochs=epochs, initial_epoch=start,
                          callbacks=[events, stopper])
    elif device.strategy.num_replicas_in_sync == 1:
        fit_numpy_head(head, stack, (x, y, w), epochs=epochs, initial_epoch=start, batch_size=bs,
                       callbacks=[events, stopper], seed=int(config.seed))
    else:
        import tensorflow as tf

        from tlstudio.core.train.device import compile_model

        def validate_keras() -> tuple[float, float]:
            probs = np.asarray(head(xv, training=False), dtype=np.float64)
            return float(-np.log(np.clip(probs[np.arange(len(yv)), yv], 1e-7, 1.0)).mean()), float(
                (probs.argmax(axis=1) == yv).mean()
            )

        events.validate = validate_keras
        compile_model(head, config, settings.head_lr, device)
        ds = tf.data.Dataset.from_tensor_slices((x, np.eye(k, dtype=np.float32)[y], w)).shuffle(len(x)).batch(bs)
        head.fit(ds, epochs=epochs, initial_epoch=start, callbacks=[events, stopper], shuffle=False, verbose=0)
    return head, stopper.interrupted


def choose_head_settings(
    cached: CachedSplits, config: TrainConfig, *, num_classes: int, class_weights: np.ndarray,
    cancel: threading.Event, log: Callable[..., None],
) -> tuple[HeadSettings, dict[str, Any] | None]:
    """The head's learning rate, dropout, batch size, epoch budget and patience on cached features.

    Automatic values (``config.is_auto(...)``) come from :func:`~tlstudio.core.train.head_search.search_head`
    on the cached features, scored on validation; the others are the configuration's. Returns the
    settings and the search's record (None when nothing was searched).
    """
    from tlstudio.core.config import AUTO_HEAD_EPOCH_CAP, AUTO_HEAD_PATIENCE
    from tlstudio.core.train.head_search import head_batch_size, search_grid, search_head

    x, y, _ = cached.arrays["train"]
    xv, yv, _ = cached.arrays["val"]
    auto = config.is_auto("head_lr") or config.is_auto("dropout")
    batch = head_batch_size(len(x), config.batch_size) if auto else int(config.batch_size)
    settings = HeadSettings(
        head_lr=float(config.head_lr), dropout=float(config.dropout), batch_size=batch,
        epochs=AUTO_HEAD_EPOCH_CAP if config.is_auto("epochs") else int(config.head_epochs),
        patience=max(AUTO_HEAD_PATIENCE, int(config.patience)) if config.is_auto("epochs") else int(config.patience),
    )
    if not auto or len(x) == 0 or len(xv) == 0:
        return settings, None
    rows_note = None
    if cached.streamed:
        x, y, xv, yv, rows_note = search_sample(x, y, xv, yv, budget=cached.budget, seed=int(config.seed))
        log(f"automatic settings are searched on {rows_note['train']} of {rows_note['of_train']} training and "
            f"{rows_note['val']} of {rows_note['of_val']} validation images (the features exceed the memory budget)")
    grid = search_grid(
        config.optimizer,
        None if config.is_auto("head_lr") else (float(config.head_lr),),
        None if config.is_auto("dropout") else (float(config.dropout),),
    )
    found = search_head(
        x, y, xv, yv, num_classes=num_classes, grid=grid, optimizer=config.optimizer,
        hidden_units=int(config.hidden_units), batch_size=batch, label_smoothing=float(config.label_smoothing),
        class_weights=class_weights, seed=int(config.seed), cancel=cancel,
    )
    settings.head_lr, settings.dropout = found.head_lr, found.dropout
    log(
        f"automatic settings: learning rate {found.head_lr:g}, dropout {found.dropout:g} "
        f"(best of {len(grid)} on the validation images, {found.seconds:.1f} s)"
    )
    record = found.to_json()
    if rows_note is not None:
        record["rows"] = rows_note
    return settings, record


def search_sample(
    x: Any, y: np.ndarray, xv: Any, yv: np.ndarray, *, budget: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """A random subsample of the train and validation features, loaded, that fits in half of ``budget`` bytes.

    Both splits keep their shares; the rows are read in index order (sequential in the shards).
    Returns the four arrays and ``{"train": n, "of_train": N, "val": m, "of_val": M}``.
    """
    n, nv = len(x), len(xv)
    dim = int(x.shape[1])
    fit_rows = max(SEARCH_MIN_ROWS, int(budget) // (2 * dim * 4))
    share = min(1.0, fit_rows / max(1, n + nv))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=max(1, min(n, round(n * share))), replace=False))
    pick_v = np.sort(rng.choice(nv, size=max(1, min(nv, round(nv * share))), replace=False))
    note = {"train": int(len(pick)), "of_train": int(n), "val": int(len(pick_v)), "of_val": int(nv)}
    return x[pick], y[pick], xv[pick_v], yv[pick_v], note
