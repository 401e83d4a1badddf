"""The input pipeline: tf.data over the scanned file list, decoded by tlstudio.core.data.imageio.

Each element is ``(image float32 (S, S, 3) raw RGB 0-255, label int32, weight float32)``. Files are
decoded with Pillow in parallel (``tf.py_function`` under ``num_parallel_calls=AUTOTUNE``; Pillow
releases the GIL while decoding). A file that fails to decode in the middle of an epoch does not
stop it: it becomes a black image of weight 0 (so it neither counts in the loss nor in the
metrics), and is recorded once in a :class:`SkipLog`. Keeping the element count fixed keeps the
number of batches per epoch known in advance, which the progress bar and Keras both rely on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tlstudio.core.data import imageio
from tlstudio.core.data.augment import make_augmenter as make_augmenter  # re-exported for callers


@dataclass(frozen=True)
class Skip:
    path: str  # relative to the dataset root
    reason: str


class SkipLog:
    """Files that could not be decoded, recorded once each, safe to fill from decoding threads."""

    def __init__(self, initial: Sequence[Skip] = ()) -> None:
        self._lock = threading.Lock()
        self._all: list[Skip] = list(initial)
        self._known = {s.path for s in self._all}
        self._new: list[Skip] = []

    def add(self, path: str, reason: str) -> bool:
        with self._lock:
            if path in self._known:
                return False
            self._known.add(path)
            skip = Skip(path, reason)
            self._all.append(skip)
            self._new.append(skip)
            return True

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._known

    def drain(self) -> list[Skip]:
        """The skips recorded since the last call (for emitting events from the training thread)."""
        with self._lock:
            new, self._new = self._new, []
            return new

    def all(self) -> list[Skip]:
        with self._lock:
            return list(self._all)

    def to_json(self) -> list[dict[str, str]]:
        return [{"path": s.path, "reason": s.reason} for s in self.all()]


@dataclass
class FileSet:
    """The files of one split: absolute paths, paths relative to the dataset root, labels."""

    abs_paths: list[str]
    rel_paths: list[str]
    labels: np.ndarray  # int32 (n,)

    def __len__(self) -> int:
        return len(self.abs_paths)

    def subset(self, idx: Sequence[int]) -> FileSet:
        return FileSet(
            [self.abs_paths[i] for i in idx], [self.rel_paths[i] for i in idx], self.labels[np.asarray(idx, int)]
        )


def decode_file(abs_path: str, size: int, policy: str) -> np.ndarray:
    """One image as uint8 ``(size, size, 3)``; raises :class:`imageio.ImageError` when unusable."""
    return imageio.load_rgb(abs_path, (size, size), policy)


def make_dataset(
    files: FileSet,
    *,
    image_size: int,
    resize_policy: str = "stretch",
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    sample_weights: np.ndarray | None = None,
    skip_log: SkipLog | None = None,
    augment: Any = None,
) -> Any:
    """A batched, prefetched ``tf.data.Dataset`` of ``(images, labels, weights)``.

    Parameters
    ----------
    files
        The split's files.
    image_size
        Side of the square model input.
    resize_policy
        "stretch", "crop" or "pad" (see :func:`tlstudio.core.data.imageio.resize_image`).
    batch_size
        Images per batch (the last batch may be smaller).
    shuffle
        Reshuffle the order at each epoch (reproducibly from ``seed``).
    seed
        Shuffling seed.
    sample_weights
        Optional weight per file (class weights); undecodable files get 0 whatever it says.
    skip_log
        Where undecodable files are recorded; a file already in it is not decoded again.
    augment
        Optional Keras layer applied to image batches with ``training=True``.

    Returns
    -------
    tf.data.Dataset
        Elements ``(float32 (b, S, S, 3), int32 (b,), float32 (b,))``; its cardinality is known.
    """
    import tensorflow as tf

    n = len(files)
    skip_log = skip_log if skip_log is not None else SkipLog()
    abs_paths = list(files.abs_paths)
    rel_paths = list(files.rel_paths)
    labels = np.asarray(files.labels, dtype=np.int32)
    weights = (
        np.ones(n, dtype=np.float32) if sample_weights is None else np.asarray(sample_weights, dtype=np.float32)
    )
    blank = np.zeros((image_size, image_size, 3), dtype=np.uint8)

    def load(index: Any) -> tuple[np.ndarray, np.float32]:
        i = int(index)
        if rel_paths[i] in skip_log:
            return blank, np.float32(0.0)
        try:
            return decode_file(abs_paths[i], image_size, resize_policy), np.float32(1.0)
        except Exception as exc:  # any failure of one file skips that file, never the epoch
            reason = str(exc) if isinstance(exc, imageio.ImageError) else imageio.describe_error(exc)
            prefix = f"{os.path.basename(abs_paths[i])}: "
            skip_log.add(rel_paths[i], reason[len(prefix) :] if reason.startswith(prefix) else reason)
            return blank, np.float32(0.0)

    def tf_load(index: Any) -> tuple[Any, Any, Any]:
        image, ok = tf.py_function(load, [index], [tf.uint8, tf.float32])
        image.set_shape((image_size, image_size, 3))
        ok.set_shape(())
        return image, tf.gather(labels, index), tf.gather(weights, index) * ok

    ds = tf.data.Dataset.range(n)
    if shuffle and n > 1:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)

    def to_float(images: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        return tf.cast(images, tf.float32), y, w

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:

        def do_augment(images: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
            return augment(images, training=True), y, w

        ds = ds.map(do_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
