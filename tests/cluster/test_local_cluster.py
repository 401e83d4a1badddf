"""A real local Ray cluster of two workers (``local:2``): features, fine-tuning, cancel, no orphans.

One cluster serves the whole module (starting Ray and TensorFlow in every worker is most of the
time); it has no dashboard and its own temporary folder, and the last check is that closing it
left no raylet, GCS or worker process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

from tlstudio.core import events as ev  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.train import cached_features  # noqa: E402
from tlstudio.core.train.engines import Engines  # noqa: E402
from tlstudio.core.train.trainer import train  # noqa: E402


def tiny_config(data, **changes) -> TrainConfig:
    config = TrainConfig(
        data_dir=str(data), base="MobileNet", alpha=0.25, weights="none", input_size=32,
        head_epochs=1, fine_tune_epochs=0, batch_size=8, head_lr=0.01,
    )
    for k, v in changes.items():
        setattr(config, k, v)
    return config


@pytest.fixture(scope="module")
def cluster():
    """The module's ``local:2`` cluster and its engines; checks it leaves nothing running."""
    from tlstudio.cluster.launch import cluster_training
    from tlstudio.cluster.session import processes_under

    with cluster_training("local:2") as extra:
        session = extra["engines"].fine_tuner.session
        temp_dir = session.temp_dir
        assert session.resources()["CPU"] == 2
        assert len(processes_under(temp_dir)) >= 2  # raylet and GCS at least, started from our folder
        # In process groups of their own: Ray's clean-up signals to a group never reach this test runner.
        assert os.getpgrp() not in {_group(pid) for pid in processes_under(temp_dir)}
        outside = [a for a in _listening(processes_under(temp_dir)) if a not in LOOPBACK]
        assert outside == [], f"the local cluster listens beyond this machine: {outside}"
        yield extra
    deadline = time.monotonic() + 15
    while processes_under(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_under(temp_dir) == [], "the local cluster left processes behind"
    assert not os.path.exists(temp_dir)


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # gone meanwhile
        return None


LOOPBACK = {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}


def _listening(pids: list[int]) -> list[str]:
    """The addresses ``pids`` listen on for TCP connections (from ``ss``; empty where it is missing)."""
    import shutil
    import subprocess

    if not shutil.which("ss"):
        return []
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    wanted = {f"pid={pid}," for pid in pids}
    return [line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if any(w in line for w in wanted)]


def _shards(home: Path) -> dict[str, np.ndarray]:
    feats: dict[str, np.ndarray] = {}
    for index in (home / "cache" / "features").rglob("shard-*.json"):
        keys = json.loads(index.read_text())["keys"]
        feats.update(zip(keys, np.load(index.with_suffix(".npy")), strict=True))
    return feats


@pytest.fixture
def count_base_calls(monkeypatch):
    seen = {"images": 0}
    real = cached_features.compute_features

    def counting(fn, images):
        seen["images"] += int(images.shape[0])
        return real(fn, images)

    monkeypatch.setattr(cached_features, "compute_features", counting)
    return seen


def test_features_from_the_cluster_equal_local_ones_and_a_later_local_run_computes_nothing(
    cluster, image_folder, tmp_path, monkeypatch, count_base_calls
):
    data = image_folder({"red": 9, "green": 9, "blue": 9})
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "alone"))
    local = train(tiny_config(data), tmp_path / "local")
    assert local.cache_computed == 27 and count_base_calls["images"] >= 27
    expected = _shards(tmp_path / "alone")

    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "shared"))
    events: list = []
    calls_before = count_base_calls["images"]
    spread = train(tiny_config(data), tmp_path / "ray", emit=events.append, engines=Engines(features=cluster["engines"].features))
    assert (spread.cache_computed, spread.cache_hits) == (27, 0)
    assert count_base_calls["images"] == calls_before  # the driver ran the base on nothing
    got = _shards(tmp_path / "shared")
    assert set(got) == set(expected) and len(got) == 27
    for key, row in expected.items():
        np.testing.assert_array_equal(got[key], row)  # the same numbers, not merely close ones
    summary = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert summary["features"] == {"engine": "ray", "computed": 27, "from_cache": 0}
    progress = [e for e in events if isinstance(e, ev.CacheProgress)]
    assert progress[-1].done == progress[-1].total == 27
    assert any(isinstance(e, ev.LogMessage) and e.level == "warning" and "small job" in e.text for e in events)

    # The dataset mounted somewhere else (another node), trained locally on the shared cache: all hits.
    moved = tmp_path / "mnt" / "elsewhere"
    shutil.copytree(data, moved, copy_function=shutil.copy2)
    calls_before = count_base_calls["images"]
    again = train(tiny_config(moved), tmp_path / "again")
    assert count_base_calls["images"] == calls_before
    assert (again.cache_computed, again.cache_hits) == (0, 27)
    summary = json.loads((tmp_path / "again" / "run.json").read_text())
    assert summary["features"] == {"engine": "local", "computed": 0, "from_cache": 27}


