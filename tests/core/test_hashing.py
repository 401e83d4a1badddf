"""File digests: the whole file, a prefix, and a cancel that stops reading."""

from __future__ import annotations

import hashlib
import threading

import pytest

from tlstudio.core.hashing import file_digest


def test_digest_matches_hashlib_for_each_algorithm(tmp_path):
    data = bytes(range(256)) * 9000  # over one read block
    path = tmp_path / "w.h5"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(data).hexdigest()
    assert file_digest(path, "blake2b") == hashlib.blake2b(data, digest_size=20).hexdigest()


def test_limit_hashes_only_the_prefix(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same start" + b"A" * 10)
    b.write_bytes(b"same start" + b"B" * 10)
    assert file_digest(a, limit=10) == file_digest(b, limit=10) == hashlib.sha256(b"same start").hexdigest()
    assert file_digest(a) != file_digest(b)


def test_cancel_returns_none(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x" * 100)
    cancel = threading.Event()
    cancel.set()
    assert file_digest(path, cancel=cancel) is None


def test_unreadable_file_raises_os_error(tmp_path):
    with pytest.raises(OSError):
        file_digest(tmp_path / "missing")
