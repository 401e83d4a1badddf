"""Small data, honest split: the validation share, its warnings, and the 95 % interval of an accuracy."""

from __future__ import annotations

import math

import pytest

from tlstudio.core.config import SplitConfig
from tlstudio.core.data.holdout import (
    DEFAULT_VAL_FRACTION,
    MAX_VAL_FRACTION,
    accuracy_interval,
    auto_val_fraction,
    format_accuracy,
    holdout_warnings,
    split_holdout_warnings,
)
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.data.split import split_files


@pytest.mark.parametrize(
    ("counts", "fraction"),
    [([500, 800], 0.2), ([25, 900], 0.2), ([20, 30], 0.25), ([12, 40], 0.3), ([10, 10], 0.3), ([6, 100], 0.2), ([], 0.2)],
)
def test_auto_val_fraction(counts, fraction):
    assert auto_val_fraction(counts) == pytest.approx(fraction)


def test_auto_val_fraction_always_leaves_most_images_to_learn_from():
    for smallest in range(1, 200):
        f = auto_val_fraction([smallest, 1000])
        assert DEFAULT_VAL_FRACTION <= f <= MAX_VAL_FRACTION
        if smallest >= 10:
            assert round(smallest * f) >= 3  # enough validation images of the smallest class
            assert smallest - round(smallest * f) >= 0.7 * smallest - 0.5


def test_wilson_interval_known_values():
    low, high = accuracy_interval(8, 10)  # the textbook Wilson example
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert accuracy_interval(0, 10)[0] == 0.0 and accuracy_interval(10, 10)[1] == 1.0
    assert accuracy_interval(0, 0) == (0.0, 1.0)
    narrow = accuracy_interval(860, 1000)
    wide = accuracy_interval(86, 100)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more images, less doubt
    with pytest.raises(ValueError):
        accuracy_interval(11, 10)


def test_the_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    # Exact coverage for n = 40, p = 0.85, from the binomial distribution (no randomness).
    n, p = 40, 0.85
    covered = 0.0
    for k in range(n + 1):
        low, high = accuracy_interval(k, n)
        if low <= p <= high:
            covered += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    assert 0.92 < covered < 0.99


def test_format_accuracy():
    assert format_accuracy(86, 100) == "86.0 % (95 % interval 77.9-91.5 %, 100 images)"
    assert format_accuracy(0, 0) == "no images"


def test_small_validation_sets_are_flagged_big_ones_are_not():
    assert holdout_warnings({"a": 200, "b": 150}) == []
    warnings = holdout_warnings({"a": 12, "b": 2})
    assert any("only 14 image(s)" in w and "±" in w for w in warnings)
    assert any("'b' (2)" in w for w in warnings)


def test_warnings_for_a_real_small_split(image_folder):
    scan = scan_dataset(image_folder({"cats": 6, "dogs": 6}))
    parts = split_files(scan, SplitConfig(val_fraction=auto_val_fraction(scan.class_counts().values())))
    warnings = split_holdout_warnings(parts, scan.classes)
    assert len(warnings) == 2 and "Validation holds only 2 image(s)" in warnings[0]
