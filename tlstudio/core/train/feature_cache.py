"""The embedding cache: pooled base-model features per image file, kept on disk between runs.

When the whole base is frozen and no augmentation is on, the base's output for an image never
changes, so it is computed once and stored. A second run on the same data with another head,
learning rate or number of epochs then trains only the small head, in seconds.

Layout under :func:`tlstudio.core.paths.cache_dir`::

    features/<model key>/meta.json            what the key stands for (for people)
    features/<model key>/<shard>.npy          float16 features, one row per file
    features/<model key>/<shard>.json         {"dim": D, "keys": [file key per row]}  (written last)

The **model key** is a digest of everything that changes the features: base name, width, input
size, resize policy, pooling and the base's actual weight values (so "imagenet", a weights file,
the user's own model and a seeded random initialisation are all told apart). The **file key**
is a digest of the file's path *relative to the dataset folder*, its size and modification time:
a changed file gets a new key, so its old entry is simply never found again, and only that file
is recomputed. Leaving the mount point out lets machines that mount the same dataset at
different places (cluster nodes, a laptop and a server) share one cache on shared storage.

A shard's index is written after its data, each atomically, so a run killed while writing
leaves either a complete shard or none. The index carries the shard's shape and a SHA-256 of its
rows: a shard that is damaged, truncated, of the wrong shape or unreadable is a miss (deleted, so
its rows are recomputed and stored again), never trusted and never fatal. A cache folder on a full
or read-only disk is bypassed with a warning (the run goes on, computing features as it goes), and
temporary files left by a killed writer are removed once they are old.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tlstudio.core import paths
from tlstudio.core.atomic import write_json
from tlstudio.core.json_file import read_json

CACHE_VERSION = 2  # 2: file keys from dataset-relative paths
#: A temporary file or index-less shard older than this was left by a writer that died.
ORPHAN_AGE_S = 3600.0

_log = logging.getLogger(__name__)


def rows_digest(rows: np.ndarray) -> str:
    """SHA-256 of a shard's rows: dtype, shape and bytes (what the index vouches for)."""
    h = hashlib.sha256(f"{rows.dtype.str}{tuple(rows.shape)}".encode())
    h.update(memoryview(np.ascontiguousarray(rows)).cast("B"))
    return h.hexdigest()


