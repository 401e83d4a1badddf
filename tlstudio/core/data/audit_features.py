"""Pooled base-model features of every image of a dataset, through the trainer's embedding cache.

The audit (suspected label errors, near-duplicates, the map) works on the same features the
trainer caches when it trains a head on a frozen base: the model is built the same way
(:func:`tlstudio.core.models.catalogue.build_classifier` under the run's seed), described the same
way (so :func:`tlstudio.core.train.feature_cache.model_key` is the same), and images are decoded by
the same pipeline. Images a training run has already seen therefore cost a lookup; the rest are run
through the base once and stored for the next run or audit.

The model key needs the base's weights (their digest), so finding it means building the base:
seconds, plus importing TensorFlow. A small memo, ``<cache>/audit-keys.json``, remembers the key of
each configuration (with the Keras and TensorFlow versions, and the size and time of any weights or
model file); when every image is in the cache under the remembered key, no model is built and
TensorFlow is not imported at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core import paths
from tlstudio.core.atomic import write_json
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled
from tlstudio.core.events import CacheProgress, Event, LogMessage
from tlstudio.core.json_file import read_json
from tlstudio.core.train.cached_features import cache_description

Emit = Callable[[Event], None]


def _ignore(event: Event) -> None:
    pass


@dataclass
class Features:
    """Features of a list of files; rows of files that could not be read are zero and ``ok`` False."""

    x: np.ndarray  # float32 (n, dim)
    ok: np.ndarray  # bool (n,)
    skipped: dict[str, str]  # relative path -> reason
    hits: int  # rows found in the cache
    computed: int  # rows the base was run for
    key: str  # the cache's model key


def build_feature_model(config: TrainConfig, cancel: threading.Event | None = None) -> tuple[Any, int]:
    """The trainer's classifier cut at the pooled features, built under the same seed; and its input size."""
    import keras

    from tlstudio.core.models.catalogue import build_classifier, feature_model

    keras.utils.set_random_seed(int(config.seed))  # a random base must get the trainer's initial weights
    model = build_classifier(config, 2, cancel=cancel)  # the head is not used; 2 classes is enough
    return feature_model(model), int(model.inputs[0].shape[1])


MEMO_FILE = "audit-keys.json"


