"""The run folder's configuration round trip and load_run on partial folders."""

from __future__ import annotations

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.run_folder import RunError, load_run, read_run_config, write_run_config, write_summary


def test_config_round_trip_keeps_split_settings_and_file_lists(tmp_path):
    config = TrainConfig(data_dir="/data", base="MobileNet", head_epochs=4)
    config.split.val_fraction = 0.3
    config.split.seed = 5
    split = {"train": ["a/1.png", "b/2.png"], "val": ["a/3.png"], "test": []}
    write_run_config(tmp_path, config, ["a", "b"], split)
    assert (tmp_path / "labels.txt").read_text() == "a\nb\n"
    again, classes, lists = read_run_config(tmp_path)
    assert again == config
    assert classes == ["a", "b"] and lists == split


def test_load_run_of_an_unfinished_run(tmp_path):
    write_run_config(tmp_path, TrainConfig(data_dir="/data"), ["x", "y"], {"train": [], "val": [], "test": []})
    write_summary(tmp_path, {"status": "running"})
    info = load_run(tmp_path)
    assert info.status == "running" and info.model_path is None and info.evaluation is None
    assert info.history == {"epochs": [], "batches": []} and info.classes == ["x", "y"]


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a training run"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(RunError, match="cannot read"):
        load_run(tmp_path)
