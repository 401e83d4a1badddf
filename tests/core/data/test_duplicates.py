"""Byte-identical files: found by size, then a prefix digest, then a full digest only where needed."""

from __future__ import annotations

import os

from tlstudio.core.data import duplicates
from tlstudio.core.data.duplicates import PREFIX_BYTES, find_duplicates
from tlstudio.core.data.layout import Entry


def _entry(path, root):
    st = os.stat(path)
    return Entry(str(path), path.relative_to(root).as_posix(), "c", None, st.st_size, st.st_mtime_ns)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_groups_of_copies_sorted_and_distinct_files_apart(tmp_path):
    a = _write(tmp_path / "x" / "a.jpg", b"A" * 100)
    b = _write(tmp_path / "y" / "b.jpg", b"A" * 100)
    c = _write(tmp_path / "c.jpg", b"A" * 100)
    other = _write(tmp_path / "d.jpg", b"B" * 100)  # same size, other bytes
    lone = _write(tmp_path / "e.jpg", b"A" * 99)
    entries = [_entry(p, tmp_path) for p in (b, other, a, lone, c)]
    progress: list[tuple[int, int]] = []
    groups = find_duplicates(entries, None, lambda d, t: progress.append((d, t)), 0, 2)
    assert [[e.rel for e in g] for g in groups] == [["c.jpg", "x/a.jpg", "y/b.jpg"]]
    assert progress[-1][0] == progress[-1][1]


def test_large_files_agreeing_in_their_prefix_are_read_to_the_end(tmp_path, monkeypatch):
    head = b"H" * PREFIX_BYTES
    a = _write(tmp_path / "a.bmp", head + b"1" * 1000)
    b = _write(tmp_path / "b.bmp", head + b"2" * 1000)
    c = _write(tmp_path / "c.bmp", head + b"1" * 1000)
    calls: list[int | None] = []
    real = duplicates._digest

    def counting(path, cancel, limit=None):
        calls.append(limit)
        return real(path, cancel, limit)

    monkeypatch.setattr(duplicates, "_digest", counting)
    groups = find_duplicates([_entry(p, tmp_path) for p in (a, b, c)], None, lambda d, t: None, 0, 1)
    assert [[e.rel for e in g] for g in groups] == [["a.bmp", "c.bmp"]]
    assert calls.count(PREFIX_BYTES) == 3 and calls.count(None) == 3


def test_unreadable_files_are_never_duplicates(tmp_path):
    a = _write(tmp_path / "a.png", b"same")
    b = _write(tmp_path / "b.png", b"same")
    entries = [_entry(a, tmp_path), _entry(b, tmp_path)]
    b.unlink()
    assert find_duplicates(entries, None, lambda d, t: None, 0, 1) == []