def _file_identity(path: str | None) -> list[Any] | None:
    if not path or path in ("imagenet", "none"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return [os.path.abspath(path)]
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def memo_id(config: TrainConfig) -> str:
    """What decides the model key of ``config``, as a digest, computed without building anything."""
    from importlib.metadata import PackageNotFoundError, version

    versions: list[str | None] = []
    for package in ("keras", "tensorflow"):
        try:
            versions.append(version(package))
        except PackageNotFoundError:
            versions.append(None)
    text = json.dumps(
        {
            "base": config.base,
            "alpha": config.alpha,
            "input_size": config.input_size,
            "weights": config.weights,
            "weights_file": _file_identity(config.weights),
            "base_model": _file_identity(config.base_model_path),
            "cut_layer": config.cut_layer,
            "resize_policy": config.resize_policy,
            "pooling": config.pooling,
            "seed": int(config.seed),
            "versions": versions,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _memo_path(cache_root: str | Path | None) -> Path:
    return (Path(cache_root) if cache_root is not None else paths.cache_dir() / "features") / MEMO_FILE


def remembered_key(config: TrainConfig, cache_root: str | Path | None = None) -> str | None:
    """The model key an earlier audit found for ``config``, or None."""
    try:
        memo = read_json(_memo_path(cache_root))
    except (OSError, ValueError):
        return None
    key = memo.get(memo_id(config)) if isinstance(memo, dict) else None
    return key if isinstance(key, str) else None


def _remember_key(config: TrainConfig, key: str, cache_root: str | Path | None) -> None:
    path = _memo_path(cache_root)
    try:
        memo = read_json(path)
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    memo[memo_id(config)] = key
    write_json(path, memo)


def _file_keys(root: Path, rel_paths: Sequence[str], skipped: dict[str, str]) -> list[str | None]:
    from tlstudio.core.train.feature_cache import file_key

    keys: list[str | None] = []
    for rel in rel_paths:
        try:
            st = os.stat(root / rel)
        except OSError:
            skipped[rel] = "file not found"
            keys.append(None)
            continue
        keys.append(file_key(rel, st.st_size, st.st_mtime_ns))  # shared with training runs: relative keys
    return keys


def compute_features(
    root: str | Path,
    rel_paths: Sequence[str],
    config: TrainConfig,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    cache_root: str | Path | None = None,
    batch_size: int = 64,
) -> Features:
    """Pooled features of ``rel_paths`` (relative to ``root``) for the base of ``config``.

    Parameters
    ----------
    root
        The dataset folder.
    rel_paths
        Image files relative to ``root``.
    config
        Base, alpha, weights, input size, resize policy, pooling and seed (the rest is unused).
    emit
        Receives :class:`~tlstudio.core.events.CacheProgress` as images are looked up or computed.
    cancel
        Set it to stop; :class:`~tlstudio.core.errors.Cancelled` is raised within one batch.
    cache_root
        Embedding-cache folder (default: the user's, shared with training).
    batch_size
        Images per batch through the base.

    Returns
    -------
    Features
    """
    from tlstudio.core.train.feature_cache import FeatureCache

    cancel = cancel or threading.Event()
    root = Path(root)
    n = len(rel_paths)
    skipped: dict[str, str] = {}
    keys = _file_keys(root, rel_paths, skipped)
    wanted = [k for k in keys if k is not None]
    key = remembered_key(config, cache_root)
    if key is not None:
        found = FeatureCache(key, root=cache_root).lookup(wanted)
        if wanted and len(found) == len(wanted):
            dim = len(next(iter(found.values())))
            x = np.zeros((n, dim), np.float32)
            ok = np.zeros(n, bool)
            for i, k in enumerate(keys):
                if k is not None:
                    x[i], ok[i] = found[k], True
            emit(CacheProgress(done=n, total=n, hits=len(found)))
            return Features(x=x, ok=ok, skipped=skipped, hits=len(found), computed=0, key=key)
    return _compute(root, rel_paths, keys, skipped, config, emit, cancel, cache_root, batch_size)


def _compute(
    root: Path,
    rel_paths: Sequence[str],
    keys: list[str | None],
    skipped: dict[str, str],
    config: TrainConfig,
    emit: Emit,
    cancel: threading.Event,
    cache_root: str | Path | None,
    batch_size: int,
) -> Features:
    """Build the base, look every image up under its real key, run the base on the misses."""
    import tensorflow as tf

    from tlstudio.core.data.pipeline import FileSet, SkipLog, make_dataset
    from tlstudio.core.train.feature_cache import FeatureCache, model_key

    fm, size = build_feature_model(config, cancel)
    desc = cache_description(config, fm, size)
    cache = FeatureCache(model_key(desc), root=cache_root, description=desc)
    _remember_key(config, cache.key, cache_root)
    skip_log = SkipLog()
    n = len(rel_paths)
    dim = int(fm.outputs[0].shape[-1])
    x = np.zeros((n, dim), np.float32)
    ok = np.zeros(n, bool)
    found = cache.lookup([k for k in keys if k is not None])
    for i, k in enumerate(keys):
        if k is not None and k in found:
            x[i], ok[i] = found[k], True
    hits = int(ok.sum())
    emit(CacheProgress(done=hits, total=n, hits=hits))
    misses = [i for i, k in enumerate(keys) if k is not None and k not in found]
    computed = 0
    if misses:
        emit(LogMessage(text=f"computing features of {len(misses)} image(s) ({hits} from the cache)"))
        subset = FileSet(
            [str(root / rel_paths[i]) for i in misses], [rel_paths[i] for i in misses], np.zeros(len(misses), np.int32)
        )
        ds = make_dataset(
            subset, image_size=size, resize_policy=config.resize_policy, batch_size=batch_size, skip_log=skip_log
        )
        spec = tf.TensorSpec((None, size, size, 3), tf.float32)
        fn = tf.function(lambda images: fm(images, training=False), input_signature=[spec])
        pos, done = 0, hits
        new_keys: list[str] = []
        new_rows: list[np.ndarray] = []
        try:
            for images, _, w in ds:
                if cancel.is_set():
                    raise Cancelled("the audit was cancelled while computing features")
                feats = np.asarray(fn(images), dtype=np.float32)
                good = np.asarray(w) > 0
                for j in range(len(good)):
                    i = misses[pos + j]
                    if good[j]:
                        x[i], ok[i] = feats[j], True
                        new_keys.append(str(keys[i]))
                        new_rows.append(feats[j])
                pos += len(good)
                done += len(good)
                computed += int(good.sum())
                emit(CacheProgress(done=done, total=n, hits=hits))
        finally:
            if new_keys:
                cache.store(new_keys, np.stack(new_rows))
    skipped.update({s.path: s.reason for s in skip_log.all()})
    return Features(x=x, ok=ok, skipped=skipped, hits=hits, computed=computed, key=cache.key)
