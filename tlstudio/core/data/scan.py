"""Scan a dataset folder: which files are usable images, of which class and split, and what is wrong.

The scan walks the folder (:mod:`~tlstudio.core.data.layout`: which folders are classes and splits,
what can be decided from a name), checks each remaining file's header and end on a thread pool
(:func:`~tlstudio.core.data.imageio.probe_image`), finds byte-identical copies
(:mod:`~tlstudio.core.data.duplicates`) and writes the health report
(:mod:`~tlstudio.core.data.health`). Files that would only fail at a full decode are caught later by
:func:`tlstudio.core.data.imageio.open_image`, which raises :class:`ImageError`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from tlstudio.core.data.duplicates import find_duplicates
from tlstudio.core.data.health import LEAKAGE_PREFIX, dataset_warnings
from tlstudio.core.data.imageio import DEFAULT_MAX_PIXELS, ImageError, probe_image
from tlstudio.core.data.layout import (
    IMAGE_EXTENSIONS,
    REASON_EMPTY,
    REASON_NO_CLASS,
    REASON_NOT_IMAGE_NO_EXT,
    SPLITS,
    STATUS_IGNORED,
    STATUS_SKIPPED,
    STATUS_USABLE,
    DatasetError,
    Entry,
    Walker,
)
from tlstudio.core.data.parallel import Progress, ProgressFn, run_pool
from tlstudio.core.data.records import DatasetScan, FileRecord
from tlstudio.core.errors import Cancelled

__all__ = [
    "DatasetError",
    "DatasetScan",
    "FileRecord",
    "scan_dataset",
    "SPLITS",
    "IMAGE_EXTENSIONS",
    "LEAKAGE_PREFIX",
]


@dataclass
class _Checked:
    status: str
    reason: str | None
    width: int | None = None
    height: int | None = None


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
        header = probe_image(path, size, max_pixels=max_pixels, deep=deep)
    except ImageError as exc:
        reason = exc.reason
        if reason.startswith("not an image"):
            if not ext:  # a file without extension that is not an image: LICENSE, README, ...
                return _Checked(STATUS_IGNORED, REASON_NOT_IMAGE_NO_EXT)
            reason = f"not an image, despite its {ext} extension (cannot identify the content)"
        return _Checked(STATUS_SKIPPED, reason)
    return _Checked(STATUS_USABLE, None, header.width, header.height)


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
    report = Progress(progress)

    walker = Walker(root_path, cancel)
    presplit = walker.walk()
    entries = walker.entries
    warnings = list(walker.warnings)

    # 1. headers and completeness, on a thread pool
    to_check = [e for e in entries if e.status is None]
    total = len(to_check)
    report(0, total, force=True)

    def check(e: Entry) -> _Checked:
        return _check_file(e.abs_path, e.size, max_pixels, os.path.splitext(e.rel)[1].lower(), deep)

    checked = run_pool(to_check, check, cancel, lambda d: report(d, total), n_workers)
    dims: dict[str, tuple[int | None, int | None]] = {}
    for e, c in zip(to_check, checked, strict=True):
        e.status, e.reason = c.status, c.reason
        if c.status == STATUS_USABLE and e.class_name is None:
            e.status, e.reason = STATUS_IGNORED, REASON_NO_CLASS
        dims[e.rel] = (c.width, c.height)

    # 2. byte-identical duplicates
    usable = [e for e in entries if e.status == STATUS_USABLE]
    dup_groups = find_duplicates(usable, cancel, lambda d, t: report(d, t), total, n_workers)
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
    scan.warnings.extend(dataset_warnings(scan, walker, dup_groups))
    # Leakage between splits silently inflates every score: it leads the list.
    scan.warnings.sort(key=lambda w: not w.startswith(LEAKAGE_PREFIX))
    return scan
