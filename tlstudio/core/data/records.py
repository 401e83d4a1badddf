"""What a scan finds: one record per file, and the dataset as a whole (classes, splits, warnings)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core.data.layout import SPLITS, STATUS_IGNORED, STATUS_SKIPPED, STATUS_USABLE


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
        # mtime_ns stays out: it only tells a later scan whether the file changed.
        return {key: getattr(self, attr) for key, attr in _FILE_RECORD_JSON.items()}


#: JSON key -> FileRecord attribute, in the order the report lists them.
_FILE_RECORD_JSON = {
    "path": "path", "class": "class_name", "split": "split", "status": "status", "reason": "reason",
    "size": "size", "width": "width", "height": "height",
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
