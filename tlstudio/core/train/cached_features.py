"""Filling the embedding cache for a run: the frozen base runs once per image not yet cached.

The store itself (shards on disk, keys) is :mod:`tlstudio.core.train.feature_cache`; this module
decides what one run needs from it, runs the base on the misses and hands back the features
per split, ready for the head phase and for evaluation: in-memory arrays, or, when they would
not fit in the memory budget (:func:`tlstudio.core.train.streaming.memory_budget`), arrays that
read their rows from the cache shards when indexed (the head phase then streams them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlstudio.core.config import TrainConfig
from tlstudio.core.data.pipeline import FileSet
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.events import PHASE_CACHING, CacheProgress, Event, FileSkipped, PhaseStarted, RateLimit
from tlstudio.core.train.image_prefetch import ImagePrefetch, decoded_batches

#: Features computed but not yet written are flushed to the cache every so many images.
CACHE_FLUSH = 2048
#: At most this many CacheProgress events a second (the last one always goes).
PROGRESS_EVENTS_PER_SECOND = 10.0


@dataclass
class CachedSplits:
    """Features of each split: ``arrays[split] = (features, labels, kept indices)``.

    ``features`` is a float32 array in memory, or, when the run's features exceed the memory
    budget (``streamed``), a :class:`~tlstudio.core.train.streaming.StreamedFeatures` over the
    cache shards (same ``len``, ``shape`` and indexing; rows are read when asked for).
    """

    arrays: dict[str, tuple[Any, np.ndarray, list[int]]] = field(default_factory=dict)
    hits: int = 0  # images whose features came from the cache on disk
    computed: int = 0  # images the base was run on
    streamed: bool = False  # the features stay in the cache shards (over the memory budget)
    nbytes: int = 0  # rows x width x 4 of every split: what holding them in memory takes
    budget: int = 0  # the memory budget they were compared with

    def memory_record(self) -> dict[str, Any]:
        """``run.json``'s ``"head_features"``: where the head phase read its features from, and why."""
        return {"held": "streamed" if self.streamed else "in memory", "bytes": int(self.nbytes),
                "budget_bytes": int(self.budget)}


