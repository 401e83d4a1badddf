"""The "automatic" head settings: a short search over learning rate and dropout on the cached features.

Every point of a small grid trains its own head, all at once (:class:`~tlstudio.core.train.head_stack.HeadStack`:
the heads side by side in numpy, on the same shuffled batches), so the whole grid costs about as
much as a few single heads. A head stops counting when its validation loss has not improved for
``patience`` epochs; the grid point with the lowest best validation loss wins (ties: the higher
validation accuracy, then the smaller values).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tlstudio.core.errors import Cancelled
from tlstudio.core.train.head_stack import HeadStack

#: Learning rates tried for Adam / AdamW; SGD (with momentum) tries ten times these.
ADAM_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
SGD_LR_FACTOR = 10.0
DROPOUTS = (0.0, 0.2, 0.5)
#: Most epochs of the search; heads usually stop long before.
SEARCH_EPOCH_CAP = 100
SEARCH_PATIENCE = 8
#: A head on cached features takes at most this many batches per epoch (larger batches on large sets):
#: the search and the head it chooses for see the same batch size, and an epoch stays cheap.
MAX_STEPS_PER_EPOCH = 16
#: A validation loss counts as better when it is lower by this share.
MIN_RELATIVE_IMPROVEMENT = 1e-3


@dataclass
class SearchPoint:
    """One grid point and how it did on validation."""

    head_lr: float
    dropout: float
    val_loss: float = float("inf")
    val_accuracy: float = 0.0
    best_epoch: int = 0  # 1-based epoch of the lowest validation loss


@dataclass
class SearchResult:
    """The chosen values and every grid point's score (recorded in run.json)."""

    head_lr: float
    dropout: float
    points: list[SearchPoint] = field(default_factory=list)
    epochs: int = 0  # epochs the search ran
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "head_lr": self.head_lr,
            "dropout": self.dropout,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 3),
            "grid": [asdict(p) for p in self.points],
        }


def head_batch_size(num_train: int, batch_size: int) -> int:
    """The batch size of a head trained on cached features: the run's, or larger on large sets."""
    return max(int(batch_size), -(-int(num_train) // MAX_STEPS_PER_EPOCH))


def search_grid(
    optimizer: str, lrs: tuple[float, ...] | None = None, dropouts: tuple[float, ...] | None = None
) -> list[tuple[float, float]]:
    """The ``(learning rate, dropout)`` pairs to try; a fixed value is a one-element axis."""
    if lrs is None:
        factor = SGD_LR_FACTOR if optimizer == "sgd" else 1.0
        lrs = tuple(lr * factor for lr in ADAM_LEARNING_RATES)
    return list(itertools.product(lrs, dropouts if dropouts is not None else DROPOUTS))


def search_head(
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    *,
    num_classes: int,
    grid: list[tuple[float, float]],
    optimizer: str = "adam",
    hidden_units: int = 0,
    batch_size: int = 32,
    label_smoothing: float = 0.0,
    class_weights: np.ndarray | None = None,
    seed: int = 1337,
    epoch_cap: int = SEARCH_EPOCH_CAP,
    patience: int = SEARCH_PATIENCE,
    cancel: threading.Event | None = None,
) -> SearchResult:
    """Train one head per grid point on ``(x, y)``, score each on ``(xv, yv)``, return the best.

    Parameters
    ----------
    x, y, xv, yv
        Training and validation features ``(n, dim)`` and integer labels.
    num_classes
        Number of classes.
    grid
        ``(learning rate, dropout)`` pairs (:func:`search_grid`).
    optimizer, hidden_units, batch_size, label_smoothing, class_weights, seed
        As the run will train its head.
    epoch_cap, patience
        Epoch limit, and epochs without a better validation loss after which a head stops counting.
    cancel
        Checked after every epoch.

    Returns
    -------
    SearchResult

    Raises
    ------
    Cancelled
        When ``cancel`` is set.
    """
    t0 = time.perf_counter()
    heads = HeadStack(
        int(x.shape[1]), num_classes, [p[0] for p in grid], [p[1] for p in grid], hidden_units=hidden_units,
        optimizer=optimizer, label_smoothing=label_smoothing, seed=seed,
    )
    w_class = np.ones(num_classes, np.float32) if class_weights is None else np.asarray(class_weights, np.float32)
    w = w_class[y]
    rng = np.random.default_rng(seed)
    points = [SearchPoint(head_lr=float(lr), dropout=float(p)) for lr, p in grid]
    wait = np.zeros(len(grid), np.int64)
    in_stack = list(range(len(grid)))  # grid points whose heads still train, in the stack's order
    n, bs, epochs_run = len(x), max(1, int(batch_size)), 0
    for e in range(epoch_cap):
        if cancel is not None and cancel.is_set():
            raise Cancelled("training was cancelled while choosing the head's settings")
        order = rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            heads.step(x[idx], y[idx], w[idx])
        val_loss, val_acc = heads.loss_and_accuracy(xv, yv)
        epochs_run = e + 1
        going = np.ones(len(in_stack), bool)
        for j, i in enumerate(in_stack):
            pt = points[i]
            if np.isfinite(val_loss[j]) and val_loss[j] < pt.val_loss * (1.0 - MIN_RELATIVE_IMPROVEMENT):
                pt.val_loss, pt.val_accuracy, pt.best_epoch = float(val_loss[j]), float(val_acc[j]), epochs_run
                wait[i] = 0
            else:
                wait[i] += 1
                going[j] = wait[i] < patience
        if not going.any():
            break
        if not going.all():  # a stopped head no longer counts: stop training it, the others go faster
            heads.keep_only(going)
            in_stack = [i for j, i in enumerate(in_stack) if going[j]]
    best = min(points, key=lambda p: (round(p.val_loss, 4), -p.val_accuracy, p.head_lr, p.dropout))
    return SearchResult(best.head_lr, best.dropout, points, epochs_run, time.perf_counter() - t0)
