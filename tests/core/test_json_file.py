"""The one JSON reader: damaged, deep, huge or special files give one clear line, never a RecursionError."""

from __future__ import annotations

import json
import os

import pytest

from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import MAX_DEPTH, JsonError, loads_json, read_json


def test_reads_objects_and_lists(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"a": [1, {"b": "é"}]}), encoding="utf-8")
    assert read_json(path) == {"a": [1, {"b": "é"}]}
    assert read_json(path, expect=dict) == {"a": [1, {"b": "é"}]}


def test_a_bom_is_accepted(tmp_path):
    path = tmp_path / "notepad.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"x": 1}')
    assert read_json(path) == {"x": 1}


def test_missing_file_gives_the_default_or_file_not_found(tmp_path):
    assert read_json(tmp_path / "none.json", {}) == {}
    assert read_json(tmp_path / "none.json", None) is None
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "none.json")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_json_is_a_clear_error_not_a_recursion_error(tmp_path, depth):
    path = tmp_path / "project.tlsproj"
    path.write_text("[" * depth + "]" * depth, encoding="utf-8")
    with pytest.raises(JsonError, match="nested too deeply") as info:
        read_json(path)
    assert "project.tlsproj" in str(info.value) and "\n" not in str(info.value)
    nested_objects = '{"a":' * depth + "1" + "}" * depth
    with pytest.raises(JsonError, match="nested too deeply"):
        loads_json(nested_objects, source="config.json")


def test_nesting_at_the_limit_is_fine():
    assert loads_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_damaged_json_says_where(tmp_path):
    path = tmp_path / "history.json"
    path.write_text('{"epochs": [1, 2,', encoding="utf-8")
    with pytest.raises(JsonError, match=r"history.json: not valid JSON \(.* line 1 column"):
        read_json(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(JsonError, match="not UTF-8"):
        read_json(path)


def test_huge_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps(["x" * 100] * 100), encoding="utf-8")
    with pytest.raises(JsonError, match="over the limit"):
        read_json(path, max_bytes=1000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "project.json"
    os.mkfifo(fifo)
    with pytest.raises(JsonError, match="named pipe"):
        read_json(fifo, {})  # a default covers a missing file only


def test_wrong_top_level_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(JsonError, match="expected an object at the top level, found list"):
        read_json(path, expect=dict)


def test_errors_are_both_user_errors_and_value_errors():
    with pytest.raises(TlstudioError):
        loads_json("{")
    with pytest.raises(ValueError):
        loads_json("{")


# --- every reader of JSON goes through it: deep JSON is a clear error (or a cache miss) everywhere ---

DEEP = "[" * 50_000 + "]" * 50_000


def test_a_deep_project_file_is_a_project_error(tmp_path):
    from tlstudio.core.project import Project, ProjectError

    path = tmp_path / "deep.tlsproj"
    path.write_text('{"name": ' + DEEP + "}", encoding="utf-8")
    with pytest.raises(ProjectError, match="project file is damaged.*nested too deeply"):
        Project.load(path)


def test_a_deep_training_configuration_is_a_config_error(tmp_path):
    from tlstudio.core.config import ConfigError, TrainConfig

    path = tmp_path / "config.json"
    path.write_text(DEEP, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        TrainConfig.load(path)


def test_a_keras_file_with_a_deep_config_is_a_model_file_error(tmp_path):
    import zipfile

    from tlstudio.core.models.safety import ModelFileError, read_keras_archive

    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", '{"class_name": "Functional", "config": ' + DEEP + "}")
        zf.writestr("metadata.json", "{}")
    with pytest.raises(ModelFileError, match="config.json.*nested too deeply"):
        read_keras_archive(path)


def test_deep_cache_index_and_resume_state_are_treated_as_missing(tmp_path):
    from tlstudio.core.train.checkpoints import STATE_FILE, read_state
    from tlstudio.core.train.feature_cache import FeatureCache

    (tmp_path / STATE_FILE).write_text(DEEP, encoding="utf-8")
    assert read_state(tmp_path) is None
    cache = FeatureCache("k", root=tmp_path / "cache")
    cache.folder.mkdir(parents=True)
    (cache.folder / "shard-1.json").write_text(DEEP, encoding="utf-8")
    (cache.folder / "shard-1.npy").write_bytes(b"")
    assert cache.lookup(["a"]) == {}
