"""HeadStack: heads trained in numpy follow Keras's own update rules, so chosen settings carry over."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.train.head_stack import HeadStack


@pytest.mark.parametrize(("optimizer", "hidden", "smoothing"), [("adam", 0, 0.0), ("sgd", 0, 0.1), ("adamw", 5, 0.0)])
def test_numpy_heads_match_a_keras_head_step_by_step(optimizer, hidden, smoothing):
    import keras

    from tlstudio.core.models.head import build_head
    from tlstudio.core.train.device import make_optimizer
    from tlstudio.core.train.head_fit import zero_output_layer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 7)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    w = rng.uniform(0.5, 2.0, 24).astype(np.float32)
    lr = 0.01
    keras.utils.set_random_seed(0)
    head = build_head(7, TrainConfig(dropout=0.0, hidden_units=hidden), 3)
    zero_output_layer(head)
    stack = HeadStack(7, 3, [lr, lr * 3], [0.0, 0.0], hidden_units=hidden, optimizer=optimizer, label_smoothing=smoothing)
    stack.set_weights(0, head.get_weights())
    head.compile(optimizer=make_optimizer(optimizer, lr),
                 loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing))
    for start in range(0, 24, 8):
        sl = slice(start, start + 8)
        head.train_on_batch(x[sl], np.eye(3, dtype=np.float32)[y[sl]], sample_weight=w[sl])
        stack.step(x[sl], y[sl], w[sl])
    for ours, theirs in zip(stack.weights(0), head.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=2e-5)
    # the second head (three times the learning rate) moved further from its zero start
    assert np.abs(stack.weights(1)[-2]).sum() > np.abs(stack.weights(0)[-2]).sum()
    probs = stack.probabilities(x)
    assert probs.shape == (2, 24, 3) and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_dropout_is_inverted_and_off_at_inference():
    x = np.ones((4, 1000), np.float32)
    stack = HeadStack(1000, 2, [0.1], [0.5], seed=3)
    dropped = stack._drop(x[None])
    kept = dropped[dropped != 0]
    assert 0.4 < len(kept) / dropped.size < 0.6 and np.allclose(kept, 2.0)
    assert np.allclose(stack.probabilities(x), 0.5)  # zero-started output, no dropout when predicting