def model_key(description: Mapping[str, Any]) -> str:
    """A stable digest of a JSON-able description of the feature extractor."""
    text = json.dumps({"v": CACHE_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def weights_digest(arrays: Iterable[np.ndarray]) -> str:
    """A digest of weight values (their shapes, dtypes and bytes), in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_key(rel_path: str | os.PathLike[str], size: int, mtime_ns: int) -> str:
    """The identity of one image file: its path relative to the dataset folder, size and modification time.

    The path is taken with "/" separators and without a leading "./", so the same file has the
    same key wherever the dataset is mounted and on any operating system.
    """
    rel = os.fspath(rel_path).replace(os.sep, "/")
    while rel.startswith("./"):
        rel = rel[2:]
    if os.path.isabs(rel) or rel.startswith("/"):
        raise ValueError(f"file_key wants a path relative to the dataset folder, not {rel!r}")
    text = f"{rel}\0{int(size)}\0{int(mtime_ns)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FeatureEngine(Protocol):
    """Computes features somewhere else than in this process (``tlstudio.cluster`` does it on Ray).

    The process that trains keeps the cache and the run folder: it stores what ``extract`` yields.
    """

    name: str  # recorded in run.json: "features": {"engine": name, ...}

    def extract(
        self,
        feature_model: Any,
        root: str,
        items: Sequence[tuple[str, str]],
        *,
        image_size: int,
        resize_policy: str,
        batch_size: int,
        cancel: threading.Event,
        log: Callable[[str, str], None] | None = None,
    ) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
        """Features of ``items`` (``(dataset-relative path, file key)``), batch by batch.

        Yields ``(file keys, float32 features (n, D), [(path, reason) of undecodable files])``,
        in any order, and stops soon after ``cancel`` is set; closing the iterator stops the work.
        """
        ...


class FeatureCache:
    """Features of one feature extractor, looked up and stored by file key.

    Parameters
    ----------
    key
        The model key (see :func:`model_key`).
    root
        Cache folder; default ``paths.cache_dir() / "features"``.
    description
        Written to ``meta.json`` beside the features, to say what the key stands for.
    log
        ``log(text, level)``: where the warning goes, once, when the cache is bypassed (a run's log,
        which the CLI prints and the app shows); Python's logging when None.
    """

    def __init__(self, key: str, root: str | Path | None = None, description: Mapping[str, Any] | None = None,
                 log: Callable[[str, str], None] | None = None):
        self.key = key
        self._say = log
        self.folder = Path(root) if root is not None else paths.cache_dir() / "features"
        self.folder = self.folder / key
        self._description = dict(description or {})
        self._index: dict[str, tuple[str, int]] | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        #: Why the cache is bypassed (cannot be written), or None while it works.
        self.warning: str | None = None

    # -- reading -----------------------------------------------------------------------------
    def _load_index(self) -> dict[str, tuple[str, int]]:
        if self._index is not None:
            return self._index
        index: dict[str, tuple[str, int]] = {}
        if self.folder.is_dir():
            self._clean_orphans()
            for meta in sorted(self.folder.glob("shard-*.json")):
                keys = self._checked_keys(meta)
                if keys is None:
                    self._discard(meta.stem)  # its rows become misses: recomputed and stored again
                    continue
                for row, k in enumerate(keys):
                    index[k] = (meta.stem, row)
        self._index = index
        return index

    def _checked_keys(self, meta: Path) -> list[str] | None:
        """The keys of a shard whose data matches its index (shape, dtype, checksum); None otherwise."""
        try:
            data = read_json(meta)
            keys, dim, digest = data["keys"], data["dim"], data["sha256"]
            if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and isinstance(dim, int)):
                return None
            arr = np.load(self.folder / f"{meta.stem}.npy", mmap_mode="r", allow_pickle=False)
            if arr.dtype != np.float16 or arr.shape != (len(keys), dim) or rows_digest(arr) != digest:
                return None
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None
        self._arrays[meta.stem] = arr
        return keys

    def _discard(self, shard: str) -> None:
        self._arrays.pop(shard, None)
        for suffix in (".json", ".npy"):
            try:
                (self.folder / f"{shard}{suffix}").unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache: the shard is simply not used

    def _clean_orphans(self) -> None:
        # Only old ones: a young temporary file may belong to a writer that is still running.
        cutoff = time.time() - ORPHAN_AGE_S
        for path in [*self.folder.glob(".shard-*.tmp*"), *self.folder.glob("shard-*.npy")]:
            try:
                if path.suffix == ".npy" and path.with_suffix(".json").exists():
                    continue
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def _array(self, shard: str) -> np.ndarray:
        arr = self._arrays.get(shard)
        if arr is None:
            arr = np.load(self.folder / f"{shard}.npy", mmap_mode="r", allow_pickle=False)
            self._arrays[shard] = arr
        return arr

    def lookup(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached features (float16, shape ``(dim,)``) of those ``keys`` that are known."""
        with self._lock:
            index = self._load_index()
            found: dict[str, np.ndarray] = {}
            for k in keys:
                where = index.get(k)
                if where is None:
                    continue
                try:
                    found[k] = np.array(self._array(where[0])[where[1]])
                except (OSError, ValueError, IndexError):
                    index.pop(k, None)
            return found

    def locate(self, keys: Sequence[str]) -> dict[str, tuple[Path, int]]:
        """Where the features of those ``keys`` that are known live: ``(shard .npy path, row)``.

        For readers that stream rows from the memory-mapped shards instead of copying them
        (:mod:`tlstudio.core.train.streaming`).
        """
        with self._lock:
            index = self._load_index()
            paths = {shard: self.folder / f"{shard}.npy" for shard in {where[0] for where in index.values()}}
            return {k: (paths[index[k][0]], index[k][1]) for k in keys if k in index}

    # -- writing -----------------------------------------------------------------------------
    def store(self, keys: Sequence[str], features: np.ndarray) -> None:
        """Store one row of ``features`` per key, as a new shard.

        Never fails the caller: when the cache folder cannot be written (a full or read-only disk)
        the cache is bypassed from then on and :attr:`warning` says why (also logged once).
        """
        if len(keys) == 0 or self.warning is not None:
            return
        feats = np.ascontiguousarray(np.asarray(features, dtype=np.float16).reshape(len(keys), -1))
        with self._lock:
            shard = f"shard-{uuid.uuid4().hex[:16]}"
            tmp = self.folder / f".{shard}.tmp.npy"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                meta_path = self.folder / "meta.json"
                if not meta_path.exists():
                    write_json(meta_path, {"version": CACHE_VERSION, "key": self.key, **self._description})
                np.save(tmp, feats, allow_pickle=False)
                os.replace(tmp, self.folder / f"{shard}.npy")
                write_json(
                    self.folder / f"{shard}.json",
                    {"dim": int(feats.shape[1]), "keys": list(keys), "sha256": rows_digest(feats)},
                )
            except OSError as exc:
                self._discard(shard)
                self.warning = (f"the feature cache in {self.folder} cannot be written ({exc.strerror or exc}); "
                                "it is bypassed: this run goes on, computing every image's features")
                if self._say is not None:
                    self._say(self.warning, "warning")
                else:
                    _log.warning(self.warning)
                return
            finally:
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
            index = self._load_index()
            for row, k in enumerate(keys):
                index[k] = (shard, row)

    def clear(self) -> None:
        """Forget every feature of this extractor."""
        import shutil

        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._index = None
            self._arrays.clear()


def cached_anywhere(keys: Iterable[str], root: str | Path | None = None) -> set[str]:
    """Those file ``keys`` that some feature extractor's cache holds (to skip decoding them early)."""
    folder = Path(root) if root is not None else paths.cache_dir() / "features"
    wanted, found = set(keys), set()
    for meta in folder.glob("*/shard-*.json") if folder.is_dir() else []:
        try:
            found.update(wanted.intersection(read_json(meta)["keys"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def clear_all(root: str | Path | None = None) -> None:
    """Delete the whole embedding cache (it only saves time)."""
    import shutil

    shutil.rmtree(Path(root) if root is not None else paths.cache_dir() / "features", ignore_errors=True)
