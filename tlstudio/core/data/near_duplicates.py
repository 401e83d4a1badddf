"""Near-duplicate images by feature similarity: groups of images whose pooled features nearly match.

Byte-identical files are found by the scan; this finds the same picture resized, re-encoded or
slightly cropped. Features are centred on the dataset's mean before the cosine similarity, since
pooled ReLU features all point into one orthant and raw cosines of unrelated photos are high.
Pairs at or above the threshold are joined into groups (union-find); the comparison runs in blocks
of rows, so memory stays ``block x n`` floats.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from tlstudio.core.errors import Cancelled

#: Cosine similarity of centred features from which two images count as near-duplicates.
DEFAULT_THRESHOLD = 0.95


@dataclass(frozen=True)
class DuplicateGroup:
    members: tuple[int, ...]  # rows of the feature matrix, ascending
    similarity: float  # the lowest similarity of the pairs that join the group


def normalised(x: np.ndarray) -> np.ndarray:
    """Rows centred on the mean row and scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def similar_pairs(
    x: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, block: int = 1024, cancel: threading.Event | None = None
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)`` with ``i < j`` whose centred cosine similarity is at least ``threshold``."""
    z = normalised(x)
    n = len(z)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, n, block):
        if cancel is not None and cancel.is_set():
            raise Cancelled("the audit was cancelled")
        sims = z[start : start + block] @ z.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append((i, c, float(sims[r, c])))
    return pairs


def group_pairs(pairs: list[tuple[int, int, float]]) -> list[DuplicateGroup]:
    """Join pairs that share an image into groups, most similar group first."""
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    lowest: dict[int, float] = {}
    for i, j, _ in pairs:
        parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i, _j, s in pairs:
        r = find(i)
        lowest[r] = min(lowest.get(r, 1.0), s)
    for a in list(parent):
        members.setdefault(find(a), []).append(a)
    groups = [DuplicateGroup(tuple(sorted(m)), round(min(1.0, lowest[r]), 4)) for r, m in members.items()]
    groups.sort(key=lambda g: (-g.similarity, g.members))
    return groups


def find_near_duplicates(
    x: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, cancel: threading.Event | None = None
) -> list[DuplicateGroup]:
    """Groups of rows of ``x`` that are near-duplicates of each other."""
    if len(x) < 2:
        return []
    return group_pairs(similar_pairs(x, threshold, cancel=cancel))
