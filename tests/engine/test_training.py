"""Training through the engine: events, predictions answered meanwhile, cancel, no orphans, kill and resume.

The engine runs each training in a child process of its own (see tlstudio.engine.server).
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from support.waiting import wait_until

from tlstudio.core import events as ev
from tlstudio.core.config import AugmentConfig, TrainConfig
from tlstudio.engine import protocol as p
from tlstudio.engine.client import EngineClient, EngineDied
from tlstudio.engine.processes import descendants, group_members, is_running

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _config(runs, epochs: int, augment: bool = True) -> TrainConfig:
    # Augmentation trains end to end through the image pipeline: about a second per epoch, so there
    # is time to act in the middle of a run.
    return TrainConfig(data_dir=str(runs.data), base="MobileNet", alpha=0.25, input_size=64, weights="imagenet",
                       head_epochs=epochs, fine_tune_epochs=0, batch_size=4, early_stopping=False,
                       augment=AugmentConfig(enabled=augment))


def test_training_streams_events_answers_predictions_meanwhile_and_cancels_within_a_batch(
        engine, runs, tmp_path, recorder):
    events = recorder()
    run_dir = tmp_path / "run"
    training = engine.submit(p.Train(_config(runs, 40), str(run_dir)), on_event=events)
    assert wait_until(lambda: events.of(ev.BatchEnded) or training.done(), 300)
    assert not training.done()
    # A second training is refused while one runs.
    with pytest.raises(Exception, match="already running"):
        engine.call(p.Train(_config(runs, 1), str(tmp_path / "other")), timeout=30)
    # Predictions and Grad-CAM are answered while the training runs.
    prediction = engine.call(p.PredictImages(str(runs.runs[-1]), ((1, str(runs.loose / "red_new.png")),)),
                             timeout=120)
    cam = engine.call(p.GradCamRequest(str(runs.runs[-1]), str(runs.loose / "red_new.png")), timeout=120)
    assert prediction[0].label == "red" and cam.label == "red"
    assert not training.done()
    training.cancel()
    start = time.monotonic()
    result = training.result(timeout=120)
    assert result.status == "cancelled"
    assert time.monotonic() - start < 30  # stops within a batch, then writes the run folder
    assert json.loads((run_dir / "run.json").read_text())["status"] == "cancelled"
    # The event stream is core's own, in order, thinned but never missing an epoch.
    kinds = [type(e) for e in events.events]
    assert ev.RunStarted in kinds and kinds[-1] is ev.TrainFinished
    assert kinds.index(ev.RunStarted) < kinds.index(ev.BatchEnded)
    epochs = events.of(ev.EpochEnded)
    assert [e.run_epoch for e in epochs] == list(range(1, len(epochs) + 1))


def test_stopping_the_client_during_a_training_leaves_no_process_behind(runs, tmp_path, recorder):
    client = EngineClient(warm_up=False)
    client.start()
    assert client.wait_ready(120)
    events = recorder()
    training = client.submit(p.Train(_config(runs, 40), str(tmp_path / "run")), on_event=events)
    assert wait_until(lambda: events.of(ev.RunStarted) or training.done(), 300)
    engine_pid = client.pid
    family = descendants(engine_pid)
    assert family, "the training child process is running"
    client.stop(timeout=30)
    assert not is_running(engine_pid)
    left = {pid: _cmdline(pid) for pid in family if is_running(pid)}
    assert left == {}
    assert group_members(engine_pid) == []


@pytest.mark.slow  # two engines and two training children: minutes on a shared machine
def test_a_training_interrupted_by_a_killed_engine_resumes_from_its_checkpoint(runs, tmp_path, recorder):
    client = EngineClient(warm_up=False)
    client.start()
    try:
        assert client.wait_ready(120)
        run_dir = tmp_path / "run"
        events = recorder()
        training = client.submit(p.Train(_config(runs, 4), str(run_dir)), on_event=events)
        assert wait_until(lambda: any(e.run_epoch >= 2 for e in events.of(ev.EpochEnded)) or training.done(), 300)
        assert not training.done()
        engine_pid = client.pid
        family = descendants(engine_pid)
        os.kill(engine_pid, signal.SIGKILL)
        with pytest.raises(EngineDied) as info:
            training.result(timeout=60)
        assert "resumed" in str(info.value)
        assert isinstance(info.value.request, p.Train) and info.value.request.run_dir == str(run_dir)
        assert wait_until(lambda: [pid for pid in family if is_running(pid)] == [], 30)  # its child too
        assert client.wait_ready(120) and client.pid != engine_pid
        resumed = recorder()
        result = client.call(p.Train(None, info.value.request.run_dir, resume=True), on_event=resumed, timeout=600)
        assert result.status == "finished" and result.epochs_run == 4
        assert min(e.run_epoch for e in resumed.of(ev.EpochEnded)) >= 2  # earlier epochs were not redone
    finally:
        client.stop()
