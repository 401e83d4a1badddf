"""Scan a dataset folder: which files are usable images, of which class and split, and what is wrong.

Two layouts are recognised (folder names compared case-insensitively)::

    DATA/<class>/...                          flat: the split is made later
    DATA/{train,val|validation,test}/<class>/...   pre-split: "validation" counts as "val"

Files in nested sub-folders of a class folder belong to that class. The scan reads image headers
(size, format, EXIF orientation) and checks cheaply that the file is complete (the JPEG end marker,
the PNG ``IEND`` chunk, the GIF trailer, the WebP RIFF size); only files that fail that check, and
formats without such a marker, are fully decoded. Files that would only fail at a full decode are
caught later by :func:`tlstudio.core.data.imageio.open_image`, which raises :class:`ImageError`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from tlstudio.core.data.imageio import (
    DEFAULT_MAX_PIXELS,
    describe_error,
    explain_failure,
    pixel_limit_message,
)
from tlstudio.core.errors import Cancelled, TlstudioError

__all__ = [
    "DatasetError",
    "DatasetScan",
    "FileRecord",
    "scan_dataset",
    "SPLITS",
    "IMAGE_EXTENSIONS",
]

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "test": "test"}

#: Extensions of files that are looked at as images (compared lower-case).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".ico",
        ".avif",
    }
)
#: Image formats Pillow cannot read without extra plug-ins: skipped with a reason that says so.
UNSUPPORTED_IMAGE_EXTENSIONS = {
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".cr2": "camera RAW",
    ".cr3": "camera RAW",
    ".nef": "camera RAW",
    ".arw": "camera RAW",
    ".dng": "camera RAW",
    ".orf": "camera RAW",
    ".rw2": "camera RAW",
    ".raf": "camera RAW",
    ".svg": "SVG",
    ".psd": "Photoshop",
    ".jxl": "JPEG XL",
}
#: Operating-system clutter, ignored (and counted).
OS_CLUTTER = frozenset(
    {".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "ehthumbs_vista.db", "icon\r"}
)

MIN_IMAGES_PER_CLASS = 5
IMBALANCE_RATIO = 5.0
MIN_SIDE = 32
#: Start of the warning about byte-identical files in different splits.
LEAKAGE_PREFIX = "DATA LEAKAGE:"

STATUS_USABLE = "usable"
STATUS_SKIPPED = "skipped"
STATUS_IGNORED = "ignored"

REASON_EMPTY = "empty file (0 bytes)"
REASON_TRUNCATED = "truncated file (the image data ends early)"
REASON_HIDDEN = "hidden file"
REASON_HIDDEN_FOLDER = "inside a hidden folder"
REASON_NO_CLASS = "not inside a class folder"
REASON_OUTSIDE_SPLITS = "outside the train/val/test folders"
REASON_NOT_IMAGE_NO_EXT = "not an image file (no extension)"
REASON_CLUTTER = "system clutter (.DS_Store, Thumbs.db, desktop.ini, ._* files)"

_TAIL_BYTES = 4096
_HASH_CHUNK = 1 << 20
_CHUNK = 32  # files per thread-pool task
_PREFIX_BYTES = 64 * 1024  # read first when looking for duplicates

ProgressFn = Callable[[int, int], Any]


class DatasetError(TlstudioError):
    """The dataset folder itself cannot be scanned (missing, not a folder, unreadable)."""


@dataclass(frozen=True)
class FileRecord:
    """One file seen under the dataset root."""

    path: str  #: POSIX path relative to the dataset root
    class_name: str | None
    split: str | None  #: "train" | "val" | "test", or None when the folder is not pre-split
    status: str  #: "usable" | "skipped" | "ignored"
    reason: str | None  #: why a file is skipped or ignored, for people
    size: int
    mtime_ns: int
    width: int | None  #: as displayed, EXIF orientation taken into account
    height: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "class": self.class_name,
            "split": self.split,
            "status": self.status,
            "reason": self.reason,
            "size": self.size,
            "width": self.width,
            "height": self.height,
        }


@dataclass
class DatasetScan:
    """The result of :func:`scan_dataset`."""

    root: Path
    presplit: bool
    classes: list[str]  #: sorted names of the folders that hold at least one usable image
    files: list[FileRecord]  #: every file seen, sorted by path
    warnings: list[str]
    #: groups (2 or more) of byte-identical usable files, as relative paths
    duplicates: list[list[str]] = field(default_factory=list)

    def usable(self, split: str | None = None) -> list[FileRecord]:
        """Usable image files of a class, optionally of one split only."""
        return [
            f
            for f in self.files
            if f.status == STATUS_USABLE and f.class_name is not None and (split is None or f.split == split)
        ]

    def skipped(self) -> list[FileRecord]:
        """Files that look like images but cannot be used (each with a reason)."""
        return [f for f in self.files if f.status == STATUS_SKIPPED]

    def ignored(self) -> list[FileRecord]:
        """Files that are not images at all (clutter, hidden files, other documents)."""
        return [f for f in self.files if f.status == STATUS_IGNORED]

    def splits(self) -> list[str]:
        """The splits present in a pre-split folder, in train/val/test order (empty when not pre-split)."""
        present = {f.split for f in self.files if f.split is not None}
        return [s for s in SPLITS if s in present]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Usable files per class (every class listed, zero included)."""
        counts = dict.fromkeys(self.classes, 0)
        for f in self.usable(split):
            if f.class_name in counts:
                counts[f.class_name] += 1
        return counts

    def reasons(self, status: str = STATUS_SKIPPED) -> dict[str, list[str]]:
        """Paths grouped by reason for the files of one status."""
        grouped: dict[str, list[str]] = defaultdict(list)
        for f in self.files:
            if f.status == status:
                grouped[f.reason or ""].append(f.path)
        return dict(sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def to_json(self) -> dict[str, Any]:
        """The JSON object printed by ``tlstudio scan DATA --json``."""
        counts = {s: 0 for s in (STATUS_USABLE, STATUS_SKIPPED, STATUS_IGNORED)}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        return {
            "root": str(self.root),
            "presplit": self.presplit,
            "classes": self.class_counts(),
            "splits": {s: self.class_counts(s) for s in self.splits()} if self.presplit else None,
            "counts": {"total": len(self.files), **counts},
            "files": [f.to_json() for f in self.files],
            "warnings": list(self.warnings),
            "duplicates": [list(g) for g in self.duplicates],
        }


# --- walking the folder -------------------------------------------------------------------------


@dataclass
class _Entry:
    abs_path: str
    rel: str
    class_name: str | None
    split: str | None
    size: int
    mtime_ns: int
    status: str | None = None  # decided without opening the file (ignored, empty, ...)
    reason: str | None = None


class _Walker:
    def __init__(self, root: Path, cancel: threading.Event | None) -> None:
        self.root = root
        self.cancel = cancel
        self.entries: list[_Entry] = []
        self.warnings: list[str] = []
        self.class_folders: list[tuple[str | None, str]] = []  # (split, class) of each class folder seen
        self.symlinks: list[str] = []
        self.unreadable: list[str] = []
        root_str = str(root)
        self._prefix = len(root_str) + (0 if root_str.endswith(os.sep) else 1)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("Scan cancelled.")

    def _rel(self, path: str) -> str:
        # every path seen is built by os.scandir from str(root), so cutting the prefix is exact
        rel = path[self._prefix :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def _scandir(self, path: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(path) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if Path(path) == self.root:
                raise DatasetError(f"cannot read folder {self.root}: {describe_error(exc)}") from exc
            self.unreadable.append(self._rel(path) + "/")
            return []

    def _add_file(
        self,
        entry: os.DirEntry[str],
        class_name: str | None,
        split: str | None,
        forced: tuple[str, str] | None = None,
    ) -> None:
        rel = self._rel(entry.path)
        try:
            st = entry.stat()  # follows a symlink to a file; a broken link raises
        except OSError as exc:
            reason = "broken link" if entry.is_symlink() else describe_error(exc)
            self.entries.append(_Entry(entry.path, rel, class_name, split, 0, 0, STATUS_SKIPPED, reason))
            return
        e = _Entry(entry.path, rel, class_name, split, st.st_size, st.st_mtime_ns)
        if forced is not None:
            e.status, e.reason = forced
        else:
            decided = _classify_name(entry.name, st.st_size)
            if decided is not None:
                e.status, e.reason = decided
        self.entries.append(e)

    def _walk_files(
        self, path: str, class_name: str | None, split: str | None, forced: tuple[str, str] | None = None
    ) -> None:
        """Every file under ``path`` (recursively) belongs to ``class_name``."""
        stack = [path]
        while stack:
            self._check_cancel()
            current = stack.pop()
            for entry in self._scandir(current):
                if entry.is_symlink() and _is_dir(entry):
                    self.symlinks.append(self._rel(entry.path))
                    continue
                if _is_dir(entry):
                    if entry.name.startswith(".") or entry.name == "__MACOSX":
                        sub_forced = forced or (STATUS_IGNORED, REASON_HIDDEN_FOLDER)
                        self._walk_files(entry.path, class_name, split, sub_forced)
                    else:
                        stack.append(entry.path)
                elif _is_file(entry) or entry.is_symlink():
                    self._add_file(entry, class_name, split, forced)

    def _walk_classes(self, path: str, split: str | None) -> None:
        """``path`` holds one folder per class; loose files there belong to no class."""
        for entry in self._scandir(path):
            self._check_cancel()
            if entry.is_symlink() and _is_dir(entry):
                self.symlinks.append(self._rel(entry.path))
            elif _is_dir(entry):
                if entry.name.startswith(".") or entry.name == "__MACOSX":
                    self._walk_files(entry.path, None, split, (STATUS_IGNORED, REASON_HIDDEN_FOLDER))
                else:
                    self.class_folders.append((split, entry.name))
                    self._walk_files(entry.path, entry.name, split)
            elif _is_file(entry) or entry.is_symlink():
                decided = _classify_name(entry.name, 0)
                if decided is not None and decided[0] == STATUS_IGNORED:
                    self._add_file(entry, None, split, decided)
                else:
                    self._add_file(entry, None, split, (STATUS_IGNORED, REASON_NO_CLASS))

    def walk(self) -> bool:
        """Walk the whole tree; returns whether the folder is pre-split."""
        top = self._scandir(str(self.root))
        split_dirs: list[tuple[os.DirEntry[str], str]] = []
        for entry in top:
            alias = _SPLIT_ALIASES.get(entry.name.lower())
            if alias and _is_dir(entry) and not entry.is_symlink() and _has_subfolder(entry.path):
                split_dirs.append((entry, alias))
        if not split_dirs:
            self._walk_classes(str(self.root), None)
            return False
        split_paths = {e.path for e, _ in split_dirs}
        names = defaultdict(list)
        for entry, alias in split_dirs:
            names[alias].append(entry.name)
            self._walk_classes(entry.path, alias)
        for alias, folders in names.items():
            if len(folders) > 1:
                self.warnings.append(
                    f"Folders {', '.join(sorted(folders))} are all read as the '{alias}' split."
                )
        outside: list[str] = []
        for entry in top:
            self._check_cancel()
            if entry.path in split_paths:
                continue
            if entry.is_symlink() and _is_dir(entry):
                self.symlinks.append(self._rel(entry.path))
            elif _is_dir(entry):
                hidden = entry.name.startswith(".") or entry.name == "__MACOSX"
                reason = REASON_HIDDEN_FOLDER if hidden else REASON_OUTSIDE_SPLITS
                if not hidden:
                    outside.append(entry.name + "/")
                self._walk_files(entry.path, None, None, (STATUS_IGNORED, reason))
            elif _is_file(entry) or entry.is_symlink():
                decided = _classify_name(entry.name, 0)
                forced = (
                    decided
                    if decided is not None and decided[0] == STATUS_IGNORED
                    else (STATUS_IGNORED, REASON_OUTSIDE_SPLITS)
                )
                self._add_file(entry, None, None, forced)
        if outside:
            self.warnings.append(
                "The folder is split into train/val/test, so these folders beside them are not used: "
                + _examples(outside, 5)
            )
        return True


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _has_subfolder(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(_is_dir(e) and not e.name.startswith(".") for e in it)
    except OSError:
        return False


def _classify_name(name: str, size: int) -> tuple[str, str] | None:
    """Decide from the name (and size) alone, or return None when the content must be read."""
    lower = name.lower()
    if lower in OS_CLUTTER or lower.startswith("._"):
        return STATUS_IGNORED, REASON_CLUTTER
    if name.startswith("."):
        return STATUS_IGNORED, REASON_HIDDEN
    ext = os.path.splitext(lower)[1]
    if ext in UNSUPPORTED_IMAGE_EXTENSIONS:
        return (
            STATUS_SKIPPED,
            f"{UNSUPPORTED_IMAGE_EXTENSIONS[ext]} images are not supported (convert to JPEG or PNG)",
        )
    if ext and ext not in IMAGE_EXTENSIONS:
        return STATUS_IGNORED, f"not an image file ({ext})"
    if size == 0 and ext:
        return STATUS_SKIPPED, REASON_EMPTY
    return None


# --- reading one file ---------------------------------------------------------------------------


@dataclass
class _Checked:
    status: str
    reason: str | None
    width: int | None = None
    height: int | None = None


def _looks_complete(fmt: str | None, fh: BinaryIO, size: int, data_start: int = 0) -> bool | None:
    """Cheap completeness check from the file's end. None: no such check for this format.

    ``data_start`` is where the image data begins (for JPEG, just after the start-of-scan
    header): an end marker before it belongs to an embedded EXIF thumbnail, not to the image.
    """
    if fmt in ("JPEG", "MPO", "PNG", "GIF"):
        start = max(0, size - _TAIL_BYTES, data_start)
        if start >= size:
            return False
        fh.seek(start)
        tail = fh.read()
        if fmt == "PNG":
            return b"IEND" in tail
        if fmt == "GIF":
            return tail.rstrip(b"\x00").endswith(b";")
        return b"\xff\xd9" in tail
    if fmt == "WEBP":
        fh.seek(0)
        head = fh.read(12)
        return len(head) >= 12 and head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 <= size
    return None


def _check_file(path: str, size: int, max_pixels: int, ext: str, deep: bool = False) -> _Checked:
    """Header read plus a cheap end-of-file check; a full decode only for suspicious files."""
    if size == 0:
        # an empty "README" is no image; an empty "cat.jpg" is a broken one
        return (
            _Checked(STATUS_SKIPPED, REASON_EMPTY)
            if ext
            else _Checked(STATUS_IGNORED, REASON_NOT_IMAGE_NO_EXT)
        )
    try:
        with open(path, "rb") as fh, Image.open(fh) as im:
            fmt = im.format
            # Pillow stops reading a JPEG header at the start of scan: the entropy-coded data follows
            data_start = fh.tell() if fmt == "JPEG" else 0
            width, height = im.size
            if width < 1 or height < 1:
                return _Checked(STATUS_SKIPPED, "not a valid image (zero width or height)")
            if width * height > max_pixels:
                return _Checked(STATUS_SKIPPED, pixel_limit_message(width, height, max_pixels))
            if fmt in ("JPEG", "MPO") and "exif" in im.info:
                try:
                    orientation = int(im.getexif().get(0x0112, 1) or 1)
                except Exception:
                    orientation = 1
                if orientation in (5, 6, 7, 8):  # shown rotated by 90 degrees
                    width, height = height, width
            if deep or _looks_complete(fmt, fh, size, data_start) is not True:
                # Incomplete-looking files (some cameras also append data after the end marker) and
                # formats without an end marker get a full decode, at reduced scale for JPEG.
                if fmt in ("JPEG", "MPO"):
                    im.draft("RGB", (64, 64))
                im.seek(0)
                im.load()
            return _Checked(STATUS_USABLE, None, width, height)
    except Exception as exc:
        reason = explain_failure(path, exc)
        if reason.startswith("not an image"):
            if not ext:  # a file without extension that is not an image: LICENSE, README, ...
                return _Checked(STATUS_IGNORED, REASON_NOT_IMAGE_NO_EXT)
            reason = f"not an image, despite its {ext} extension (cannot identify the content)"
        return _Checked(STATUS_SKIPPED, reason)


def _hash_file(path: str, cancel: threading.Event | None, limit: int | None = None) -> str | None:
    """BLAKE2 of the file's content, or of its first ``limit`` bytes; None when unreadable."""
    digest = hashlib.blake2b(digest_size=20)
    remaining = limit if limit is not None else -1
    try:
        with open(path, "rb") as fh:
            while remaining != 0:
                chunk = fh.read(_HASH_CHUNK if remaining < 0 else min(_HASH_CHUNK, remaining))
                if not chunk:
                    break
                if cancel is not None and cancel.is_set():
                    return None
                digest.update(chunk)
                if remaining > 0:
                    remaining -= len(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _find_duplicates(
    entries: list[_Entry],
    cancel: threading.Event | None,
    report: Callable[[int, int], None],
    done0: int,
    workers: int,
) -> list[list[_Entry]]:
    """Groups of byte-identical files.

    Only files of equal size can be equal, so only those are read; of those, only the ones whose
    first bytes also agree are read to the end. Folders of same-sized uncompressed images (BMP,
    raw TIFF) thus cost one small read per file, not a full read.
    """
    by_size: dict[int, list[_Entry]] = defaultdict(list)
    for e in entries:
        by_size[e.size].append(e)
    candidates = [e for group in by_size.values() if len(group) > 1 for e in group]
    total = done0 + len(candidates)
    heads = _run_pool(
        candidates,
        lambda e: _hash_file(e.abs_path, cancel, _PREFIX_BYTES),
        cancel,
        lambda d: report(done0 + d, total),
        workers,
    )
    by_head: dict[tuple[int, str], list[_Entry]] = defaultdict(list)
    for e, h in zip(candidates, heads, strict=True):
        if h is not None:
            by_head[(e.size, h)].append(e)
    groups: list[list[_Entry]] = []
    need_full: list[_Entry] = []
    for (size, _h), group in by_head.items():
        if len(group) < 2:
            continue
        if size <= _PREFIX_BYTES:  # the prefix was the whole file
            groups.append(group)
        else:
            need_full.extend(group)
    done1 = total
    total += len(need_full)
    fulls = _run_pool(
        need_full,
        lambda e: _hash_file(e.abs_path, cancel),
        cancel,
        lambda d: report(done1 + d, total),
        workers,
    )
    by_full: dict[tuple[int, str], list[_Entry]] = defaultdict(list)
    for e, h in zip(need_full, fulls, strict=True):
        if h is not None:
            by_full[(e.size, h)].append(e)
    groups.extend(g for g in by_full.values() if len(g) > 1)
    report(total, total)
    return sorted((sorted(g, key=lambda e: e.rel) for g in groups), key=lambda g: g[0].rel)


# --- the scan -----------------------------------------------------------------------------------


class _Progress:
    """Calls ``progress(done, total)`` at most about 200 times per phase, and always at the end."""

    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self.last: tuple[int, int] = (-1, -1)

    def __call__(self, done: int, total: int, force: bool = False) -> None:
        if self.fn is None or (done, total) == self.last:
            return
        step = max(1, total // 200)
        if force or done == total or done - self.last[0] >= step:
            self.last = (done, total)
            self.fn(done, total)


def _run_pool(
    items: list[Any],
    fn: Callable[[Any], Any],
    cancel: threading.Event | None,
    on_done: Callable[[int], None],
    workers: int,
) -> list[Any]:
    """Run ``fn`` over ``items`` on a thread pool, results in order, checking ``cancel`` throughout.

    Items go to the threads in small chunks: one future per file would cost more than reading a
    small image header. Threads pay off when reading waits on the disk (network shares, cold
    caches, big files); Pillow's header parsing itself holds the GIL.
    """
    results: list[Any] = [None] * len(items)
    if not items:
        return results
    chunk = max(1, min(_CHUNK, len(items) // (workers * 4) or 1))
    chunks = [range(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]

    def run_chunk(indices: range) -> int:
        for i in indices:
            if cancel is not None and cancel.is_set():
                break
            results[i] = fn(items[i])
        return len(indices)

    done = 0
    if workers <= 1:
        for indices in chunks:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Scan cancelled.")
            done += run_chunk(indices)
            on_done(done)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tlstudio-scan") as pool:
            pending = {pool.submit(run_chunk, c) for c in chunks}
            try:
                while pending:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Scan cancelled.")
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done += fut.result()
                    if finished:
                        on_done(done)
            finally:
                for fut in pending:
                    fut.cancel()
    if cancel is not None and cancel.is_set():
        raise Cancelled("Scan cancelled.")
    return results


def _examples(items: Iterable[str], limit: int = 3) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def scan_dataset(
    root: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    deep: bool = False,
) -> DatasetScan:
    """Scan a dataset folder and report every file in it.

    Parameters
    ----------
    root
        The dataset folder: ``DATA/<class>/...`` or ``DATA/{train,val,test}/<class>/...``.
    progress
        Called as ``progress(done, total)`` from the calling thread while files are checked and
        then while possible duplicates are compared; ``done`` never decreases, ``total`` grows
        when the duplicate phases start, and the last call has ``done == total``.
    cancel
        When this event is set the scan stops soon and raises :class:`Cancelled`.
    max_pixels
        Images with more pixels are skipped (decompression bomb guard).
    workers
        Threads used to read files (default: a few per CPU, at most 16).
    deep
        Decode every image (JPEG at reduced scale) instead of trusting a good header and end
        marker: several times slower, but also catches damage in the middle of a file.

    Returns
    -------
    DatasetScan
        Every file with its class, split, status and reason; the classes; warnings.

    Raises
    ------
    DatasetError
        ``root`` is missing, not a folder or unreadable.
    Cancelled
        ``cancel`` was set.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise DatasetError(f"folder not found: {root_path}")
    if not root_path.is_dir():
        raise DatasetError(f"not a folder: {root_path}")
    if not os.access(root_path, os.R_OK | os.X_OK):
        raise DatasetError(f"cannot read folder {root_path}: permission denied")
    root_path = root_path.resolve()
    n_workers = workers or min(16, 2 * (os.cpu_count() or 2))
    report = _Progress(progress)

    walker = _Walker(root_path, cancel)
    presplit = walker.walk()
    entries = walker.entries
    warnings = list(walker.warnings)

    # 1. headers and completeness, on a thread pool
    to_check = [e for e in entries if e.status is None]
    total = len(to_check)
    report(0, total, force=True)

    def check(e: _Entry) -> _Checked:
        return _check_file(e.abs_path, e.size, max_pixels, os.path.splitext(e.rel)[1].lower(), deep)

    checked = _run_pool(to_check, check, cancel, lambda d: report(d, total), n_workers)
    dims: dict[str, tuple[int | None, int | None]] = {}
    for e, c in zip(to_check, checked, strict=True):
        e.status, e.reason = c.status, c.reason
        if c.status == STATUS_USABLE and e.class_name is None:
            e.status, e.reason = STATUS_IGNORED, REASON_NO_CLASS
        dims[e.rel] = (c.width, c.height)

    # 2. byte-identical duplicates
    usable = [e for e in entries if e.status == STATUS_USABLE]
    dup_groups = _find_duplicates(usable, cancel, lambda d, t: report(d, t), total, n_workers)
    if cancel is not None and cancel.is_set():
        raise Cancelled("Scan cancelled.")

    files = sorted(
        (
            FileRecord(
                path=e.rel,
                class_name=e.class_name,
                split=e.split,
                status=e.status or STATUS_SKIPPED,
                reason=e.reason,
                size=e.size,
                mtime_ns=e.mtime_ns,
                width=dims.get(e.rel, (None, None))[0] if e.status == STATUS_USABLE else None,
                height=dims.get(e.rel, (None, None))[1] if e.status == STATUS_USABLE else None,
            )
            for e in entries
        ),
        key=lambda f: f.path,
    )
    scan = DatasetScan(
        root=root_path,
        presplit=presplit,
        classes=sorted({f.class_name for f in files if f.status == STATUS_USABLE and f.class_name}),
        files=files,
        warnings=warnings,
        duplicates=[[e.rel for e in g] for g in dup_groups],
    )
    scan.warnings.extend(_dataset_warnings(scan, walker, dup_groups))
    # Leakage between splits silently inflates every score: it leads the list.
    scan.warnings.sort(key=lambda w: not w.startswith(LEAKAGE_PREFIX))
    return scan


def _dataset_warnings(scan: DatasetScan, walker: _Walker, dup_groups: list[list[_Entry]]) -> list[str]:
    out: list[str] = []
    usable = scan.usable()
    counts = scan.class_counts()

    if walker.symlinks:
        out.append(
            f"{len(walker.symlinks)} linked folder(s) not followed (a link could mix classes or loop): "
            + _examples(walker.symlinks)
        )
    if walker.unreadable:
        out.append(
            f"{len(walker.unreadable)} folder(s) could not be read (permission denied?): "
            + _examples(walker.unreadable)
        )

    # class folders without usable images
    usable_by_folder: dict[tuple[str | None, str], int] = defaultdict(int)
    for f in usable:
        usable_by_folder[(f.split, f.class_name or "")] += 1
    for split, name in sorted(
        walker.class_folders, key=lambda sc: (SPLITS.index(sc[0]) if sc[0] else -1, sc[1])
    ):
        if usable_by_folder.get((split, name), 0) == 0:
            folder = f"{split}/{name}" if split else name
            if name in counts:
                if not scan.presplit:  # pre-split: "Split 'val' has no images of class ..." says it below
                    out.append(f"Class folder '{folder}' has no usable images.")
            else:
                out.append(f"Folder '{folder}' has no usable images, so '{name}' is not a class.")

    loose = [f.path for f in scan.files if f.reason == REASON_NO_CLASS and _is_image_name(f.path)]
    if loose:
        out.append(
            f"{len(loose)} image(s) are not inside a class folder and are not used: {_examples(loose)}. "
            "Put the images of each class in a folder named after the class."
        )

    if not scan.classes:
        out.append("No class folders with usable images were found: expected DATA/<class>/<images>.")
    elif len(scan.classes) == 1:
        only = scan.classes[0]
        hint = ""
        subfolders = {f.path.split("/")[1] for f in usable if f.path.count("/") >= 2 and f.class_name == only}
        if not scan.presplit and len(subfolders) >= 2:
            hint = f" Its images are in sub-folders ({_examples(sorted(subfolders))}): did you mean to pick '{only}' itself?"
        out.append(f"Only one class ('{only}'): a classifier needs at least two class folders.{hint}")

    if scan.presplit:
        present = scan.splits()
        if "train" not in present:
            out.append("The folder is split, but there is no 'train' folder with usable images.")
        else:
            for split in present:
                missing = [c for c, n in scan.class_counts(split).items() if n == 0]
                if missing:
                    out.append(
                        f"Split '{split}' has no images of class(es) {', '.join(repr(c) for c in missing)}."
                    )

    few = [(c, n) for c, n in counts.items() if 0 < n < MIN_IMAGES_PER_CLASS]
    if few:
        out.append(
            f"Class(es) with fewer than {MIN_IMAGES_PER_CLASS} usable images: "
            + ", ".join(f"'{c}' ({n})" for c, n in few)
            + ". Add more images for a useful model."
        )
    if len(counts) >= 2:
        largest = max(counts, key=lambda c: counts[c])
        smallest = min(counts, key=lambda c: counts[c])
        if counts[smallest] > 0 and counts[largest] / counts[smallest] > IMBALANCE_RATIO:
            out.append(
                f"Strong class imbalance: '{largest}' has {counts[largest]} images, '{smallest}' only "
                f"{counts[smallest]} ({counts[largest] / counts[smallest]:.1f}x)."
            )

    # duplicates
    leak, across, within = [], [], []
    for group in dup_groups:
        keys = {(e.split, e.class_name) for e in group}
        splits = {e.split for e in group}
        classes = {e.class_name for e in group}
        pair = (
            f"{group[0].rel} = {group[1].rel}"
            if len(group) == 2
            else f"{group[0].rel} = {len(group) - 1} others"
        )
        if len(splits) > 1:
            leak.append(pair)
        if len(classes) > 1:
            across.append(pair)
        if len(keys) < len(group):
            within.append(pair)
    if leak:
        out.append(
            f"{LEAKAGE_PREFIX} {len(leak)} group(s) of byte-identical images appear in more than one split "
            f"({_examples(leak)}). Validation/test scores will be too optimistic: remove the copies."
        )
    if across:
        out.append(
            f"{len(across)} group(s) of byte-identical images are in different classes ({_examples(across)}): "
            "the same picture cannot have two labels."
        )
    if within:
        out.append(
            f"{len(within)} group(s) of byte-identical duplicate files within a class: {_examples(within)}."
        )

    small = [
        f.path
        for f in usable
        if f.width is not None and f.height is not None and min(f.width, f.height) < MIN_SIDE
    ]
    if small:
        out.append(f"{len(small)} image(s) are smaller than {MIN_SIDE} px on a side: {_examples(small)}.")
    return out


def _is_image_name(path: str) -> bool:
    return os.path.splitext(path.lower())[1] in IMAGE_EXTENSIONS
