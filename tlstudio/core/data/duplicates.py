"""Byte-identical files: which usable images of a dataset are copies of one another.

Only files of equal size can be equal, so only those are read; of those, only the ones whose
first bytes also agree are read to the end. Folders of same-sized uncompressed images (BMP, raw
TIFF) thus cost one small read per file, not a full read.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

from tlstudio.core.data.layout import Entry
from tlstudio.core.data.parallel import run_pool
from tlstudio.core.hashing import file_digest

PREFIX_BYTES = 64 * 1024  # read first when looking for duplicates


def _digest(path: str, cancel: threading.Event | None, limit: int | None = None) -> str | None:
    """BLAKE2 of the file's content (or its first ``limit`` bytes); None when unreadable."""
    try:
        return file_digest(path, "blake2b", limit=limit, cancel=cancel)
    except OSError:
        return None


def find_duplicates(
    entries: list[Entry],
    cancel: threading.Event | None,
    report: Callable[[int, int], None],
    done0: int,
    workers: int,
) -> list[list[Entry]]:
    """Groups (2 or more) of byte-identical files, each sorted by path, the groups by first path.

    ``report(done, total)`` is called as files are read, counting on from ``done0``.
    """
    by_size: dict[int, list[Entry]] = defaultdict(list)
    for e in entries:
        by_size[e.size].append(e)
    candidates = [e for group in by_size.values() if len(group) > 1 for e in group]
    total = done0 + len(candidates)
    heads = run_pool(
        candidates,
        lambda e: _digest(e.abs_path, cancel, PREFIX_BYTES),
        cancel,
        lambda d: report(done0 + d, total),
        workers,
    )
    by_head: dict[tuple[int, str], list[Entry]] = defaultdict(list)
    for e, h in zip(candidates, heads, strict=True):
        if h is not None:
            by_head[(e.size, h)].append(e)
    groups: list[list[Entry]] = []
    need_full: list[Entry] = []
    for (size, _h), group in by_head.items():
        if len(group) < 2:
            continue
        if size <= PREFIX_BYTES:  # the prefix was the whole file
            groups.append(group)
        else:
            need_full.extend(group)
    done1 = total
    total += len(need_full)
    fulls = run_pool(
        need_full,
        lambda e: _digest(e.abs_path, cancel),
        cancel,
        lambda d: report(done1 + d, total),
        workers,
    )
    by_full: dict[tuple[int, str], list[Entry]] = defaultdict(list)
    for e, h in zip(need_full, fulls, strict=True):
        if h is not None:
            by_full[(e.size, h)].append(e)
    groups.extend(g for g in by_full.values() if len(g) > 1)
    report(total, total)
    return sorted((sorted(g, key=lambda e: e.rel) for g in groups), key=lambda g: g[0].rel)
