"""Dividing a scanned folder into train / val / test: the folder's own split, else a stratified one.

The stratified split is deterministic: it depends only on the file paths, the class names, the
fractions and the seed, never on the order the files were listed in or on the platform's hash
seed, so a run can be reproduced from its configuration.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tlstudio.core.errors import TlstudioError

if TYPE_CHECKING:  # pragma: no cover
    from tlstudio.core.config import SplitConfig
    from tlstudio.core.data.scan import DatasetScan, FileRecord

SPLITS = ("train", "val", "test")


class SplitError(TlstudioError):
    """The files cannot be divided into usable training and validation sets."""


def _stable_seed(seed: int, class_name: str) -> int:
    digest = hashlib.sha256(f"{seed}:{class_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _take(count: int, fraction: float, keep_one: bool) -> int:
    """How many of ``count`` files go to a held-out split of ``fraction`` (at least one when it can)."""
    if fraction <= 0 or count == 0:
        return 0
    n = int(round(count * fraction))
    if keep_one and n == 0 and count >= 2:
        n = 1
    return n


def stratified_split(
    records: list[FileRecord], val_fraction: float, test_fraction: float = 0.0, seed: int = 1337
) -> dict[str, list[FileRecord]]:
    """Split ``records`` per class, in the given proportions, deterministically.

    Parameters
    ----------
    records
        Usable files with a ``class_name``.
    val_fraction, test_fraction
        Share of each class that goes to validation and test. Every class with at least two files
        gets at least one validation file, and at least one training file is always kept.
    seed
        Shuffling seed; the same seed and the same files always give the same split.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted by path.
    """
    by_class: dict[str, list[FileRecord]] = defaultdict(list)
    for rec in records:
        by_class[str(rec.class_name)].append(rec)
    out: dict[str, list[FileRecord]] = {s: [] for s in SPLITS}
    for name in sorted(by_class):
        files = sorted(by_class[name], key=lambda r: r.path)
        random.Random(_stable_seed(seed, name)).shuffle(files)
        n = len(files)
        n_val = _take(n, val_fraction, keep_one=True)
        n_test = _take(n, test_fraction, keep_one=test_fraction > 0 and n >= 3)
        # Always leave at least one file to train on.
        while n_val + n_test >= n and (n_val + n_test) > 0:
            if n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        out["val"].extend(files[:n_val])
        out["test"].extend(files[n_val : n_val + n_test])
        out["train"].extend(files[n_val + n_test :])
    for s in SPLITS:
        out[s].sort(key=lambda r: r.path)
    return out


def split_files(scan: DatasetScan, split: SplitConfig) -> dict[str, list[FileRecord]]:
    """The train / val / test files of a scanned dataset.

    A pre-split folder keeps its own split (a ``test`` folder becomes the test split); when it
    has no validation files, validation files are drawn from its training files as below.
    Otherwise each class is divided by :func:`stratified_split` with the validation share of
    :func:`resolve_val_fraction`, ``split.test_fraction`` and ``split.seed``.

    Parameters
    ----------
    scan
        The scanner's result; only usable files are used.
    split
        Fractions and seed for folders that are not pre-split.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}`` of :class:`FileRecord`, sorted by path.

    Raises
    ------
    SplitError
        When fewer than two classes have training images, or there is nothing to validate on.
    """
    usable = [r for r in scan.usable() if r.class_name]
    val_fraction = resolve_val_fraction(scan, split)
    if scan.presplit:
        out: dict[str, list[FileRecord]] = {s: [] for s in SPLITS}
        for rec in usable:
            if rec.split in out:
                out[str(rec.split)].append(rec)
        if not out["val"]:
            inner = stratified_split(out["train"], val_fraction, 0.0, split.seed)
            out["train"], out["val"] = inner["train"], inner["val"]
        check_split_classes(out)
        for s in SPLITS:
            out[s].sort(key=lambda r: r.path)
    else:
        out = stratified_split(usable, val_fraction, split.test_fraction, split.seed)
    check_split(out)
    return out


def _names(names: set[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def class_difference(train: set[str], other: set[str], other_name: str) -> str | None:
    """One line naming the classes that ``train/`` and another split do not share; None when equal."""
    if train == other:
        return None
    parts = []
    if train - other:
        parts.append(f"only in train/: {_names(train - other)}")
    if other - train:
        parts.append(f"only in {other_name}/: {_names(other - train)}")
    text = f"train/ and {other_name}/ have different classes ({'; '.join(parts)})"
    lower_train = {n.casefold(): n for n in train - other}
    twins = [(lower_train[n.casefold()], n) for n in sorted(other - train) if n.casefold() in lower_train]
    if twins:
        text += "; names differ only in upper/lower case: " + ", ".join(f"{a!r} vs {b!r}" for a, b in twins)
    return text


def check_split_classes(parts: dict[str, list[Any]]) -> None:
    """Refuse a pre-split folder whose val/ (or test/) classes differ from train/'s, naming the difference.

    A class missing from val/ is never validated and one missing from train/ is never learned, so
    both are refused; test/ may lack a class, but not hold one that train/ does not have.
    """
    train = {str(r.class_name) for r in parts["train"]}
    val = {str(r.class_name) for r in parts["val"]}
    problem = class_difference(train, val, "val") if val else None
    if problem is None:
        test = {str(r.class_name) for r in parts.get("test", [])}
        if test - train:
            problem = class_difference(train, test | train, "test")
    if problem is not None:
        raise SplitError(f"{problem}. Give every split the same class folders.")


def resolve_val_fraction(scan: DatasetScan, split: SplitConfig) -> float:
    """The validation share :func:`split_files` uses: the configured one, or the automatic one.

    With ``split.val_fraction`` None the share comes from the smallest class
    (:func:`tlstudio.core.data.holdout.auto_val_fraction`); for a pre-split folder without a val
    folder, from its training images. Record it with the run: it is part of how it was made.
    """
    if split.val_fraction is not None:
        return float(split.val_fraction)
    from tlstudio.core.data.holdout import auto_val_fraction

    return auto_val_fraction(scan.class_counts("train" if scan.presplit else None).values())


def check_split(parts: dict[str, list[Any]]) -> None:
    """Raise :class:`SplitError` when the split cannot train a classifier, or leaks files."""
    train_classes = {r.class_name for r in parts["train"]}
    if len(train_classes) < 2:
        raise SplitError("at least two classes with training images are needed")
    if not parts["val"]:
        raise SplitError("no validation images: add more images per class or a val folder")
    seen: dict[str, str] = {}
    for name in SPLITS:
        for rec in parts.get(name, []):
            other = seen.setdefault(rec.path, name)
            if other != name:
                raise SplitError(f"{rec.path} is in both the {other} and the {name} split")


def split_to_paths(parts: dict[str, list[FileRecord]]) -> dict[str, list[str]]:
    """The JSON form recorded in ``config.json``: relative paths per split."""
    return {s: [r.path for r in parts.get(s, [])] for s in SPLITS}


def class_counts(records: list[FileRecord], classes: list[str]) -> list[int]:
    """Number of files per class, in ``classes`` order."""
    counts = dict.fromkeys(classes, 0)
    for r in records:
        if r.class_name in counts:
            counts[str(r.class_name)] += 1
    return [counts[c] for c in classes]
