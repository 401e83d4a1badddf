"""How many images to hold out for validation, and how far an accuracy measured on them can be trusted.

With a folder of a few dozen photos per class the usual 20 % validation share gives a handful of
images per class: every one of them moves the accuracy by several points. tlstudio therefore
sizes the share from the smallest class (:func:`auto_val_fraction`), says so when validation is too
small to trust (:func:`holdout_warnings`), and shows every accuracy with its 95 % interval
(:func:`accuracy_interval`, the Wilson score interval, which stays inside 0-100 % and is honest
for small counts, unlike the textbook ``p ± 1.96·sqrt(p(1-p)/n)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The standard share, used once every class has plenty of images.
DEFAULT_VAL_FRACTION = 0.2
#: The most that is ever held out: at least 70 % of each class is left to learn from.
MAX_VAL_FRACTION = 0.3
#: Validation images wanted of the smallest class before the share goes back to the default.
WANTED_VAL_PER_CLASS = 5
#: Below this many images in its smallest class a dataset cannot spare more for validation.
TINY_CLASS = 10
#: Fewer validation images of a class than this make its per-class scores meaningless.
MIN_VAL_PER_CLASS = 3
#: Validation sets whose accuracy is uncertain by more than this (half-width, at 50 %) get a warning.
MAX_HALF_WIDTH = 0.10

_Z95 = 1.959963984540054


def auto_val_fraction(counts: Iterable[int]) -> float:
    """The validation share for a folder that is not pre-split, from its images per class.

    Classes with plenty of images (the smallest has at least ``WANTED_VAL_PER_CLASS / 0.2`` = 25)
    get the standard 20 %. Smaller ones get a larger share, enough for about
    ``WANTED_VAL_PER_CLASS`` validation images of the smallest class, but never more than 30 %, so
    at least 70 % of every class is left to learn from. Tiny classes (under ``TINY_CLASS``
    images) keep 20 %: they cannot spare more, and their validation score is flagged as
    untrustworthy instead (:func:`holdout_warnings`).

    Parameters
    ----------
    counts
        Usable images per class.

    Returns
    -------
    float
        A share between ``DEFAULT_VAL_FRACTION`` and ``MAX_VAL_FRACTION``.
    """
    sizes = [int(c) for c in counts if int(c) > 0]
    if not sizes:
        return DEFAULT_VAL_FRACTION
    smallest = min(sizes)
    if smallest < TINY_CLASS:
        return DEFAULT_VAL_FRACTION
    wanted = WANTED_VAL_PER_CLASS / smallest
    return round(min(MAX_VAL_FRACTION, max(DEFAULT_VAL_FRACTION, wanted)), 3)


def accuracy_interval(correct: int, total: int, confidence_z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``total`` (95 % by default).

    Parameters
    ----------
    correct
        Images answered correctly.
    total
        Images evaluated.
    confidence_z
        The normal quantile (1.96 for 95 %).

    Returns
    -------
    tuple of float
        ``(low, high)`` as fractions in ``[0, 1]``; ``(0.0, 1.0)`` when ``total`` is 0.
    """
    if total <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be between 0 and {total}, not {correct}")
    p = correct / total
    z2 = confidence_z * confidence_z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = confidence_z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    # At 0 or all correct the interval touches the end exactly; say so without rounding noise.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


def format_accuracy(correct: int, total: int) -> str:
    """``"86.0 % (95 % interval 78.1-91.4 %, 100 images)"``: an accuracy with its uncertainty."""
    if total <= 0:
        return "no images"
    low, high = accuracy_interval(correct, total)
    return f"{100 * correct / total:.1f} % (95 % interval {100 * low:.1f}-{100 * high:.1f} %, {total} images)"


def holdout_warnings(val_counts: Mapping[str, int]) -> list[str]:
    """Warnings about a validation set too small to trust, in plain words.

    Parameters
    ----------
    val_counts
        Validation images per class.

    Returns
    -------
    list of str
        Empty when validation is big enough; otherwise one line on the whole set (how uncertain an
        accuracy measured on it is) and one on classes with too few validation images.
    """
    out: list[str] = []
    total = sum(int(n) for n in val_counts.values())
    if total > 0:
        low, high = accuracy_interval(total // 2, total) if total > 1 else (0.0, 1.0)
        half = (high - low) / 2
        if half > MAX_HALF_WIDTH:
            out.append(
                f"Validation holds only {total} image(s): an accuracy measured on them is uncertain by up "
                f"to ±{100 * half:.0f} points (95 % interval). Add images for a score you can trust."
            )
    few = [(name, int(n)) for name, n in sorted(val_counts.items()) if int(n) < MIN_VAL_PER_CLASS]
    if few:
        out.append(
            f"Fewer than {MIN_VAL_PER_CLASS} validation images of class(es) "
            + ", ".join(f"'{name}' ({n})" for name, n in few)
            + ": their per-class scores say little."
        )
    return out


def split_holdout_warnings(parts: Mapping[str, Sequence[Any]], classes: Sequence[str]) -> list[str]:
    """:func:`holdout_warnings` for a split made by :func:`tlstudio.core.data.split.split_files`."""
    counts = dict.fromkeys(classes, 0)
    for rec in parts.get("val", []):
        if rec.class_name in counts:
            counts[rec.class_name] += 1
    return holdout_warnings(counts)
