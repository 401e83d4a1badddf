"""The Keras callbacks of training: batch events rate-limited at the source, cancel within a batch."""

from __future__ import annotations

import threading

import numpy as np

from tlstudio.core import events as ev
from tlstudio.core.train import callbacks
from tlstudio.core.train.checkpoints import RunProgress


def tiny_fit(callback_list, *, batches=60, epochs=2, batch_size=2):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(batches * batch_size, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(len(x)) % 2]
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=callback_list, verbose=0)
    return model


def make_events(emit, cancel, progress, epochs_seen):
    return callbacks.TrainingEvents(
        phase=ev.PHASE_HEAD, emit=emit, cancel=cancel, progress=progress,
        on_epoch=lambda epoch, record: epochs_seen.append(record),
    )


def test_batch_events_are_rate_limited_but_every_epoch_edge_and_the_history_are_kept(monkeypatch):
    monkeypatch.setattr(callbacks, "BATCH_EVENTS_PER_SECOND", 1e-6)  # nothing but the edges gets through
    events, epochs_seen = [], []
    progress = RunProgress()
    cancel = threading.Event()
    tiny_fit([make_events(events.append, cancel, progress, epochs_seen)], batches=60, epochs=2)

    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    # set_params told the callback the steps and epochs before the first batch
    assert all(b.steps == 60 for b in batches)
    assert [(b.epoch, b.batch) for b in batches] == [(0, 0), (0, 59), (1, 0), (1, 59)]
    assert batches[-1].global_step == 120
    assert len(progress.batches) == 120  # history.json still has every batch
    ends = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert [(e.epoch, e.epochs, e.run_epoch) for e in ends] == [(0, 2, 1), (1, 2, 2)]
    assert len(epochs_seen) == 2


def test_at_the_default_rate_a_fast_epoch_sends_far_fewer_events_than_batches():
    events, epochs_seen = [], []
    tiny_fit([make_events(events.append, threading.Event(), RunProgress(), epochs_seen)], batches=400, epochs=1)
    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    assert batches[0].batch == 0 and batches[-1].batch == 399
    assert len(batches) < 400


def test_cancel_stops_at_the_end_of_the_batch_and_the_epoch_is_not_recorded():
    cancel = threading.Event()
    events, epochs_seen = [], []

    def emit(e):
        events.append(e)
        if isinstance(e, ev.BatchEnded):
            cancel.set()

    progress = RunProgress()
    stopper = callbacks.CancelOnRequest(cancel)
    tiny_fit([make_events(emit, cancel, progress, epochs_seen), stopper], batches=30, epochs=3)
    assert stopper.interrupted
    assert len(progress.batches) == 1 and progress.run_epoch == 0
    assert not epochs_seen and not [e for e in events if isinstance(e, ev.EpochEnded)]


def test_rate_limit_lets_forced_calls_through():
    limit = ev.RateLimit(1e-6)
    assert limit() is True  # the first call always passes
    assert limit() is False
    assert limit(force=True) is True


def test_a_loss_that_becomes_nan_stops_training_and_says_why():
    import keras
    import pytest

    from tlstudio.core.train.run_data import TrainingError

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    x[10] = np.nan  # batch 6 poisons the weights: every loss from there on is NaN
    y = np.eye(2, dtype="float32")[np.arange(len(x)) % 2]
    seen: list[int] = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    stopper = callbacks.CancelOnRequest(threading.Event())
    with pytest.raises(TrainingError, match="loss became nan in batch 6.*lower learning rate"):
        model.fit(x, y, batch_size=2, epochs=3, callbacks=[counter, stopper], shuffle=False, verbose=0)
    assert len(seen) == 6  # stopped in the batch that went wrong, not at the end of training
