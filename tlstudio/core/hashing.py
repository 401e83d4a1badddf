"""Digests of file contents: the one loop that reads a file in blocks and hashes it."""

from __future__ import annotations

import hashlib
import os
import threading

_BLOCK = 1 << 20


def file_digest(
    path: str | os.PathLike[str],
    algorithm: str = "sha256",
    *,
    limit: int | None = None,
    cancel: threading.Event | None = None,
) -> str | None:
    """Hex digest of a file's content, or of its first ``limit`` bytes.

    Parameters
    ----------
    path
        The file.
    algorithm
        A :func:`hashlib.new` name; ``"blake2b"`` gives a 20-byte digest (fast, enough to tell
        files apart).
    limit
        Hash only this many bytes from the start (None: the whole file).
    cancel
        When set while reading, the function stops and returns None.

    Returns
    -------
    str or None
        The hex digest; None when cancelled.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=20) if algorithm == "blake2b" else hashlib.new(algorithm)
    remaining = -1 if limit is None else int(limit)
    with open(path, "rb") as fh:
        while remaining != 0:
            chunk = fh.read(_BLOCK if remaining < 0 else min(_BLOCK, remaining))
            if not chunk:
                break
            if cancel is not None and cancel.is_set():
                return None
            digest.update(chunk)
            if remaining > 0:
                remaining -= len(chunk)
    return digest.hexdigest()
