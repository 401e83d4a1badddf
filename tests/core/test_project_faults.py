"""Projects survive being moved and bad edits (promise 7 of issue 18)."""

from __future__ import annotations

import json
import shutil

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.project import Project, ProjectError, RunRecord


def _project(tmp_path, data_dir):
    folder = tmp_path / "proj"
    (folder / "runs" / "run-1").mkdir(parents=True)
    project = Project(name="p", train=TrainConfig(data_dir=str(data_dir)),
                      runs=[RunRecord(run_dir=str(folder / "runs" / "run-1"), status="finished")])
    project.save(folder / "p.tlsproj")
    return folder


def test_a_moved_project_keeps_its_runs_and_its_outside_dataset(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    folder = _project(tmp_path, photos)
    saved = json.loads((folder / "p.tlsproj").read_text())
    assert saved["runs"][0]["run_dir"] == "runs/run-1"  # inside: relative, moves with the project
    assert saved["train"]["data_dir"] == str(photos.resolve())  # outside: absolute

    moved = tmp_path / "elsewhere" / "deeper" / "proj"
    moved.parent.mkdir(parents=True)
    shutil.move(folder, moved)
    copy = tmp_path / "copy"
    shutil.copytree(moved, copy)
    for where in (moved, copy):
        loaded = Project.load(where / "p.tlsproj")
        assert loaded.runs[0].run_dir == str((where / "runs" / "run-1").resolve())
        assert loaded.train.data_dir == str(photos.resolve())
        assert loaded.repairs == []


def _write(tmp_path, data):
    path = tmp_path / "edited.tlsproj"
    path.write_text(json.dumps(data))
    return path


def test_wrong_types_and_unknown_values_are_repaired_with_a_message(tmp_path):
    path = _write(tmp_path, {
        "schema_version": 1, "name": 42, "extra": [1],
        "train": {"batch_size": "big", "head_lr": "NaN", "dropout": None, "bogus": 1, "split": {"seed": "x"}},
        "runs": [
            {"run_dir": "r1", "status": "exploded", "val_accuracy": 7, "epochs_run": -3, "unknown": True},
            {"run_dir": 5},
            "not a run",
        ],
    })
    project = Project.load(path)
    assert project.name == "Untitled"
    assert project.train.batch_size == 32 and project.train.dropout == 0.2 and project.train.split.seed == 1337
    assert len(project.runs) == 1
    run = project.runs[0]
    assert run.status == "" and run.val_accuracy is None and run.epochs_run == 0
    text = "\n".join(project.repairs)
    for expected in ("batch_size = 'big'", "unknown setting 'bogus'", "unknown status 'exploded'",
                     "names no run folder", "display settings"):
        assert expected in text


@pytest.mark.parametrize(
    "train, message",
    [
        ({"head_lr": -1.0}, "learning rates must be positive"),
        ({"batch_size": 0}, "batch size must be at least 1"),
        ({"split": {"val_fraction": 0.7, "test_fraction": 0.5}}, "fractions"),
        ({"optimizer": "magic"}, "optimizer must be one of"),
    ],
)
def test_values_that_cannot_work_refuse_the_file_in_one_line(tmp_path, train, message):
    path = _write(tmp_path, {"schema_version": 1, "train": train})
    with pytest.raises(ProjectError, match=message) as info:
        Project.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 1, 1.5, "text", [], [None], {"a": [1, {"b": None}]}, True])
def test_any_json_in_any_place_gives_a_project_or_a_project_error(tmp_path, value):
    keys = ["name", "train", "runs", "extra"]
    for key in keys:
        path = _write(tmp_path, {"schema_version": 1, key: value})
        try:
            Project.load(path)
        except ProjectError:
            pass
    for field in ["data_dir", "split", "augment", "layer_state", "alpha", "input_size", "threshold"]:
        path = _write(tmp_path, {"schema_version": 1, "train": {field: value}})
        try:
            Project.load(path)
        except ProjectError:
            pass