def test_fine_tuning_on_two_workers_keeps_the_replicas_identical(cluster, image_folder, tmp_path):
    data = image_folder({"red": 8, "green": 8})
    events: list = []
    # Random weights: the base's BatchNorm layers train too, the case where replicas drift apart
    # unless their batch statistics are synchronised.
    config = tiny_config(data, fine_tune_epochs=1, unfreeze_top=2, early_stopping=False)
    result = train(config, tmp_path / "run", emit=events.append, **cluster)
    assert result.status == "finished"
    tuner = cluster["engines"].fine_tuner
    assert sorted(tuner.digests) == [0, 1]
    replica0, replica1 = (dict(tuner.digests[r]) for r in (0, 1))
    assert replica0 == replica1, [name for name in replica0 if replica0[name] != replica1.get(name)]
    epochs = [e for e in events if isinstance(e, ev.EpochEnded) and e.phase == ev.PHASE_FINE_TUNE]
    assert [e.epoch for e in epochs] == [0] and epochs[0].val_loss is not None
    assert epochs[0].run_epoch == 2  # one run-wide count with the head phase
    batches = [e for e in events if isinstance(e, ev.BatchEnded) and e.phase == ev.PHASE_FINE_TUNE]
    assert batches and batches[-1].batch == batches[-1].steps - 1  # the epoch's last batch always comes
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["phase"] for r in history["epochs"]] == ["head", "fine_tune"]


def test_a_resumed_cluster_fine_tune_continues_the_optimizer(cluster, image_folder, tmp_path):
    from tlstudio.core.train.checkpoints import load_arrays
    from tlstudio.core.train.run_data import TrainingError

    data = image_folder({"red": 8, "green": 8})
    config = tiny_config(data, fine_tune_epochs=3, unfreeze_top=1, early_stopping=False)
    run = tmp_path / "run"
    tuner = cluster["engines"].fine_tuner

    def crash(event):  # dies during the second fine-tuning epoch, after the first one's checkpoint
        if isinstance(event, ev.BatchEnded) and event.phase == ev.PHASE_FINE_TUNE and event.epoch == 1:
            raise RuntimeError("power cut")

    with pytest.raises(TrainingError):
        train(config, run, emit=crash, **cluster)
    assert tuner.optimizer_start == (False, 0)  # a fresh fine-tune starts a fresh optimizer
    steps = tuner.epoch_iterations[0]
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["phase"] == ev.PHASE_FINE_TUNE and state["epochs_done"] == 1
    saved = load_arrays(run / "checkpoints" / state["optimizer"])  # the workers' optimizer, not the driver's idle one
    assert steps > 0 and int(saved[0]) == steps

    result = train(None, run, resume=True, **cluster)
    assert result.status == "finished"
    assert tuner.optimizer_start == (True, steps)  # every worker started from the saved step count
    assert tuner.epoch_iterations == {1: 2 * steps, 2: 3 * steps}


def test_cancel_stops_cluster_fine_tuning_within_seconds(cluster, image_folder, tmp_path):
    data = image_folder({"red": 10, "green": 10})
    cancel = threading.Event()
    when: dict[str, float] = {}

    def emit(event):
        if isinstance(event, ev.BatchEnded) and event.phase == ev.PHASE_FINE_TUNE and not cancel.is_set():
            when["cancel"] = time.monotonic()
            cancel.set()

    config = tiny_config(data, fine_tune_epochs=200, unfreeze_top=1, early_stopping=False)
    result = train(config, tmp_path / "run", emit=emit, cancel=cancel, **cluster)
    assert result.status == "cancelled"
    assert result.epochs_run < 10
    # Measured to the end of the whole run (final model, evaluation): the workers stopped at once.
    assert time.monotonic() - when["cancel"] < 30
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "cancelled"


def test_cancel_while_the_cluster_computes_features(cluster, image_folder, tmp_path, monkeypatch):
    from tlstudio.core.errors import Cancelled

    data = image_folder({"red": 80, "green": 80})
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    cancel = threading.Event()
    when: dict[str, float] = {}

    def emit(event):
        if isinstance(event, ev.CacheProgress) and event.done > 0 and not cancel.is_set():
            when["cancel"] = time.monotonic()  # the first batch is back from the cluster
            cancel.set()

    with pytest.raises(Cancelled):
        train(tiny_config(data, batch_size=32), tmp_path / "run", emit=emit, cancel=cancel,
              engines=Engines(features=cluster["engines"].features))
    assert time.monotonic() - when["cancel"] < 10
    assert not (tmp_path / "run").exists()  # cancelled before the first epoch: no run folder is left behind
    kept = _shards(tmp_path / "home")
    assert 0 < len(kept) < 160  # what was computed before the cancel is kept, the rest was not computed
