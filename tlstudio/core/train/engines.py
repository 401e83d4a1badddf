"""Work a run hands to engines elsewhere (a Ray cluster): computing features and fine-tuning.

A run takes one :class:`Engines`: its ``features`` engine (a
:class:`~tlstudio.core.train.feature_cache.FeatureEngine`) computes the features the cache misses,
and its ``fine_tuner`` trains the classifier while driving the run's own Keras callbacks. This
process keeps everything else: the cache (it stores what the engine yields, in the cache's own
shards, so a later run, local or not, finds them), the events and the run folder. Core never
imports the engines' machinery (``tlstudio.cluster`` builds them; core never imports Ray).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tlstudio.core.errors import Cancelled
from tlstudio.core.events import CacheProgress, Event, FileSkipped, RateLimit


@dataclass(frozen=True)
class Engines:
    """Where a run's heavy work goes; None in a field means this process."""

    features: Any = None  # FeatureEngine: name + extract(...)
    fine_tuner: Any = None  # name + fit(model, ..., callbacks=..., cancel=...)


def features_record(engines: Engines | None, cached: Any) -> dict[str, Any]:
    """``run.json``'s ``"features"``: which engine computed how many features, how many were cached."""
    engine = engines.features if engines is not None else None
    return {
        "engine": str(getattr(engine, "name", "local")) if engine is not None else "local",
        "computed": int(cached.computed) if cached is not None else 0,
        "from_cache": int(cached.hits) if cached is not None else 0,
    }


def fit_elsewhere(fine_tuner: Any, run: Any, config: Any, *, lr: float, steps: int) -> Callable[..., None]:
    """A stand-in for ``model.fit`` that fine-tunes the run's model on ``fine_tuner``.

    ``run`` is the trainer: its ``model``, ``data`` (files, classes, root), ``size``,
    ``sample_weight_per_class``, ``cancel`` and ``skip_log`` are used. The stand-in takes
    ``fit``'s arguments; the tf.data datasets are ignored (the fine-tuner's workers read the files
    themselves). The model holds the trained weights when it returns.
    """
    model, data, cancel, skip_log = run.model, run.data, run.cancel, run.skip_log
    size, sample_weights = run.size, run.sample_weight_per_class
    tr, va = data.files["train"], data.files["val"]

    def fit(_train: Any, *, epochs: int, initial_epoch: int, callbacks: list[Any], **_ignored: Any) -> None:
        fine_tuner.fit(
            model, root=str(data.root), train=(tr.rel_paths, tr.labels, sample_weights[tr.labels]),
            val=(va.rel_paths, va.labels), num_classes=len(data.classes), epochs=int(epochs),
            initial_epoch=int(initial_epoch), steps=int(steps), batch_size=int(config.batch_size), lr=float(lr),
            optimizer=config.optimizer, label_smoothing=float(config.label_smoothing), seed=int(config.seed) + 1,
            image_size=int(size), resize_policy=config.resize_policy, callbacks=callbacks, cancel=cancel,
            skip_log=skip_log,
        )

    return fit


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
