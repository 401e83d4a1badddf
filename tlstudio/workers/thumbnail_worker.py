"""Make image thumbnails on a worker thread, newest request first, cached on disk.

The worker serves requests until it is cancelled. The GUI asks only for the thumbnails a view is
about to paint; when the user scrolls quickly the newest requests are served first and the oldest
pending ones are dropped, so the visible ones appear soon even in a folder of 10,000 images.
Results travel as raw RGBA bytes: the worker never creates a QImage or a widget.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import Signal

from tlstudio.core import paths
from tlstudio.workers.base import Worker

MAX_PENDING = 400


def thumbnail_cache_dir() -> Path:
    return paths.cache_dir() / "thumbnails"


def cache_key(path: str, size: int) -> str | None:
    """A file name for the cached thumbnail of ``path``: changes when the file changes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    text = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{size}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


class ThumbnailWorker(Worker):
    """Serves :meth:`request` calls until cancelled.

    Signals
    -------
    thumbnail_ready(key, (rgba_bytes, width, height))
    thumbnail_failed(key, reason)
    """

    thumbnail_ready = Signal(str, object)
    thumbnail_failed = Signal(str, str)

    def __init__(self, size: int = 96, disk_cache: bool = True) -> None:
        super().__init__()
        self.size = int(size)
        self.disk_cache = disk_cache
        self._pending: OrderedDict[str, str] = OrderedDict()  # key -> path, newest last
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def request(self, key: str, path: str) -> None:
        """Ask for the thumbnail of ``path`` (any thread). A repeated request moves it to the front."""
        with self._lock:
            self._pending.pop(key, None)
            self._pending[key] = path
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        self._wake.set()

    def forget_pending(self) -> None:
        """Drop every request not yet served (e.g. the folder changed)."""
        with self._lock:
            self._pending.clear()

    def request_cancel(self) -> None:
        super().request_cancel()
        self._wake.set()

    def _next(self) -> tuple[str, str] | None:
        with self._lock:
            if self._pending:
                return self._pending.popitem(last=True)
            self._wake.clear()
            return None

    def work(self) -> None:
        while not self.cancel_event.is_set():
            item = self._next()
            if item is None:
                self._wake.wait(0.5)
                continue
            key, path = item
            try:
                rgba, w, h = self._make(path)
            except Exception as exc:  # an unreadable image: show the reason, never stop serving
                from tlstudio.core.data.imageio import describe_error

                try:
                    reason = describe_error(exc)
                except Exception:
                    reason = str(exc)
                self.thumbnail_failed.emit(key, reason)
                continue
            self.thumbnail_ready.emit(key, (rgba, w, h))
        return None

    def _make(self, path: str) -> tuple[bytes, int, int]:
        from tlstudio.core.data.imageio import ImageError, make_thumbnail, open_image

        cached = None
        if self.disk_cache:
            name = cache_key(path, self.size)
            if name is not None:
                cached = thumbnail_cache_dir() / name[:2] / f"{name}.png"
                if cached.is_file():
                    try:
                        img = open_image(cached).convert("RGBA")
                        return img.tobytes(), img.width, img.height
                    except (OSError, ImageError):
                        pass  # a damaged cache entry: make it again
        img = make_thumbnail(path, self.size).convert("RGB")
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".{threading.get_ident()}.tmp")
                img.save(tmp, format="PNG", compress_level=1)
                os.replace(tmp, cached)
            except OSError:
                pass  # a read-only cache only costs time
        img = img.convert("RGBA")
        return img.tobytes(), img.width, img.height
