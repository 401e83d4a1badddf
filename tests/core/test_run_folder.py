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
    from tlstudio.core.run_lock import RunLock

    with RunLock(tmp_path):
        info = load_run(tmp_path)
    assert info.status == "running" and info.model_path is None and info.evaluation is None
    # Nobody holds the run any more (its process was killed): it reads as interrupted.
    assert load_run(tmp_path).status == "interrupted"
    assert info.history == {"epochs": [], "batches": []} and info.classes == ["x", "y"]


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a training run"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(RunError, match="cannot read"):
        load_run(tmp_path)


def test_summary_round_trips_and_keeps_unknown_keys(tmp_path):
    from tlstudio.core.run_folder import Summary, read_summary

    data = {"status": "finished", "base": "MobileNet", "alpha": 0.25, "classes": ["a", "b"], "epochs_run": 3,
            "val_accuracy": 0.5, "num_train": 12, "future_key": {"x": 1}}
    write_summary(tmp_path, data)
    summary = read_summary(tmp_path)
    assert summary.status == "finished" and summary.classes == ("a", "b") and summary.epochs_run == 3
    assert summary.extra == {"future_key": {"x": 1}} and summary["num_train"] == 12 and summary.get("test_accuracy") is None
    write_summary(tmp_path, summary)
    assert read_summary(tmp_path) == summary
    # Wrong types become defaults instead of crashing whoever shows the summary.
    assert Summary.from_dict({"epochs_run": "three", "val_accuracy": "high", "classes": "ab"}) == Summary()
    assert read_summary(tmp_path / "missing").status == "unknown"


def test_partial_and_damaged_files_are_told_apart(tmp_path):
    from tlstudio.core import run_folder

    assert not run_folder.is_run(tmp_path) and not run_folder.has_model(tmp_path)
    assert run_folder.read_history(tmp_path) == {"epochs": [], "batches": []}
    assert run_folder.read_evaluation(tmp_path) is None and run_folder.read_labels(tmp_path) is None
    (tmp_path / run_folder.RUN_FILE).write_text("[1, 2]")
    assert run_folder.is_run(tmp_path)
    with pytest.raises(RunError, match="not a JSON object"):
        run_folder.read_summary(tmp_path)
    (tmp_path / run_folder.HISTORY_FILE).write_text("[" * 100000)
    with pytest.raises(RunError, match="cannot read"):
        run_folder.read_history(tmp_path)
    run_folder.model_file(tmp_path).write_bytes(b"zip")
    assert run_folder.has_model(tmp_path)


def test_load_run_gives_typed_parts_and_the_split_images(tmp_path):
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"x")
    run = tmp_path / "run"
    write_run_config(run, TrainConfig(data_dir=str(data), input_size=96), ["a", "b"],
                     {"train": ["a/1.png", "a/gone.png"], "val": [], "test": []})
    write_summary(run, {"status": "cancelled", "input_size": 96, "val_accuracy": 0.75})
    info = load_run(run)
    assert info.status == "cancelled" and info.val_accuracy == 0.75 and info.input_size == 96
    assert info.split_images(["val", "train"]) == [data / "a" / "1.png"]
    assert info.config.input_size == 96 and info.classes == ["a", "b"]
