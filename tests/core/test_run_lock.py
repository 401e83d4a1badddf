"""One writer per run folder, folders that are never reused, runs that end in a true state (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tlstudio.core import run_folder
from tlstudio.core.config import TrainConfig
from tlstudio.core.run_folder import RunError, read_summary, write_run_config, write_summary
from tlstudio.core.run_lock import RunLock, check_new_run_dir, is_locked, writing

HOLDER = """
import sys, time
from tlstudio.core.run_lock import RunLock
lock = RunLock(sys.argv[1]); lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _holder(run_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_at_once_and_a_killed_one_holds_nothing(tmp_path):
    proc = _holder(tmp_path)
    try:
        assert is_locked(tmp_path)
        start = time.monotonic()
        with pytest.raises(RunError, match=f"being written by process {proc.pid}: one training per run folder"):
            RunLock(tmp_path).acquire()
        assert time.monotonic() - start < 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not is_locked(tmp_path)  # the OS dropped the dead process's lock
    with RunLock(tmp_path):
        assert is_locked(tmp_path)
    assert not is_locked(tmp_path)


def test_a_killed_run_reads_as_interrupted(tmp_path):
    write_run_config(tmp_path, TrainConfig(data_dir="/d"), ["a"], {})
    write_summary(tmp_path, {"status": "running"})
    proc = _holder(tmp_path)
    try:
        assert read_summary(tmp_path).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert read_summary(tmp_path).status == "interrupted"


def test_new_runs_go_only_into_new_or_empty_folders(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RunError, match="is a file, not a folder"):
        check_new_run_dir(tmp_path / "file.txt")
    with pytest.raises(RunError, match=r"already holds file.txt; .* choose another --out"):
        check_new_run_dir(tmp_path)
    run = tmp_path / "run"
    write_run_config(run, TrainConfig(data_dir="/d"), ["a"], {})
    with pytest.raises(RunError, match=f"already holds a training run; .*--resume {run}"):
        with writing(run):
            pass
    assert (tmp_path / "file.txt").read_text() == "x" and run_folder.is_run(run)
    (tmp_path / "empty").mkdir()
    check_new_run_dir(tmp_path / "empty")
    check_new_run_dir(tmp_path / "new")


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path):
    run = tmp_path / "a" / "run"
    with pytest.raises(ValueError):
        with writing(run):
            write_run_config(run, TrainConfig(data_dir="/d"), ["a"], {})
            write_summary(run, {"status": "failed"})
            raise ValueError("no weights offline")
    assert not run.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyboardInterrupt), writing(tmp_path / "empty"):
        write_summary(tmp_path / "empty", {"status": "running"})
        raise KeyboardInterrupt
    assert list((tmp_path / "empty").iterdir()) == []  # an empty folder the user gave stays, empty


def test_an_interrupted_run_with_progress_is_kept_and_says_so(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), writing(run):
        write_run_config(run, TrainConfig(data_dir="/d"), ["a"], {})
        write_summary(run, {"status": "running", "epochs_run": 1})
        _checkpoint(run)
        raise KeyboardInterrupt  # a second Ctrl-C
    data = json.loads((run / run_folder.RUN_FILE).read_text())
    assert data["status"] == "interrupted" and data["epochs_run"] == 1
    assert not is_locked(run)
    with writing(run, resume=True):
        assert is_locked(run)


def _checkpoint(run, weights="head-e0001.npz"):
    import numpy as np

    ckpt = run_folder.checkpoint_dir(run)
    ckpt.mkdir(parents=True, exist_ok=True)
    np.savez(ckpt / weights, np.ones(1000))
    (ckpt / run_folder.STATE_FILE).write_text(json.dumps({"version": 1, "weights": weights, "optimizer": ""}))
    return ckpt


def test_a_damaged_checkpoint_is_refused_instead_of_restarting_from_epoch_0(tmp_path):
    run = tmp_path / "run"
    write_run_config(run, TrainConfig(data_dir="/d"), ["a"], {})
    write_summary(run, {"status": "interrupted"})
    ckpt = _checkpoint(run)
    run_folder.check_resumable(run)
    data = (ckpt / "head-e0001.npz").read_bytes()
    (ckpt / "head-e0001.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match="checkpoint file head-e0001.npz is missing or damaged"):
        with writing(run, resume=True):
            raise AssertionError("never resumed")
    assert run_folder.is_run(run) and not is_locked(run)  # nothing of the run was removed
    (ckpt / run_folder.STATE_FILE).write_text('{"version": 1, "weig')
    with pytest.raises(RunError, match="its checkpoint is damaged"):
        run_folder.check_resumable(run)
    (ckpt / run_folder.STATE_FILE).unlink()
    run_folder.write_history(run, {"epochs": [{"loss": 1.0}], "batches": []})
    with pytest.raises(RunError, match=r"1 epoch\(s\) were completed but their checkpoint .* is missing"):
        run_folder.check_resumable(run)
