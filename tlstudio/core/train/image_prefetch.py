"""Decoding images for the feature cache on a second core, from the first second of a run.

Importing TensorFlow and building the model take several seconds on one core, and decoding the
photos (Pillow) is about half of the caching work. So a frozen run starts a thread that decodes
the images the cache does not hold yet while the main thread imports TensorFlow; the caching
phase then takes them in order, and decodes the next batch itself, on that thread, while the base
runs on the current one. Pillow releases the GIL while it decodes and resizes, so both cores work.

Decoded images wait in a bounded buffer (:data:`BUFFER_IMAGES`), so memory stays small whatever
the dataset's size.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from tlstudio.core.data import imageio
from tlstudio.core.data.pipeline import decode_file

#: Decoded images waiting for the base, at most (224 x 224 x 3 bytes each: about 150 MB).
BUFFER_IMAGES = 1024

Decoded = tuple[np.ndarray | None, str | None]  # (uint8 image, None) or (None, why it was skipped)


def decode(abs_path: str, size: int, policy: str) -> Decoded:
    """One image as uint8 ``(size, size, 3)``, or None and a one-line reason (as the input pipeline says it)."""
    try:
        return decode_file(abs_path, size, policy), None
    except Exception as exc:  # any failure of one file skips that file, never the run
        reason = str(exc) if isinstance(exc, imageio.ImageError) else imageio.describe_error(exc)
        prefix = f"{os.path.basename(abs_path)}: "
        return None, reason[len(prefix) :] if reason.startswith(prefix) else reason


class ImagePrefetch:
    """Decodes ``paths`` in order on a thread; :meth:`take` hands each one over, once, in that order.

    Parameters
    ----------
    paths
        Absolute paths, in the order they will be taken.
    size, policy
        The model's input size and the resize policy.
    """

    def __init__(self, paths: Sequence[str], size: int, policy: str) -> None:
        self.size, self.policy = int(size), policy
        self.order = {p: i for i, p in enumerate(paths)}
        self._paths = list(paths)
        self._queue: queue.Queue[tuple[str, Decoded]] = queue.Queue(maxsize=BUFFER_IMAGES)
        self._stop = threading.Event()
        self._next = 0  # position of the next item the queue will give
        self._thread = threading.Thread(target=self._run, name="tlstudio-decode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for path in self._paths:
            if self._stop.is_set():
                return
            item = (path, decode(path, self.size, self.policy))
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def take(self, path: str) -> Decoded:
        """The decoded image of ``path`` (decoded here when it was not planned or already passed)."""
        at = self.order.get(path)
        if at is None or at < self._next:
            return decode(path, self.size, self.policy)
        while True:  # items planned before ``path`` but not needed (their features were cached) are dropped
            got, result = self._queue.get()
            self._next += 1
            if got == path:
                return result

    def stop(self) -> None:
        """Stop decoding (what was decoded is dropped)."""
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


def decoded_batches(
    paths: Sequence[str], batch_size: int, size: int, policy: str, prefetch: ImagePrefetch | None
) -> Generator[list[Decoded], None, None]:
    """Batches of decoded images of ``paths``, in order; the next batch is decoded on a thread
    while the caller works on the current one."""
    out: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for start in range(0, len(paths), batch_size):
                chunk = paths[start : start + batch_size]
                if not put([prefetch.take(p) if prefetch is not None else decode(p, size, policy) for p in chunk]):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(exc)
            return
        put(done)

    thread = threading.Thread(target=produce, name="tlstudio-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        try:
            while True:
                out.get_nowait()
        except queue.Empty:
            pass
        thread.join(timeout=5)
