"""The folder layout a dataset must follow, and the walk that reads it without opening any file.

Two layouts are recognised (folder names compared case-insensitively)::

    DATA/<class>/...                          flat: the split is made later
    DATA/{train,val|validation,test}/<class>/...   pre-split: "validation" counts as "val"

Files in nested sub-folders of a class folder belong to that class. What can be decided from a
name alone (clutter, hidden files, documents, unsupported formats) is decided here; the content
of the remaining files is looked at by the scan.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tlstudio.core.data.imageio import describe_error
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.safe_files import not_regular_reason

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

# Bidirectional-text controls: invisible, and they make a name display as another one.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def printable_name(name: str) -> str:
    """A folder name shown on one line: control characters and undecodable bytes escaped."""
    out = []
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def class_name_problem(name: str) -> str | None:
    """Why a folder name cannot be a class name, or None when it can.

    A class name is written to ``labels.txt`` (one name per line, lines stripped when read), to
    CSV files and to model metadata; a name that would not come back the same from those is
    refused: line breaks and other control characters, invisible direction marks, spaces at
    either end, and bytes that are not UTF-8 text.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8 text"
    for ch in name:
        category = unicodedata.category(ch)
        if ch in "\r\n\x85" or category in ("Zl", "Zp"):
            return "its name contains a line break"
        if category == "Cc":
            return f"its name contains a control character (U+{ord(ch):04X})"
        if ch in _BIDI_CONTROLS:
            return f"its name contains an invisible text-direction mark (U+{ord(ch):04X})"
    if name != name.strip():
        return "its name starts or ends with a space"
    return None


def class_name_reason(name: str) -> str | None:
    """The reason given to each file of a folder whose name cannot be a class; None for a good name."""
    problem = class_name_problem(name)
    if problem is None:
        return None
    return f"class folder cannot be used: {problem}, which labels.txt and CSV files cannot hold (rename it)"


class DatasetError(TlstudioError):
    """The dataset folder itself cannot be scanned (missing, not a folder, unreadable)."""


# --- walking the folder -------------------------------------------------------------------------


@dataclass
class Entry:
    """One file met by the walk, with what is known before opening it."""

    abs_path: str
    rel: str
    class_name: str | None
    split: str | None
    size: int
    mtime_ns: int
    status: str | None = None  # decided without opening the file (ignored, empty, ...)
    reason: str | None = None


class Walker:
    """Walks a dataset folder once, collecting its files, class folders and oddities."""

    def __init__(self, root: Path, cancel: threading.Event | None) -> None:
        self.root = root
        self.cancel = cancel
        self.entries: list[Entry] = []
        self.warnings: list[str] = []
        self.class_folders: list[tuple[str | None, str]] = []  # (split, class) of each class folder seen
        self.symlinks: list[str] = []
        self.bad_class_folders: list[tuple[str | None, str]] = []  # (split, name) refused as class names
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
            self.entries.append(Entry(entry.path, rel, class_name, split, 0, 0, STATUS_SKIPPED, reason))
            return
        e = Entry(entry.path, rel, class_name, split, st.st_size, st.st_mtime_ns)
        special = not_regular_reason(st.st_mode)
        if forced is not None:
            e.status, e.reason = forced
        else:
            decided = classify_name(entry.name, max(st.st_size, 1) if special else st.st_size)
            if decided is not None:
                e.status, e.reason = decided
            elif special is not None:
                # A FIFO would block the reader and a device never ends: decided here, never opened.
                e.status, e.reason = STATUS_SKIPPED, special
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
                else:  # files, links to files, and special files (which are skipped with a reason)
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
                    bad_name = class_name_reason(entry.name)
                    if bad_name is not None:
                        self.bad_class_folders.append((split, entry.name))
                    forced = (STATUS_SKIPPED, bad_name) if bad_name is not None else None
                    self._walk_files(entry.path, entry.name, split, forced)
            else:
                decided = classify_name(entry.name, 0)
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
            else:
                decided = classify_name(entry.name, 0)
                forced = (
                    decided
                    if decided is not None and decided[0] == STATUS_IGNORED
                    else (STATUS_IGNORED, REASON_OUTSIDE_SPLITS)
                )
                self._add_file(entry, None, None, forced)
        if outside:
            self.warnings.append(
                "The folder is split into train/val/test, so these folders beside them are not used: "
                + examples(outside, 5)
            )
        return True


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _has_subfolder(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(_is_dir(e) and not e.name.startswith(".") for e in it)
    except OSError:
        return False


def classify_name(name: str, size: int) -> tuple[str, str] | None:
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


def is_image_name(path: str) -> bool:
    """Whether a file name has one of the image extensions tlstudio reads."""
    return os.path.splitext(path.lower())[1] in IMAGE_EXTENSIONS


def examples(items: Iterable[str], limit: int = 3) -> str:
    """The first ``limit`` items joined, and how many more there are: ``"a, b, c and 4 more"``."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
