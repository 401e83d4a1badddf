"""Atomic writes: the target is replaced whole or not at all, and no temporary file is left behind."""

from __future__ import annotations

import json

import pytest

from tlstudio.core.atomic import atomic_path, write_json, write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_text_replaces_the_target_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "notes.txt"
    write_text(target, "first")
    write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert _leftovers(target.parent) == []


def test_write_json_is_readable_json(tmp_path):
    target = tmp_path / "run.json"
    write_json(target, {"a": 1, "path": tmp_path})  # a Path is written as text
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1, "path": str(tmp_path)}


def test_a_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a new mod")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old model"
    assert _leftovers(tmp_path) == []


def test_the_temporary_sits_beside_the_target_with_its_suffix(tmp_path):
    target = tmp_path / "model.keras"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".keras") and tmp != target
        assert not target.exists()  # nothing is visible under the real name until the end
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_directory_mode_replaces_a_whole_folder(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    with atomic_path(target, directory=True) as tmp:
        assert tmp.is_dir()
        (tmp / "new.pb").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["new.pb"]
    assert _leftovers(tmp_path) == []


def test_directory_mode_failure_keeps_the_old_folder(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "new.pb").write_bytes(b"new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["old.pb"]
    assert _leftovers(tmp_path) == []
