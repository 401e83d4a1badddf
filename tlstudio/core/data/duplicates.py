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


def _digest_groups(
    entries: list[Entry],
    limit: int | None,
    cancel: threading.Event | None,
    on_done: Callable[[int], None],
    workers: int,
) -> list[list[Entry]]:
    """Groups (2 or more) of ``entries`` whose size and digest (of the first ``limit`` bytes) agree."""
    digests = run_pool(entries, lambda e: _digest(e.abs_path, cancel, limit), cancel, on_done, workers)
    by_digest: dict[tuple[int, str], list[Entry]] = defaultdict(list)
    for e, h in zip(entries, digests, strict=True):
        if h is not None:
            by_digest[(e.size, h)].append(e)
    return [g for g in by_digest.values() if len(g) > 1]


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
    heads = _digest_groups(candidates, PREFIX_BYTES, cancel, lambda d: report(done0 + d, total), workers)
    groups = [g for g in heads if g[0].size <= PREFIX_BYTES]  # the prefix was the whole file
    need_full = [e for g in heads if g[0].size > PREFIX_BYTES for e in g]
    done1 = total
    total += len(need_full)
    groups += _digest_groups(need_full, None, cancel, lambda d: report(done1 + d, total), workers)
    report(total, total)
    return sorted((sorted(g, key=lambda e: e.rel) for g in groups), key=lambda g: g[0].rel)
