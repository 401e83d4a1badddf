"""The project file and its persistence: round trip, relative paths, overwrite guard, autosave and recovery."""

from __future__ import annotations

import json
import os
import time

import pytest

from tlstudio.core import project as core_project
from tlstudio.core.project import Project, ProjectError, RunRecord


def make_project(tmp_path) -> Project:
    data = tmp_path / "photos"
    data.mkdir()
    project = Project(name="ants")
    project.train.data_dir = str(data)
    project.runs.append(RunRecord(run_dir=str(tmp_path / "runs" / "r1"), name="first", val_accuracy=0.9))
    return project


def test_round_trip_keeps_everything_and_stores_paths_relative(tmp_path):
    project = make_project(tmp_path)
    path = tmp_path / "ants.tlsproj"
    project.save(path)
    data = json.loads(path.read_text())
    assert data["train"]["data_dir"] == "photos" and data["runs"][0]["run_dir"] == "runs/r1"
    back = Project.load(path)
    assert back.train.data_dir == str((tmp_path / "photos").resolve())
    assert back.runs[0].name == "first" and back.runs[0].val_accuracy == 0.9


@pytest.mark.parametrize(("text", "words"), [("{not json", "damaged"), ('{"name": "x"}', "no schema_version"),
                                             ('{"schema_version": 99}', "newer tlstudio")])
def test_bad_files_give_one_line(tmp_path, text, words):
    path = tmp_path / "bad.tlsproj"
    path.write_text(text)
    with pytest.raises(ProjectError, match=words) as info:
        Project.load(path)
    assert "\n" not in str(info.value)
    assert path.read_text() == text  # never rewritten by loading


def test_save_refuses_to_overwrite_a_newer_project(tmp_path):
    path = tmp_path / "newer.tlsproj"
    path.write_text(json.dumps({"schema_version": 99, "name": "future"}))
    with pytest.raises(ProjectError, match="newer tlstudio"):
        core_project.save_project(Project(), path)
    assert json.loads(path.read_text())["schema_version"] == 99


def test_autosave_beside_the_file_and_recovery_only_when_newer(tmp_path):
    project = make_project(tmp_path)
    path = tmp_path / "ants.tlsproj"
    core_project.save_project(project, path)
    assert core_project.recovery_for(path) is None
    project.name = "changed"
    copy = core_project.write_autosave(project, path)
    assert copy == tmp_path / "ants.tlsproj.autosave"
    old = time.time() - 60
    os.utime(path, (old, old))
    assert core_project.recovery_for(path) == copy
    recovered = core_project.load_recovery(copy, path)
    assert recovered.name == "changed" and recovered.train.data_dir == str((tmp_path / "photos").resolve())
    # Saving supersedes the copy.
    core_project.save_project(recovered, path, path)
    assert not copy.exists() and core_project.recovery_for(path) is None


def test_untitled_autosave_lives_in_the_data_home_and_goes_on_first_save(tmp_path, monkeypatch):
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    project = make_project(tmp_path)
    copy = core_project.write_autosave(project, None)
    assert copy.parent == tmp_path / "home" / "autosave"
    assert core_project.recovery_for(None) == copy
    assert core_project.load_recovery(copy, None).train.data_dir == str((tmp_path / "photos").resolve())
    core_project.save_project(project, tmp_path / "saved.tlsproj", None)
    assert not copy.exists()


def test_unreadable_recovery_is_a_project_error(tmp_path):
    copy = tmp_path / "x.tlsproj.autosave"
    copy.write_text("{broken")
    with pytest.raises(ProjectError, match="cannot be read"):
        core_project.load_recovery(copy, tmp_path / "x.tlsproj")
