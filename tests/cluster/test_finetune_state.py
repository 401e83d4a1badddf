"""The optimizer state of a cluster fine-tune survives a checkpoint and a resume (no Ray needed here).

A real Keras model and optimizer take real steps; the checkpoint folder is what a worker writes
into a ``ray.train.Checkpoint``, and the epoch message is what rank 0 posts to the driver.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tlstudio.cluster import finetune
from tlstudio.core.train.checkpoints import optimizer_arrays


def _stepped_model(steps: int, seed: int = 0):
    import keras
    import tensorflow as tf

    from tlstudio.core.train.device import make_optimizer

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=make_optimizer("adam", 0.01), loss="categorical_crossentropy")
    x = np.random.default_rng(seed).normal(size=(8, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return model


def _fresh_twin(model):
    import keras

    from tlstudio.core.train.device import make_optimizer

    twin = keras.models.clone_model(model)
    twin.compile(optimizer=make_optimizer("adam", 0.01), loss="categorical_crossentropy")
    return twin


def test_the_checkpoint_folder_keeps_the_optimizer_beside_the_model(tmp_path):
    model = _stepped_model(5)
    finetune.save_training_checkpoint(str(tmp_path), model, model.optimizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [finetune.MODEL_FILE, finetune.OPTIMIZER_FILE]

    resumed = _fresh_twin(model)
    assert finetune.load_training_checkpoint(str(tmp_path), resumed)
    assert int(resumed.optimizer.iterations.numpy()) == 5  # the step count continues, not from zero
    for a, b in zip(optimizer_arrays(resumed.optimizer), optimizer_arrays(model.optimizer), strict=True):
        np.testing.assert_array_equal(a, b)  # moments too
    for a, b in zip(resumed.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_model_without_an_optimizer_gets_the_weights_only(tmp_path):
    import keras

    model = _stepped_model(2)
    finetune.save_training_checkpoint(str(tmp_path), model, model.optimizer)
    bare = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])  # never compiled
    assert not finetune.load_training_checkpoint(str(tmp_path), bare)
    np.testing.assert_array_equal(bare.get_weights()[0], model.get_weights()[0])


def test_only_an_optimizer_that_has_stepped_is_sent_to_the_workers():
    assert finetune.optimizer_state(_fresh_twin(_stepped_model(0))) is None  # a fresh run: workers start fresh
    saved = finetune.optimizer_state(_stepped_model(3))
    assert saved is not None and int(saved[0]) == 3


def test_the_optimizer_state_that_does_not_fit_is_refused():
    model = _stepped_model(1)
    other = _fresh_twin(model)
    assert not finetune.put_optimizer_state(other, optimizer_arrays(model.optimizer)[:2])
    assert int(other.optimizer.iterations.numpy()) == 0


def test_the_driver_puts_each_epochs_optimizer_into_its_model_before_the_checkpoint(tmp_path):
    """Rank 0's epoch message carries the optimizer: the run's checkpoint of that epoch saves it."""
    import keras

    worker = _stepped_model(7)
    driver = _fresh_twin(worker)
    seen = {}

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = optimizer_arrays(self.model.optimizer)

    callbacks = keras.callbacks.CallbackList([Checkpoint()], model=driver, epochs=3, steps=1, verbose=0)
    tuner = finetune.RayFineTuner(SimpleNamespace(storage_dir=None))
    state = {"epoch": None}
    tuner._handle(("optimizer", True, 4), driver, callbacks, state, None)
    message = ("epoch", 2, {"loss": 0.5}, worker.get_weights(), [], optimizer_arrays(worker.optimizer))
    tuner._handle(message, driver, callbacks, state, None)
    assert tuner.optimizer_start == (True, 4)
    assert tuner.epoch_iterations == {2: 7} and int(seen[2][0]) == 7


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_other_optimizers_round_trip(tmp_path, name):
    import keras

    from tlstudio.core.train.device import make_optimizer

    model = _stepped_model(0)
    model.compile(optimizer=make_optimizer(name, 0.01), loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(9)
    finetune.save_training_checkpoint(str(tmp_path), model, model.optimizer)
    twin = keras.models.clone_model(model)
    twin.compile(optimizer=make_optimizer(name, 0.01), loss="categorical_crossentropy")
    assert finetune.load_training_checkpoint(str(tmp_path), twin)
    assert int(twin.optimizer.iterations.numpy()) == 9
