"""A training the window stops to quit ends "interrupted" in the engine too (promise 5 of issue 18).

The cancel carries its reason over the pipe (``CancelCall.reason``) to the engine and on to the training
child; the answer is :class:`~tlstudio.core.errors.Interrupted`, and the run folder keeps its checkpoint.
"""

from __future__ import annotations

import os
import time

import pytest
from support.waiting import wait_until

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.config import AugmentConfig, TrainConfig
from tlstudio.core.errors import Interrupted
from tlstudio.engine import protocol as p

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")


def test_a_training_stopped_to_quit_answers_interrupted_and_stays_resumable(engine, runs, tmp_path, recorder):
    # Augmentation trains end to end through the image pipeline: there is time to act mid-run.
    config = TrainConfig(data_dir=str(runs.data), base="MobileNet", alpha=0.25, input_size=64, weights="none",
                         head_epochs=40, fine_tune_epochs=0, batch_size=4, early_stopping=False,
                         augment=AugmentConfig(enabled=True))
    events = recorder()
    run_dir = tmp_path / "run"
    training = engine.submit(p.Train(config, str(run_dir)), on_event=events)
    assert wait_until(lambda: events.of(ev.EpochEnded) or training.done(), 300)
    assert not training.done()
    training.cancel(ev.STOP_QUIT)
    start = time.monotonic()
    with pytest.raises(Interrupted):
        training.result(timeout=120)
    assert time.monotonic() - start < 30  # within a batch, with no evaluation
    assert not events.of(ev.TrainFinished)
    assert run_folder.read_summary(run_dir).status == "interrupted"
    assert not run_folder.has_model(run_dir)
    run_folder.check_resumable(run_dir)
    assert len(run_folder.read_history(run_dir)["epochs"]) >= 1
