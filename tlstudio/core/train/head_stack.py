"""Heads on cached features trained in numpy: one or many at once, with no graph to trace.

On cached features a head is a tiny network (dropout, an optional hidden ReLU layer, a softmax
layer), and an epoch is a few dozen small matrix products: tracing a TensorFlow step costs more
than training to convergence. :class:`HeadStack` holds ``g`` such heads side by side (the grid of
the automatic search, or the one head of a run), trains them on the same batches with Keras's own
update rules (Adam, AdamW, SGD with momentum; ``CategoricalCrossentropy`` with label smoothing and
sample weights, "sum over batch size"), and hands each head's weights over in the order of
:func:`tlstudio.core.models.head.build_head`'s ``get_weights()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Keras's defaults, so the learning rates chosen here mean the same with a Keras optimizer.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
SGD_MOMENTUM = 0.9
ADAMW_WEIGHT_DECAY = 0.004


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


class HeadStack:
    """``g`` heads ``features -> dropout -> [dense relu -> dropout] -> dense softmax``, trained together.

    Parameters
    ----------
    feature_dim, num_classes
        Input and output sizes.
    learning_rates, dropouts
        One value per head.
    hidden_units
        Width of the hidden layer (0: none).
    optimizer
        "adam", "adamw" or "sgd".
    label_smoothing
        As ``keras.losses.CategoricalCrossentropy``.
    seed
        Seeds the initial hidden weights and the dropout masks.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        learning_rates: Sequence[float],
        dropouts: Sequence[float],
        *,
        hidden_units: int = 0,
        optimizer: str = "adam",
        label_smoothing: float = 0.0,
        seed: int = 1337,
    ) -> None:
        g = len(learning_rates)
        self.g, self.k = g, int(num_classes)
        self.lr = np.asarray(learning_rates, np.float32).reshape(g, 1, 1)
        self.keep = (1.0 - np.asarray(dropouts, np.float32)).reshape(g, 1, 1)
        self.hidden = int(hidden_units)
        self.optimizer = optimizer
        self.smoothing = float(label_smoothing)
        self.rng = np.random.default_rng(seed)
        self.params: list[np.ndarray] = []
        if self.hidden > 0:
            limit = np.sqrt(6.0 / (feature_dim + self.hidden))  # Keras's glorot_uniform
            w1 = self.rng.uniform(-limit, limit, size=(1, feature_dim, self.hidden)).astype(np.float32)
            self.params += [np.repeat(w1, g, axis=0), np.zeros((g, 1, self.hidden), np.float32)]
        out_in = self.hidden or feature_dim
        # The softmax layer starts at zero: uniform predictions (see trainer.zero_output_layer).
        self.params += [np.zeros((g, out_in, self.k), np.float32), np.zeros((g, 1, self.k), np.float32)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    # -- forward -----------------------------------------------------------------------------
    def _drop(self, h: np.ndarray) -> np.ndarray:
        keep = self.keep
        if np.all(keep >= 1.0):
            return np.broadcast_to(h, (self.g, *h.shape[-2:])) if h.ndim == 2 else h
        u = self.rng.random(h.shape[-2:], dtype=np.float32)  # one draw shared by the heads: cheaper
        return np.where(u[None] < keep, h / keep, np.float32(0.0))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Softmax outputs ``(g, n, k)`` for features ``x`` ``(n, dim)``, without dropout."""
        h = x[None].astype(np.float32, copy=False)
        if self.hidden > 0:
            h = np.maximum(h @ self.params[0] + self.params[1], 0.0)
        return _softmax(h @ self.params[-2] + self.params[-1])

    def _target(self, y: np.ndarray) -> np.ndarray:
        t = np.full((len(y), self.k), self.smoothing / self.k, np.float32)
        t[np.arange(len(y)), y] += 1.0 - self.smoothing
        return t

    def loss_and_accuracy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per head: mean cross-entropy (with label smoothing) and accuracy on ``(x, y)``."""
        p = self.probabilities(x)
        loss = -(self._target(y)[None] * np.log(np.clip(p, 1e-7, 1.0))).sum(axis=-1).mean(axis=1)
        return loss, (p.argmax(axis=-1) == y[None]).mean(axis=1)

    # -- training ----------------------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One update of every head on a batch; returns per-head (loss, weighted number correct)."""
        b = len(y)
        x = x.astype(np.float32, copy=False)
        h0 = self._drop(x[None])
        if self.hidden > 0:
            pre = h0 @ self.params[0] + self.params[1]
            h1 = np.maximum(pre, 0.0)
            h1d = self._drop(h1)
            keep_mask = h1d != 0
        else:
            h1d = h0
        p = _softmax(h1d @ self.params[-2] + self.params[-1])
        target = self._target(y)
        ce = -(target[None] * np.log(np.clip(p, 1e-7, 1.0))).sum(axis=-1)  # (g, b)
        loss = (ce * w[None]).sum(axis=1) / b
        correct = ((p.argmax(axis=-1) == y[None]) * w[None]).sum(axis=1)
        d_logits = (p - target[None]) * (w[None, :, None] / b)  # (g, b, k)
        grads = [np.swapaxes(h1d, 1, 2) @ d_logits, d_logits.sum(axis=1, keepdims=True)]
        if self.hidden > 0:
            d_h = d_logits @ np.swapaxes(self.params[-2], 1, 2)
            d_pre = np.where(keep_mask & (pre > 0), d_h / self.keep, np.float32(0.0))
            grads = [np.swapaxes(h0, 1, 2) @ d_pre, d_pre.sum(axis=1, keepdims=True), *grads]
        self._apply(grads)
        return loss, correct

    def _apply(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        lr = self.lr
        if self.optimizer == "sgd":
            for p, m, g in zip(self.params, self.m, grads, strict=True):
                m *= SGD_MOMENTUM
                m -= lr * g
                p += m
            return
        alpha = lr * (np.sqrt(1.0 - BETA_2**self.t) / (1.0 - BETA_1**self.t))
        for p, m, v, g in zip(self.params, self.m, self.v, grads, strict=True):
            if self.optimizer == "adamw":
                p -= p * (ADAMW_WEIGHT_DECAY * lr)
            m += (g - m) * (1.0 - BETA_1)
            v += (g * g - v) * (1.0 - BETA_2)
            p -= alpha * m / (np.sqrt(v) + EPSILON)

    def keep_only(self, heads: np.ndarray) -> None:
        """Drop every head not selected by the boolean mask ``heads``; the others train on unchanged
        (the dropout draws are shared by all heads, so they do not depend on how many there are)."""
        heads = np.asarray(heads, bool)
        self.params = [p[heads] for p in self.params]
        self.m = [m[heads] for m in self.m]
        self.v = [v[heads] for v in self.v]
        self.lr, self.keep = self.lr[heads], self.keep[heads]
        self.g = int(heads.sum())

    def weights(self, i: int = 0) -> list[np.ndarray]:
        """Head ``i``'s weights in Keras order (``[W, b]`` per dense layer)."""
        # params alternate kernel (g, in, out) and bias (g, 1, out)
        return [p[i].copy() if j % 2 == 0 else p[i, 0].copy() for j, p in enumerate(self.params)]

    def set_weights(self, i: int, weights: Sequence[np.ndarray]) -> None:
        """Load head ``i`` from Keras-ordered weights (e.g. a checkpoint)."""
        for p, w in zip(self.params, weights, strict=True):
            p[i] = np.asarray(w, np.float32).reshape(p.shape[1:])
