"""Checking a zip archive (``.keras``, ``.zip``) before anything in it is unpacked or read.

A model archive comes from anywhere: a download, a colleague, a web page. Two kinds of hostile
archive are refused up front, from the central directory alone (nothing is decompressed):

* a *zip bomb*: a small file whose members unpack to gigabytes. The sizes the directory declares
  are summed; Python's :mod:`zipfile` never yields more bytes than a member declares (a member
  that holds more fails its CRC check), so the declared total bounds what unpacking can write.
* *path tricks*: member names that are absolute, climb out with ``..``, carry a drive letter or
  control characters, are links, or appear twice (which one wins depends on the tool).

Callers: the ``.zip`` unpacker and the ``.keras`` loader (``core/models/open_model.py``) call
:func:`check_archive` first; :func:`extract_members` unpacks checked members into a folder that
appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tlstudio.core.errors import TlstudioError
from tlstudio.core.safe_files import NotRegularFileError, check_regular, open_regular

#: Largest total unpacked size accepted (the biggest catalogue model saves to well under 1 GB).
MAX_UNPACKED_BYTES = 4 * 1024**3
#: Most members accepted (a ``.keras`` file holds 3; a Teachable Machine zip 2).
MAX_MEMBERS = 10_000
#: A member may unpack to at most this many times its packed size (once it is over 1 MB):
#: real model weights compress by less than 10x, a bomb by 1000x and more.
MAX_RATIO = 200
_RATIO_FLOOR = 1024 * 1024


class ArchiveError(TlstudioError):
    """An archive is damaged, too large once unpacked, or names a member unsafely.

    ``unsafe`` is True when the archive was refused as hostile (a bomb, an unsafe member name, a
    link) rather than found unreadable, so callers can word the two differently.
    """

    def __init__(self, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


@dataclass(frozen=True)
class ArchiveInfo:
    """What :func:`check_archive` found: the members (files only) and their total unpacked size."""

    members: tuple[zipfile.ZipInfo, ...]
    unpacked_bytes: int


def _name_problem(name: str) -> str | None:
    if not name or "\x00" in name:
        return "an empty or NUL-carrying name"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "control characters in its name"
    if "\\" in name:
        return "a backslash in its name (a Windows path)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in its path (it would be written outside the folder)"
    return None


def _is_link(info: zipfile.ZipInfo) -> bool:
    # Unix tools store the file mode in the high 16 bits of external_attr.
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(
    path: str | os.PathLike[str],
    *,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> ArchiveInfo:
    """Check a zip archive's directory before anything is unpacked.

    Parameters
    ----------
    path
        The archive (``.keras`` or ``.zip``); only a regular file is opened.
    max_unpacked_bytes
        Refuse archives whose members add up to more than this once unpacked.
    max_members
        Refuse archives with more members than this.
    max_ratio
        Refuse a member (over 1 MB unpacked) that unpacks to more than this many times its size.

    Returns
    -------
    ArchiveInfo
        The file members (folders left out) and their total unpacked size.

    Raises
    ------
    ArchiveError
        Not a regular file, not a zip archive, damaged, too large once unpacked, too many members,
        an unsafe member name, a link, or a name used twice. The message names the archive and
        says why, in one line.
    """
    label = Path(path).name
    try:
        check_regular(path)
        with open_regular(path) as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
    except NotRegularFileError as exc:
        raise ArchiveError(f"{label}: {exc.reason}") from None
    except FileNotFoundError:
        raise ArchiveError(f"{label}: file not found") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{label} is damaged or not a zip archive ({exc})") from None
    if len(infos) > max_members:
        raise ArchiveError(
            f"{label} holds {len(infos):,} members, over the limit of {max_members:,}", unsafe=True
        )
    seen: set[str] = set()
    total = 0
    files = []
    for info in infos:
        name = info.filename
        problem = _name_problem(name)
        if problem is None and _is_link(info):
            problem = "a link (it could point anywhere on this computer)"
        if problem is None and name.rstrip("/").casefold() in seen:
            problem = "a name used twice"
        if problem is not None:
            raise ArchiveError(f"{label} is refused: its member {name!r} has {problem}", unsafe=True)
        seen.add(name.rstrip("/").casefold())
        if info.is_dir():
            continue
        if info.file_size > _RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
            raise ArchiveError(
                f"{label} is refused: {name!r} would unpack from {info.compress_size:,} to "
                f"{info.file_size:,} bytes (a zip bomb?)",
                unsafe=True,
            )
        total += info.file_size
        if total > max_unpacked_bytes:
            raise ArchiveError(
                f"{label} is refused: it would unpack to more than {max_unpacked_bytes:,} bytes",
                unsafe=True,
            )
        files.append(info)
    return ArchiveInfo(tuple(files), total)


def extract_members(
    path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    names: Iterable[str] | None = None,
    **limits: float,
) -> Path:
    """Unpack checked members of an archive into ``target``, which appears whole or not at all.

    The archive is checked with :func:`check_archive` (``limits`` are passed on) before anything is
    written; members are written under their own (checked) relative names into a temporary folder
    beside ``target`` that replaces it in one rename. On any error nothing is left behind.

    Parameters
    ----------
    path
        The archive.
    target
        The folder to create (replaced if it exists).
    names
        Members to take (default: all files).

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    ArchiveError
        See :func:`check_archive`; also a requested member that the archive does not hold.
    """
    from tlstudio.core.atomic import atomic_path

    info = check_archive(path, **limits)  # type: ignore[arg-type]
    by_name = {m.filename: m for m in info.members}
    wanted = list(by_name) if names is None else list(names)
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise ArchiveError(f"{Path(path).name} holds no {', '.join(missing)}")
    target = Path(target)
    try:
        with atomic_path(target, directory=True) as tmp, open_regular(path) as fh, zipfile.ZipFile(fh) as zf:
            for name in wanted:
                out = tmp.joinpath(*PurePosixPath(name).parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(by_name[name]) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"{Path(path).name} is damaged ({exc})") from None
    return target
