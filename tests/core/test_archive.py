"""Archives are checked from their directory before anything is unpacked: real (small) zip bombs,
path tricks, links, duplicates and special files are refused, and a refused unpack leaves nothing."""

from __future__ import annotations

import os
import stat
import zipfile

import pytest

from tlstudio.core.archive import ArchiveError, check_archive, extract_members


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)
    return path


def _keras_like(path):
    return _zip(path, {"metadata.json": b"{}", "config.json": b'{"class_name": "Functional"}',
                       "model.weights.h5": os.urandom(4096)})  # fmt: skip


def test_a_normal_model_archive_passes(tmp_path):
    info = check_archive(_keras_like(tmp_path / "model.keras"))
    assert sorted(m.filename for m in info.members) == ["config.json", "metadata.json", "model.weights.h5"]
    assert info.unpacked_bytes == 2 + 28 + 4096


def test_a_small_zip_bomb_is_refused_by_its_total(tmp_path):
    bomb = _zip(tmp_path / "converted_keras.zip", {f"part{i}.bin": b"\0" * (3 * 1024 * 1024) for i in range(4)})
    assert bomb.stat().st_size < 100_000  # 12 MB of zeros packs into a few KB
    with pytest.raises(ArchiveError, match="would unpack to more than 10,000,000 bytes"):
        check_archive(bomb, max_unpacked_bytes=10_000_000, max_ratio=1e9)


def test_a_member_that_expands_absurdly_is_refused_as_a_bomb(tmp_path):
    bomb = _zip(tmp_path / "model.keras", {"model.weights.h5": b"\0" * (8 * 1024 * 1024)})
    with pytest.raises(ArchiveError, match=r"model.weights.h5' would unpack from .* to 8,388,608 bytes \(a zip bomb\?\)"):
        check_archive(bomb)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../.bashrc", "'..' in its path"),
        ("a/../../b", "'..' in its path"),
        ("/etc/cron.d/x", "an absolute path"),
        ("C:/Windows/x.dll", "an absolute path"),
        ("dir\\..\\x", "a backslash"),
        ("line\nbreak", "control characters"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path, name, problem):
    archive = _zip(tmp_path / "m.zip", {name: b"x", "model.keras": b"y"})
    with pytest.raises(ArchiveError, match=problem):
        check_archive(archive)


def test_links_and_duplicate_names_are_refused(tmp_path):
    link = zipfile.ZipInfo("labels.txt")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(ArchiveError, match="a link"):
        check_archive(_zip(tmp_path / "link.zip", {"labels.txt": link}))
    twice = tmp_path / "twice.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(twice, "w") as zf:
            zf.writestr("config.json", b"{}")
            zf.writestr("config.json", b'{"evil": 1}')
    with pytest.raises(ArchiveError, match="a name used twice"):
        check_archive(twice)


def test_too_many_members(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(20)})
    with pytest.raises(ArchiveError, match="holds 20 members, over the limit of 10"):
        check_archive(archive, max_members=10)


def test_damaged_missing_and_special_files(tmp_path):
    junk = tmp_path / "model.keras"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError, match="model.keras is damaged or not a zip archive"):
        check_archive(junk)
    with pytest.raises(ArchiveError, match="file not found"):
        check_archive(tmp_path / "nope.zip")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.keras")
        with pytest.raises(ArchiveError, match="named pipe"):
            check_archive(tmp_path / "pipe.keras")


def test_extract_members_writes_whole_folder(tmp_path):
    archive = _zip(tmp_path / "tm.zip", {"model/keras_model.h5": b"weights", "labels.txt": b"0 a\n1 b\n"})
    out = extract_members(archive, tmp_path / "out", ["model/keras_model.h5", "labels.txt"])
    assert (out / "model" / "keras_model.h5").read_bytes() == b"weights"
    assert (out / "labels.txt").read_text() == "0 a\n1 b\n"


def test_a_refused_extract_leaves_nothing_behind(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"a.bin": b"\0" * (4 * 1024 * 1024), "labels.txt": b"x"})
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ArchiveError, match="zip bomb"):
        extract_members(bomb, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(ArchiveError, match="holds no model.keras"):
        extract_members(_zip(tmp_path / "x.zip", {"a": b"1"}), tmp_path / "out2", ["model.keras"])
    assert not (tmp_path / "out2").exists()
