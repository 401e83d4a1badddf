"""Progress events: immutable, plain data that crosses threads and processes unchanged."""

from __future__ import annotations

import dataclasses
import pickle
import queue
import threading
import time

import pytest

from tlstudio.core import events as ev

SAMPLES = [
    ev.RunStarted("/runs/a", ("cat", "dog"), 80, 20, 0, (ev.PHASE_CACHING, ev.PHASE_HEAD), 10, 32),
    ev.PhaseStarted(ev.PHASE_HEAD, 10, 3),
    ev.CacheProgress(5, 100, 2),
    ev.BatchEnded(ev.PHASE_HEAD, 0, 1, 3, 0.7, 0.5, 2),
    ev.EpochEnded(ev.PHASE_HEAD, 0, 10, 1, 0.6, 0.6, 0.65, None, 1.5),
    ev.FileSkipped("cat/broken.jpg", "truncated file"),
    ev.LogMessage("hello"),
    ev.TrainFinished("/runs/a", "finished", "/runs/a/model.keras", 0.9, None, 10, 12.0, ("few images",)),
    ev.TrainFailed("one class only"),
]


def test_every_event_kind_has_a_sample():
    kinds = {cls for cls in vars(ev).values() if isinstance(cls, type) and issubclass(cls, ev.Event)}
    assert kinds - {ev.Event} == {type(e) for e in SAMPLES}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_are_frozen(event):
    field = dataclasses.fields(event)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, field, None)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_hold_only_plain_values_and_survive_pickling(event):
    plain = (str, int, float, bool, type(None), tuple)
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        assert isinstance(value, plain), f"{type(event).__name__}.{f.name} is {type(value).__name__}"
        if isinstance(value, tuple):
            assert all(isinstance(v, (str, int, float)) for v in value)
    assert pickle.loads(pickle.dumps(event)) == event  # what a process boundary does to it


def test_events_emitted_from_a_thread_arrive_in_order_and_equal():
    received: queue.Queue = queue.Queue()
    worker = threading.Thread(target=lambda: [received.put(e) for e in SAMPLES])
    worker.start()
    worker.join(5)
    assert [received.get_nowait() for _ in SAMPLES] == SAMPLES


def test_phases_are_listed_in_run_order():
    assert ev.PHASES == (ev.PHASE_CACHING, ev.PHASE_HEAD, ev.PHASE_FINE_TUNE, ev.PHASE_EVALUATING)
    assert ev.LogMessage("x").level == "info"


def test_rate_limit_lets_so_many_through_a_second_and_forced_ones_always():
    limit = ev.RateLimit(2.0)  # one per 500 ms
    passed = sum(limit() for _ in range(100))  # a tight loop takes far less than 500 ms
    assert passed == 1
    assert limit(force=True)
    time.sleep(0.55)
    assert limit()
