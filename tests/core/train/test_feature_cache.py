"""The on-disk embedding cache: keys, persistence, invalidation of one changed file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tlstudio.core.train.feature_cache import FeatureCache, file_key, model_key, weights_digest


def test_features_survive_a_new_cache_object(tmp_path):
    key = model_key({"base": "MobileNet", "alpha": 0.25, "input_size": 32})
    cache = FeatureCache(key, root=tmp_path, description={"base": "MobileNet"})
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.store(["k1", "k2", "k3"], feats)
    fresh = FeatureCache(key, root=tmp_path)  # as after a restart
    found = fresh.lookup(["k2", "k3", "unknown"])
    assert set(found) == {"k2", "k3"}
    assert found["k2"].dtype == np.float16
    np.testing.assert_allclose(found["k3"], feats[2])
    # another model key sees nothing
    assert FeatureCache(model_key({"base": "MobileNet", "alpha": 0.5, "input_size": 32}), root=tmp_path).lookup(["k1"]) == {}


def test_a_changed_file_gets_a_new_key_and_only_it(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    keys = {p: file_key(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (a, b)}
    a.write_bytes(b"one, changed")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert file_key(a.name, a.stat().st_size, a.stat().st_mtime_ns) != keys[a]
    assert file_key(b.name, b.stat().st_size, b.stat().st_mtime_ns) == keys[b]


def test_file_keys_do_not_depend_on_where_the_dataset_is_mounted(tmp_path):
    """Two mounts of one dataset (cluster nodes, a laptop and a server) share cache entries."""
    import shutil

    here = tmp_path / "mnt" / "photos" / "cats"
    here.mkdir(parents=True)
    (here / "a.png").write_bytes(b"pixels")
    there = tmp_path / "elsewhere" / "data"
    shutil.copytree(tmp_path / "mnt" / "photos", there, copy_function=shutil.copy2)  # copy2 keeps mtime
    keys = []
    for root in (tmp_path / "mnt" / "photos", there):
        st = (root / "cats" / "a.png").stat()
        keys.append(file_key(os.path.relpath(root / "cats" / "a.png", root), st.st_size, st.st_mtime_ns))
    assert keys[0] == keys[1]
    assert file_key("./cats/a.png", 6, st.st_mtime_ns) == keys[0]
    assert file_key("dogs/a.png", 6, st.st_mtime_ns) != keys[0]  # another file of the same size and time
    with pytest.raises(ValueError, match="relative"):
        file_key(str(here / "a.png"), 6, st.st_mtime_ns)


def test_locate_names_the_shard_and_row_of_each_key(tmp_path):
    cache = FeatureCache("l" * 40, root=tmp_path)
    cache.store(["a", "b"], np.array([[1, 2], [3, 4]]))
    cache.store(["c"], np.array([[5, 6]]))
    where = FeatureCache("l" * 40, root=tmp_path).locate(["c", "b", "nope"])
    assert set(where) == {"c", "b"}
    path, row = where["b"]
    np.testing.assert_array_equal(np.load(path)[row], [3, 4])
    path, row = where["c"]
    np.testing.assert_array_equal(np.load(path)[row], [5, 6])


def test_an_unfinished_shard_is_ignored(tmp_path):
    cache = FeatureCache("k" * 40, root=tmp_path)
    cache.store(["good"], np.ones((1, 2)))
    folder = tmp_path / ("k" * 40)
    # data without its index (a run killed between the two writes) and an index without data
    np.save(folder / "shard-orphan.npy", np.zeros((1, 2), np.float16))
    (folder / "shard-lost.json").write_text('{"dim": 2, "keys": ["lost"]}')
    (folder / "shard-bad.json").write_text("{not json")
    found = FeatureCache("k" * 40, root=tmp_path).lookup(["good", "lost"])
    assert list(found) == ["good"]


def test_weights_digest_tells_weights_apart():
    w = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    assert weights_digest(w) == weights_digest([x.copy() for x in w])
    w2 = [np.ones((2, 2), np.float32), np.array([0, 0, 1e-6], np.float32)]
    assert weights_digest(w) != weights_digest(w2)