class _KeysOnly(dict):  # type: ignore[type-arg]
    """File keys found or computed, without their features: a streamed run reads them back from the cache."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, None)


def compute_features(fn: Callable[[Any], Any], images: Any) -> np.ndarray:
    """Run the frozen base (with its pooling) on one batch of images: the expensive call the cache saves."""
    return np.asarray(fn(images), dtype=np.float32)


def cache_description(config: TrainConfig, feature_model: Any, size: int) -> dict[str, Any]:
    """Everything that changes the features, for :func:`~tlstudio.core.train.feature_cache.model_key`."""
    from tlstudio.core.train.feature_cache import weights_digest

    return {
        "base": config.base_model_path and os.path.abspath(config.base_model_path) or config.base,
        "cut_layer": config.cut_layer,
        "alpha": config.alpha,
        "weights": config.weights if config.weights in ("imagenet", "none") else os.path.abspath(config.weights),
        "weights_digest": weights_digest(feature_model.get_weights()),
        "input_size": size,
        "resize_policy": config.resize_policy,
        "pooling": config.pooling,
        "layers": [type(layer).__name__ for layer in feature_model.layers],
    }


def start_prefetch(config: TrainConfig, files: dict[str, FileSet]) -> ImagePrefetch | None:
    """Start decoding the images that no feature cache holds, in the order :func:`fill_cache` will
    want them, before TensorFlow is even imported. None when all are cached (or the input size is
    not known yet: the user's own model file tells it only once TensorFlow has read it)."""
    from tlstudio.core.models.catalogue import input_size

    if config.base_model_path:
        return None
    from tlstudio.core.train.feature_cache import cached_anywhere, file_key

    keyed = []
    for name in ("train", "val", "test"):
        for abs_path, rel in zip(files[name].abs_paths, files[name].rel_paths, strict=True):
            try:
                st = os.stat(abs_path)
            except OSError:
                continue
            keyed.append((abs_path, file_key(rel, st.st_size, st.st_mtime_ns)))  # the cache's own key
    known = cached_anywhere(k for _, k in keyed)
    todo = [p for p, k in keyed if k not in known]
    return ImagePrefetch(todo, input_size(config), config.resize_policy) if todo else None


def fill_cache(
    files: dict[str, FileSet],
    splits: Sequence[str],
    *,
    feature_model: Any,
    config: TrainConfig,
    size: int,
    skip_log: Any,
    emit: Callable[[Event], None],
    log: Callable[..., None],
    cancel: threading.Event,
    prefetch: ImagePrefetch | None = None,
    engine: Any = None,
) -> CachedSplits:
    """Features of every readable image of ``splits``, from the cache or computed (and then cached).

    Emits PhaseStarted(caching), CacheProgress (rate-limited) and FileSkipped events.

    Parameters
    ----------
    files
        The run's file sets by split name.
    splits
        Which splits are needed.
    feature_model
        The frozen base with its pooling (:func:`tlstudio.core.models.catalogue.feature_model`).
    config, size
        The run's configuration and the base's input size.
    skip_log
        Files that cannot be read are added here (and emitted as FileSkipped).
    emit, log, cancel
        Events, log lines and the cancel request of the run.
    prefetch
        Images already being decoded (:func:`start_prefetch`), taken in order.
    engine
        None to run the base here, or a :class:`~tlstudio.core.train.feature_cache.FeatureEngine`
        that computes the misses elsewhere (:mod:`tlstudio.core.train.engines`).

    Returns
    -------
    CachedSplits

    Raises
    ------
    Cancelled
        When ``cancel`` is set while features are computed.
    """
    import tensorflow as tf

    from tlstudio.core.train.feature_cache import FeatureCache, file_key, model_key
    from tlstudio.core.train.streaming import StreamedFeatures, memory_budget, rows_from_cache

    def drain_skips() -> None:
        for s in skip_log.drain():
            emit(FileSkipped(path=s.path, reason=s.reason))

    desc = cache_description(config, feature_model, size)
    cache = FeatureCache(model_key(desc), description=desc, log=log)  # a bypassed cache says so in the run's log
    entries: list[tuple[str, int, str]] = []  # (split, index in the FileSet, file key)
    for name in splits:
        fs = files[name]
        for i, (abs_path, rel) in enumerate(zip(fs.abs_paths, fs.rel_paths, strict=True)):
            if rel in skip_log:
                continue
            try:
                st = os.stat(abs_path)
            except OSError:
                skip_log.add(rel, "file not found")
                continue
            entries.append((name, i, file_key(rel, st.st_size, st.st_mtime_ns)))
    total = len(entries)
    dim = int(feature_model.outputs[0].shape[-1])
    budget, nbytes = memory_budget(), total * dim * 4
    streamed = nbytes > budget
    emit(PhaseStarted(phase=PHASE_CACHING, epochs=0, steps_per_epoch=total))
    drain_skips()
    if streamed:
        log(f"the features of {total} images ({nbytes / 2**20:,.0f} MB) exceed the memory budget "
            f"({budget / 2**20:,.0f} MB): training the classifier streams them from the cache")
        found: dict[str, Any] = _KeysOnly.fromkeys(cache.locate([k for _, _, k in entries]))
    else:
        found = cache.lookup([k for _, _, k in entries])
    result = CachedSplits(hits=len(found), streamed=streamed, nbytes=nbytes, budget=budget)
    hits = result.hits
    emit(CacheProgress(done=hits, total=total, hits=hits))
    misses = [e for e in entries if e[2] not in found]
    if misses and engine is not None:
        from tlstudio.core.train.engines import fill_from_engine

        s0, i0, _ = misses[0]  # the dataset folder: an absolute path less its relative part
        root = files[s0].abs_paths[i0][: -len(files[s0].rel_paths[i0])] or "."
        result.computed = fill_from_engine(
            engine, cache, [(files[s].rel_paths[i], k) for s, i, k in misses], found, feature_model=feature_model,
            root=root, size=size, resize_policy=config.resize_policy, batch_size=max(32, int(config.batch_size)), total=total,
            hits=hits, skip_log=skip_log, emit=emit, log=log, cancel=cancel, events_per_second=PROGRESS_EVENTS_PER_SECOND,
        )
        misses = []
    if misses:
        log(f"computing features of {len(misses)} image(s) with the frozen base ({hits} from the cache)")
        spec = tf.TensorSpec((None, size, size, 3), tf.float32)
        fn = tf.function(lambda x: feature_model(x, training=False), input_signature=[spec])
        limit = RateLimit(PROGRESS_EVENTS_PER_SECOND)
        pending_keys: list[str] = []
        pending: list[np.ndarray] = []
        done = hits
        pos = 0
        batches = decoded_batches(
            [files[s].abs_paths[i] for s, i, _ in misses], max(32, int(config.batch_size)), size,
            config.resize_policy, prefetch,
        )
        try:
            for batch in batches:
                if cancel.is_set():
                    raise Cancelled("training was cancelled while computing features")
                ok = [image is not None for image, _ in batch]
                for (s, i, _), (image, reason) in zip(misses[pos : pos + len(batch)], batch, strict=True):
                    if image is None:
                        skip_log.add(files[s].rel_paths[i], reason or "cannot be read")
                images = [image for image, _ in batch if image is not None]
                feats = compute_features(fn, np.stack(images).astype(np.float32)) if images else None
                row = 0
                for j, good in enumerate(ok):
                    if good:
                        key = misses[pos + j][2]
                        pending_keys.append(key)
                        pending.append(feats[row])  # type: ignore[index]
                        found[key] = pending[-1]
                        row += 1
                pos += len(batch)
                done += len(batch)
                result.computed += len(images)
                if limit(force=done >= total):
                    emit(CacheProgress(done=done, total=total, hits=hits))
                drain_skips()
                if len(pending_keys) >= CACHE_FLUSH:
                    cache.store(pending_keys, np.stack(pending))
                    pending_keys, pending = [], []
        finally:
            batches.close()
            if pending_keys:
                cache.store(pending_keys, np.stack(pending))
    if streamed and cache.warning is not None:
        raise TlstudioError(f"the feature cache in {cache.folder} cannot be written, and this run's features exceed "
                            "the memory budget so they are read back from it (free space there, or raise "
                            "TLSTUDIO_STREAM_ABOVE_BYTES)")
    for name in splits:
        keys, labels, kept = [], [], []
        fs = files[name]
        for s, i, k in entries:
            if s == name and k in found:
                keys.append(k)
                labels.append(fs.labels[i])
                kept.append(i)
        y = np.asarray(labels, dtype=np.int32)
        if not keys:
            x: Any = np.zeros((0, dim), np.float32)
        elif streamed:
            x = StreamedFeatures(rows_from_cache(cache, keys, y))
        else:
            x = np.stack([found[k] for k in keys]).astype(np.float32)
        result.arrays[name] = (x, y, kept)
    return result
