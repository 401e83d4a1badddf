"""Opening input files safely: only regular files are read, and nothing a user points at can block.

A named pipe (FIFO) blocks the reader until someone writes into it; a device such as ``/dev/zero``
or ``/dev/urandom`` never ends; a socket cannot be opened at all. Any of them can sit in a dataset
folder or be given as a model file, so every reader of a user's file asks here first.

The check is made on the opened descriptor (``fstat``), not on the name, so a file swapped between
the check and the read is still caught; the open itself uses ``O_NONBLOCK`` where the system has
it, which makes opening a FIFO return at once instead of waiting for a writer.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from tlstudio.core.errors import TlstudioError

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class NotRegularFileError(TlstudioError, OSError):
    """A path names a special file (FIFO, device, socket) or a folder where a file was expected.

    It is an :class:`OSError` too, so code that already treats unreadable files as ``OSError``
    skips these the same way. ``reason`` is the "why" without the path.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.reason = reason

    def __str__(self) -> str:  # OSError's own __str__ would show the args tuple differently
        return str(self.args[0])


class FileTooLargeError(TlstudioError, ValueError):
    """A file is larger than what tlstudio accepts for its kind."""


def special_file_kind(mode: int) -> str | None:
    """What a ``st_mode`` is when it is not a regular file (``"a named pipe (FIFO)"``, ...); None for a file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular_reason(mode: int) -> str | None:
    """The reason a scan or a loader gives for skipping a special file; None for a regular file."""
    kind = special_file_kind(mode)
    return None if kind is None else f"{kind}, not a regular file (not read)"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of ``path``, raising :class:`NotRegularFileError` unless it is a regular file.

    Raises
    ------
    NotRegularFileError
        ``path`` is a FIFO, device, socket or folder.
    OSError
        ``path`` cannot be looked at (missing, permission denied, ...).
    """
    st = os.stat(path)
    reason = not_regular_reason(st.st_mode)
    if reason is not None:
        raise NotRegularFileError(path, reason)
    return st


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for binary reading, refusing anything else without blocking.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    BinaryIO
        The open file (the caller closes it, e.g. ``with open_regular(p) as fh``).

    Raises
    ------
    NotRegularFileError
        ``path`` is a FIFO, device, socket or folder.
    OSError
        ``path`` cannot be opened.
    """
    if not _NONBLOCK:
        # Without O_NONBLOCK (Windows) opening a pipe would wait: look at the name first.
        check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY)
    except IsADirectoryError:
        raise NotRegularFileError(path, "a folder, not a regular file (not read)") from None
    try:
        reason = not_regular_reason(os.fstat(fd).st_mode)
        if reason is not None:
            raise NotRegularFileError(path, reason)
        if _NONBLOCK:
            # Regular files ignore O_NONBLOCK, but clear it so nothing downstream is surprised.
            import fcntl

            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> bytes:
    """The content of a regular file, refusing special files and files over ``max_bytes``.

    Raises
    ------
    NotRegularFileError
        ``path`` is not a regular file.
    FileTooLargeError
        The file holds more than ``max_bytes`` bytes.
    OSError
        The file cannot be read.
    """
    with open_regular(path) as fh:
        if max_bytes is not None:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise FileTooLargeError(
                    f"{os.fspath(path)}: {size:,} bytes is over the limit of {max_bytes:,} bytes"
                )
            data = fh.read(max_bytes + 1)  # the file may grow after fstat
            if len(data) > max_bytes:
                raise FileTooLargeError(f"{os.fspath(path)}: over the limit of {max_bytes:,} bytes")
            return data
        return fh.read()
