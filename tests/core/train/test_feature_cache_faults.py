"""Faults in the feature cache are misses, never trusted and never fatal (promise 4 of issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import numpy as np
import pytest

from tlstudio.core.train.feature_cache import ORPHAN_AGE_S, FeatureCache

KEY = "f" * 40


def _stored(tmp_path, rows=4, dim=3):
    feats = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    keys = [f"k{i}" for i in range(rows)]
    FeatureCache(KEY, root=tmp_path).store(keys, feats)
    folder = tmp_path / KEY
    (meta,) = folder.glob("shard-*.json")
    return keys, feats, folder, meta.stem


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-5])


def _wrong_shape(path):
    np.save(path, np.zeros((2, 3), np.float16))


def _unreadable(path):
    path.unlink()
    path.mkdir()  # a folder where the data should be: opening it fails


@pytest.mark.parametrize("damage", [_flip_last_byte, _truncate, _wrong_shape, _unreadable])
def test_a_damaged_shard_is_a_miss_and_is_replaced(tmp_path, damage):
    keys, feats, folder, shard = _stored(tmp_path)
    damage(folder / f"{shard}.npy")
    cache = FeatureCache(KEY, root=tmp_path)
    assert cache.lookup(keys) == {}  # nothing trusted, nothing raised
    assert not (folder / f"{shard}.json").exists()  # the bad shard is gone, to be replaced
    cache.store(keys, feats)  # recomputed and stored again
    found = FeatureCache(KEY, root=tmp_path).lookup(keys)
    np.testing.assert_allclose(found["k2"], feats[2])


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: {**d, "dim": 4},  # wrong shape
        lambda d: {**d, "keys": d["keys"][:2]},  # wrong number of rows
        lambda d: {k: v for k, v in d.items() if k != "sha256"},  # no checksum: never trusted
        lambda d: {**d, "sha256": "0" * 64},  # checksum of other data
    ],
)
def test_an_index_that_does_not_match_its_data_is_a_miss(tmp_path, edit):
    keys, _, folder, shard = _stored(tmp_path)
    index = folder / f"{shard}.json"
    index.write_text(json.dumps(edit(json.loads(index.read_text()))))
    assert FeatureCache(KEY, root=tmp_path).lookup(keys) == {}


def test_a_cache_that_cannot_be_written_is_bypassed_with_a_warning(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = FeatureCache(KEY, root=blocker)
    cache.store(["a"], np.ones((1, 2)))  # does not raise
    assert cache.warning is not None and "bypassed" in cache.warning
    assert "bypassed" in caplog.text
    assert cache.lookup(["a"]) == {}


def test_a_full_disk_bypasses_the_cache_and_leaves_nothing_behind(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        cache = FeatureCache(KEY, root=mount)
        cache.store([f"k{i}" for i in range(100)], np.ones((100, 1000)))  # 200 kB on a 64 kB disk
        assert cache.warning is not None and "bypassed" in cache.warning
        leftovers = [p.name for p in (mount / KEY).iterdir() if p.name != "meta.json"]
        assert leftovers == []
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=10)


def test_old_orphan_temporary_files_are_cleaned(tmp_path):
    _, _, folder, _ = _stored(tmp_path)
    old = time.time() - ORPHAN_AGE_S - 60
    orphans = [folder / f".shard-{uuid.uuid4().hex[:16]}.tmp.npy", folder / "shard-noindex.npy"]
    young = folder / f".shard-{uuid.uuid4().hex[:16]}.tmp.npy"
    for path in [*orphans, young]:
        np.save(path, np.zeros((1, 3), np.float16))
    for path in orphans:
        os.utime(path, (old, old))
    FeatureCache(KEY, root=tmp_path).lookup(["k0"])
    assert not any(p.exists() for p in orphans)
    assert young.exists()  # may belong to a writer that is still running
