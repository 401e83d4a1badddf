"""``core/train/summary``: the run.json record and the result files of a run that has ended."""

from __future__ import annotations

import time
from types import SimpleNamespace

from tlstudio.core import run_folder
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.pipeline import SkipLog
from tlstudio.core.json_file import read_json
from tlstudio.core.train.cached_features import CachedSplits
from tlstudio.core.train.engines import Engines
from tlstudio.core.train.summary import StageClock, run_summary, write_run_files


def _trainer(tmp_path, data=None):
    progress = SimpleNamespace(run_epoch=4, seconds=lambda: 12.3456, history=lambda: {"epochs": [1, 2]})
    return SimpleNamespace(
        config=TrainConfig(base="MobileNet", alpha=0.25, input_size=96), ckpt=SimpleNamespace(created=None),
        data=data, size=None, progress=progress, frozen_summary="base frozen", outcome={"kept": "head only"},
        engines=Engines(), cached=CachedSplits(computed=5, hits=3, nbytes=800, budget=1000), run_dir=tmp_path, skip_log=SkipLog(),
    )


def test_summary_before_data_is_known(tmp_path):
    summary = run_summary(_trainer(tmp_path), run_folder.STATUS_FAILED)
    assert summary["status"] == run_folder.STATUS_FAILED and summary["classes"] == []
    assert summary["num_train"] == summary["num_val"] == summary["num_test"] == 0
    assert summary["epochs_run"] == 4 and summary["train_seconds"] == 12.346 and summary["input_size"] == 96
    assert summary["kept"] == "head only"
    assert summary["features"] == {"engine": "local", "computed": 5, "from_cache": 3}
    assert summary["head_features"] == {"held": "in memory", "bytes": 800, "budget_bytes": 1000}
    assert summary["created"] and summary["updated"]


def test_write_run_files_writes_history_evaluation_skipped_and_summary(tmp_path):
    data = SimpleNamespace(files={"train": [1, 2, 3], "val": [4], "test": []}, classes=("a", "b"),
                           scan_skipped=[{"path": "x.png", "reason": "broken"}])
    trainer = _trainer(tmp_path, data)
    evaluation = {"splits": {"val": {"n": 1, "accuracy": 1.0}, "test": {"n": 0, "accuracy": 0.0}}}
    val_acc, test_acc = write_run_files(trainer, run_folder.STATUS_FINISHED, evaluation)
    assert (val_acc, test_acc) == (1.0, None)
    assert read_json(tmp_path / run_folder.EVALUATION_FILE) == evaluation
    assert read_json(tmp_path / run_folder.SKIPPED_FILE) == [{"path": "x.png", "reason": "broken"}]
    assert read_json(tmp_path / run_folder.HISTORY_FILE) == {"epochs": [1, 2]}
    summary = run_folder.read_summary(tmp_path)
    assert summary.status == run_folder.STATUS_FINISHED


def test_stage_clock_adds_up_the_time_of_each_stage():
    clock = StageClock()
    with clock("features"):
        time.sleep(0.02)
    try:
        with clock("features"):  # a stage that ends in an error still counts
            time.sleep(0.02)
            raise RuntimeError
    except RuntimeError:
        pass
    with clock("save"):
        pass
    assert list(clock.seconds) == ["features", "save"]
    assert 0.04 <= clock.seconds["features"] < 1.0 and clock.seconds["save"] < 0.02
    trainer = SimpleNamespace(**vars(_trainer(None)), clock=clock)
    assert run_summary(trainer, run_folder.STATUS_RUNNING)["stage_seconds"] == clock.seconds
