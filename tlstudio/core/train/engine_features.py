"""Filling the embedding cache from a features engine: the base runs elsewhere, this process keeps the cache.

A features engine (:class:`~tlstudio.core.train.feature_cache.FeatureEngine`; ``tlstudio.cluster``
has one for Ray) computes the features of the images a run misses and yields them batch by batch.
This process stores them in the cache's own shards, as a local fill does, and emits the same
cache progress, so a later run, local or not, finds them there. Core never imports the engine's
machinery: the caller hands the engine in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tlstudio.core.errors import Cancelled
from tlstudio.core.events import CacheProgress, Event, FileSkipped, RateLimit

#: Features received but not yet written are flushed to the cache every so many images.
CACHE_FLUSH = 2048


def fill_from_engine(
    engine: Any,
    cache: Any,
    items: Sequence[tuple[str, str]],
    found: dict[str, np.ndarray],
    *,
    feature_model: Any,
    root: str,
    size: int,
    resize_policy: str,
    batch_size: int,
    total: int,
    hits: int,
    skip_log: Any,
    emit: Callable[[Event], None],
    log: Callable[..., None],
    cancel: threading.Event,
    events_per_second: float = 10.0,
) -> int:
    """Compute the features of ``items`` on ``engine``, store them in ``cache`` and ``found``.

    Parameters
    ----------
    engine
        The features engine (``name`` and ``extract``).
    cache
        The run's :class:`~tlstudio.core.train.feature_cache.FeatureCache`.
    items
        ``(dataset-relative path, file key)`` of the images the cache misses.
    found
        Features by file key; the new ones are added.
    feature_model, root, size, resize_policy, batch_size
        What the engine runs, on which files, at which input size and batch size.
    total, hits
        Images the run needs and how many the cache already had (for CacheProgress).
    skip_log, emit, log, cancel
        The run's skip log, events, log lines and cancel request.

    Returns
    -------
    int
        How many images the engine computed.

    Raises
    ------
    Cancelled
        When ``cancel`` is set before the engine is done (what arrived is kept in the cache).
    """
    log(f"computing features of {len(items)} image(s) on {engine.name} ({hits} from the cache)")
    limit = RateLimit(events_per_second)
    pending_keys: list[str] = []
    pending: list[np.ndarray] = []
    done, computed = hits, 0
    stream = engine.extract(
        feature_model, root, items, image_size=size, resize_policy=resize_policy, batch_size=batch_size,
        cancel=cancel, log=log,
    )
    try:
        for keys, feats, skipped in stream:
            for rel, reason in skipped:
                skip_log.add(rel, reason)
            for key, row in zip(keys, feats, strict=True):
                found[key] = row
            pending_keys.extend(keys)
            pending.extend(feats)
            done += len(keys) + len(skipped)
            computed += len(keys)
            if limit(force=done >= total):
                emit(CacheProgress(done=done, total=total, hits=hits))
            for s in skip_log.drain():
                emit(FileSkipped(path=s.path, reason=s.reason))
            if len(pending_keys) >= CACHE_FLUSH:
                cache.store(pending_keys, np.stack(pending))
                pending_keys, pending = [], []
        if cancel.is_set():
            raise Cancelled("training was cancelled while computing features")
    finally:
        stream.close()
        if pending_keys:
            cache.store(pending_keys, np.stack(pending))
    return computed
