"""Progress is thinned at the source, never losing milestones or the last step."""

from __future__ import annotations

from tlstudio.core.events import BatchEnded, EpochEnded
from tlstudio.engine.protocol import StepProgress
from tlstudio.engine.ratelimit import ProgressGate


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _batch(epoch, batch, steps=100):
    return BatchEnded("head", epoch, batch, steps, 1.0 / (batch + 1), 0.5, epoch * steps + batch)


def test_a_burst_of_batches_is_thinned_to_one_per_interval_and_the_last_batch_always_goes_out():
    clock, sent = Clock(), []
    gate = ProgressGate(sent.append, 0.05, clock)
    for b in range(100):  # 100 batches in 0.1 s
        clock.now = b * 0.001
        gate(_batch(0, b))
    assert [e.batch for e in sent] == [0, 50, 99]
    assert gate.dropped > 90


def test_a_milestone_event_flushes_the_held_back_progress_first():
    clock, sent = Clock(), []
    gate = ProgressGate(sent.append, 0.05, clock)
    gate(_batch(0, 0))
    clock.now = 0.01
    gate(_batch(0, 1))  # held back
    epoch = EpochEnded("head", 0, 5, 1, 0.5, 0.7, None, None, 1.0)
    gate(epoch)
    assert sent == [_batch(0, 0), _batch(0, 1), epoch]


def test_a_held_back_step_goes_out_once_stale_and_on_flush():
    clock, sent = Clock(), []
    gate = ProgressGate(sent.append, 0.05, clock)
    gate(StepProgress(1, 10))
    clock.now = 0.01
    gate(StepProgress(2, 10))
    gate.flush_stale()
    assert len(sent) == 1  # not stale yet
    clock.now = 0.2
    gate.flush_stale()
    assert sent[-1] == StepProgress(2, 10)
    gate(StepProgress(3, 10))
    gate(StepProgress(10, 10))  # the final step is never held back
    assert sent[-1] == StepProgress(10, 10)
    gate.flush()  # the superseded step is dropped, not sent after the final one
    assert StepProgress(3, 10) not in sent and sent[-1] == StepProgress(10, 10)


def test_interval_zero_forwards_everything():
    sent = []
    gate = ProgressGate(sent.append, 0.0)
    for b in range(20):
        gate(_batch(0, b))
    assert len(sent) == 20
