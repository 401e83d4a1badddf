"""The automatic head settings: a search over its grid, scored on validation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tlstudio.core.errors import Cancelled
from tlstudio.core.train import head_search


def blobs(n, k=3, d=16, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(k, d)) * 2
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d)) * spread).astype(np.float32), y


def test_the_search_tries_every_grid_point_and_picks_the_lowest_validation_loss():
    x, y = blobs(200)
    xv, yv = blobs(60, seed=1)
    grid = head_search.search_grid("adam")
    assert len(grid) == len(head_search.ADAM_LEARNING_RATES) * len(head_search.DROPOUTS)
    found = head_search.search_head(x, y, xv, yv, num_classes=3, grid=grid, batch_size=32)
    assert [(p.head_lr, p.dropout) for p in found.points] == grid
    assert (found.head_lr, found.dropout) in grid
    best = min(found.points, key=lambda p: p.val_loss)
    assert found.head_lr == best.head_lr and found.dropout == best.dropout
    assert best.val_accuracy > 0.9 and 0 < found.epochs <= head_search.SEARCH_EPOCH_CAP
    record = found.to_json()
    assert record["head_lr"] == found.head_lr and len(record["grid"]) == len(grid)


def test_a_learning_rate_far_too_small_loses_and_fixed_values_are_kept():
    x, y = blobs(120)
    xv, yv = blobs(60, seed=1)
    found = head_search.search_head(
        x, y, xv, yv, num_classes=3, grid=head_search.search_grid("adam", (1e-6, 1e-2), (0.2,)), epoch_cap=30
    )
    assert (found.head_lr, found.dropout) == (1e-2, 0.2)
    assert head_search.search_grid("sgd", None, (0.0,))[0] == (
        head_search.ADAM_LEARNING_RATES[0] * head_search.SGD_LR_FACTOR, 0.0)


def test_large_sets_train_their_head_in_larger_batches():
    assert head_search.head_batch_size(100, 32) == 32
    assert head_search.head_batch_size(3200, 32) == 3200 // head_search.MAX_STEPS_PER_EPOCH


def test_cancel_stops_the_search():
    x, y = blobs(50)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        head_search.search_head(x, y, x, y, num_classes=3, grid=[(1e-3, 0.0)], cancel=cancel)
