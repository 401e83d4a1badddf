"""Distributed fine-tuning with Ray Train's ``TensorflowTrainer`` (MultiWorkerMirroredStrategy).

Ray Train starts the workers and gives each a ``TF_CONFIG``; every worker builds a
``MultiWorkerMirroredStrategy``, loads the classifier (``.keras`` bytes from the driver, with its
trainable flags) under the strategy's scope and runs a custom training step. Three things found
when trying it decide the shape of this module:

- Keras 3's ``model.fit`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585,
  ray-project/ray#47464), so the step is written out: ``strategy.run`` of a GradientTape step,
  the Keras optimizer's ``apply_gradients`` (which all-reduces the gradients across workers),
  the loss averaged over the GLOBAL batch (``tf.nn.compute_average_loss``).
- ``experimental_distribute_dataset`` is given the dataset batched at the GLOBAL batch size and
  splits each batch among the replicas (data sharding: every worker reads the list in the same
  seeded order, so every worker runs the same number of steps).
- Ray sets ``TF_USE_LEGACY_KERAS=1`` on its TensorFlow workers and its Keras callbacks and
  ``TensorflowCheckpoint`` assume Keras 2: the variable is removed before TensorFlow is imported,
  none of those are used, and the final model travels back as a ``.keras`` file in a plain
  ``ray.train.Checkpoint``.

Progress, early stopping and cancel go through a small coordinator actor: rank 0 posts batch and
epoch results (and the weights and optimizer variables at each epoch end, for the driver's
checkpoints and best-weights tracking); the driver turns them into the same Keras callback calls a local run makes, so the
same events come out. To stop (cancel, early stopping) the driver raises a flag in the
coordinator; every worker reads it at every step and the flags are summed across workers inside
the step, so all workers stop at the same step (a worker leaving alone would leave the others
waiting in an all-reduce). Only the driver writes the run folder.

Resuming continues the optimizer too: the driver's checkpoints hold the workers' optimizer
variables (step count, moments), a resumed fit sends them to every worker, which loads them
before its first step, and the final Ray checkpoint keeps them beside ``model.keras``
(``optimizer.npz``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tlstudio.cluster import ClusterError

#: How often the driver collects progress from the coordinator.
POLL_SECONDS = 0.1
#: In a Ray checkpoint folder: the model, and the optimizer's variables beside it.
MODEL_FILE, OPTIMIZER_FILE = "model.keras", "optimizer.npz"


def optimizer_state(model: Any) -> list[np.ndarray] | None:
    """The variables of ``model``'s optimizer once it has taken a step (what a resume continues), else None."""
    from tlstudio.core.train.checkpoints import optimizer_arrays

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built or int(optimizer.iterations.numpy()) == 0:
        return None
    return optimizer_arrays(optimizer)


def put_optimizer_state(model: Any, arrays: Sequence[np.ndarray] | None) -> bool:
    """Load optimizer variables into ``model``'s optimizer; False (left as it was) when it has none or they do not fit."""
    from tlstudio.core.train.checkpoints import restore_optimizer

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not arrays:
        return False
    try:
        return restore_optimizer(optimizer, model.trainable_variables, [np.asarray(a) for a in arrays])
    except (ValueError, TypeError, RuntimeError):  # e.g. a loss-scaling optimizer's other variables
        return False


def save_training_checkpoint(folder: str, model: Any, optimizer: Any) -> None:
    """Write ``model.keras`` and ``optimizer``'s variables beside it (``optimizer.npz``) into ``folder``."""
    from pathlib import Path

    from tlstudio.core.train.checkpoints import optimizer_arrays, save_arrays

    model.save(os.path.join(folder, MODEL_FILE))
    save_arrays(Path(folder) / OPTIMIZER_FILE, optimizer_arrays(optimizer))


def load_training_checkpoint(folder: str, model: Any) -> bool:
    """Put the weights a :func:`save_training_checkpoint` folder holds into ``model``, and its optimizer
    variables into ``model.optimizer`` when the model has one; returns whether the optimizer was restored."""
    from pathlib import Path

    from tlstudio.cluster.features import model_from_bytes
    from tlstudio.core.train.checkpoints import load_arrays

    with open(os.path.join(folder, MODEL_FILE), "rb") as f:
        model.set_weights(model_from_bytes(f.read()).get_weights())
    path = Path(folder) / OPTIMIZER_FILE
    return put_optimizer_state(model, load_arrays(path)) if path.is_file() else False


class Coordinator:
    """A Ray actor between the driver and the workers: progress out, the stop flag in."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, ...]] = []
        self.stop = False

    def post(self, *message: Any) -> None:
        self.messages.append(message)

    def drain(self) -> list[tuple[Any, ...]]:
        out, self.messages = self.messages, []
        return out

    def request_stop(self) -> None:
        self.stop = True

    def stop_requested(self) -> bool:
        return self.stop


def synchronize_batchnorm(model: Any) -> int:
    """Make every BatchNormalization layer use the GLOBAL batch's statistics; returns how many.

    Each replica would otherwise normalise with, and fold into its moving mean and variance, the
    statistics of its own share of the batch, so the replicas' moving statistics drift apart
    (the trainable weights stay equal: their gradients are all-reduced). Synchronised, they
    stay identical, and equal to what one process training on the whole batch computes.
    """
    import keras

    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def fine_tune_loop(cfg: dict[str, Any]) -> None:
    """The Ray Train worker function (runs on every worker)."""
    # Before TensorFlow is imported: Ray's TensorFlow backend asks for Keras 2.
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    import keras
    import ray
    import ray.train
    import tensorflow as tf

    from tlstudio.cluster.features import model_from_bytes
    from tlstudio.core.data.pipeline import FileSet, SkipLog, make_dataset
    from tlstudio.core.train.checkpoints import optimizer_arrays, restore_optimizer
    from tlstudio.core.train.device import make_optimizer
    from tlstudio.core.train.feature_cache import weights_digest

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rank = ray.train.get_context().get_world_rank()
    coord = cfg["coordinator"][0]
    root = os.environ.get("TLSTUDIO_DATA_ROOT") or cfg["root"]
    k = int(cfg["num_classes"])
    global_batch = int(cfg["batch_size"])
    keras.utils.set_random_seed(int(cfg["seed"]))
    with strategy.scope():
        model = model_from_bytes(ray.get(cfg["model"][0]))
        optimizer = make_optimizer(cfg["optimizer"], float(cfg["lr"]))
        optimizer.build(model.trainable_variables)
        # A resumed fit continues the optimizer the driver's checkpoint saved (step count, moments).
        saved = ray.get(cfg["optimizer_state"][0]) if cfg.get("optimizer_state") else None
        restored = bool(saved) and restore_optimizer(optimizer, model.trainable_variables, saved)
    if rank == 0:
        coord.post.remote("optimizer", restored, int(optimizer.iterations.numpy()))
    synchronize_batchnorm(model)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=float(cfg["label_smoothing"]), reduction=None)
    skip_log = SkipLog()

    def files(part: dict[str, Any]) -> FileSet:
        rels = list(part["rel"])
        return FileSet([os.path.join(root, r) for r in rels], rels, np.asarray(part["labels"], np.int32))

    def onehot(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        return x, tf.one_hot(y, k), w

    train_fs = files(cfg["train"])
    train_ds = make_dataset(
        train_fs, image_size=int(cfg["image_size"]), resize_policy=cfg["resize_policy"], batch_size=global_batch,
        shuffle=True, seed=int(cfg["seed"]), sample_weights=np.asarray(cfg["train"]["weights"], np.float32),
        skip_log=skip_log,
    ).map(onehot)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist_ds = strategy.experimental_distribute_dataset(train_ds.with_options(options))
    steps = int(train_ds.cardinality())
    variables = model.trainable_variables

    @tf.function
    def train_step(inputs: Any, stop: Any) -> Any:
        def step(x: Any, y: Any, w: Any, stop: Any) -> Any:
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = loss_fn(y, probs)
                loss = tf.nn.compute_average_loss(per_example, sample_weight=w, global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            hits = tf.cast(tf.equal(tf.argmax(probs, -1), tf.argmax(y, -1)), tf.float32)
            n = tf.cast(tf.shape(x)[0], tf.float32)
            return loss, tf.reduce_sum(hits * w), tf.reduce_sum(w), n, stop

        x, y, w = inputs
        per_replica = strategy.run(step, args=(x, y, w, stop))
        # Summed over every replica of every worker: the same numbers (and stop flag) everywhere.
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica]

    val_fs = files(cfg["val"])
    smoothing = float(cfg["label_smoothing"])

    def validate() -> tuple[float, float]:
        ds = make_dataset(val_fs, image_size=int(cfg["image_size"]), resize_policy=cfg["resize_policy"],
                          batch_size=max(32, global_batch), skip_log=skip_log)
        loss_sum = hits = weight = 0.0
        for x, y, w in ds:
            probs = np.asarray(model(x, training=False), np.float64)
            y, w = np.asarray(y), np.asarray(w, np.float64)
            target = np.eye(k)[y] * (1.0 - smoothing) + smoothing / k
            loss_sum += float((-np.sum(target * np.log(np.clip(probs, 1e-7, 1.0)), axis=1) * w).sum())
            hits += float(((probs.argmax(1) == y) * w).sum())
            weight += float(w.sum())
        return (loss_sum / weight, hits / weight) if weight else (float("nan"), 0.0)

    stopped = False
    for epoch in range(int(cfg["initial_epoch"]), int(cfg["epochs"])):
        t0 = time.perf_counter()
        loss_sum = seen = correct = weight = 0.0
        for batch, inputs in enumerate(dist_ds):
            flag = tf.constant(1.0 if ray.get(coord.stop_requested.remote()) else 0.0)
            value, c, sw, n, stop = (float(v) for v in train_step(inputs, flag))
            # ``value`` is the global batch's mean loss (each replica's share summed).
            loss_sum += value * n
            seen += n
            correct += c
            weight += sw
            if rank == 0:
                logs = {"loss": loss_sum / max(seen, 1.0), "accuracy": correct / weight if weight else 0.0}
                coord.post.remote("batch", epoch, batch, steps, logs)
            if stop > 0:
                stopped = True
                break
        if stopped:
            break
        if rank == 0:
            val_loss, val_acc = validate()
            logs = {"loss": loss_sum / max(seen, 1.0), "accuracy": correct / weight if weight else 0.0,
                    "val_loss": val_loss, "val_accuracy": val_acc, "seconds": time.perf_counter() - t0}
            skipped = [(s.path, s.reason) for s in skip_log.drain()]
            coord.post.remote("epoch", epoch, logs, [np.asarray(v) for v in model.get_weights()], skipped,
                              optimizer_arrays(optimizer))
    # Per weight, so a test (or a person) can say which variable drifted if replicas ever differ.
    coord.post.remote("digest", rank, [(v.path, weights_digest([np.asarray(v)])) for v in model.weights])
    with tempfile.TemporaryDirectory(prefix="tlstudio-ckpt-") as tmp:
        checkpoint = None
        if rank == 0:
            save_training_checkpoint(tmp, model, optimizer)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({"stopped": stopped}, checkpoint=checkpoint)


class RayFineTuner:
    """Fine-tunes a classifier on the cluster of a :class:`~tlstudio.cluster.session.ClusterSession`.

    Parameters
    ----------
    session
        The open session (its storage folder receives Ray Train's checkpoints).
    workers
        Training workers (default: one per GPU of the cluster, else one per ``cpus_per_worker`` CPUs).
    cpus_per_worker
        CPUs each worker reserves.
    """

    name = "ray"

    def __init__(self, session: Any, workers: int | None = None, cpus_per_worker: float = 1.0) -> None:
        self.session = session
        self.workers = workers
        self.cpus_per_worker = float(cpus_per_worker)
        self.digests: dict[int, list[tuple[str, str]]] = {}  # per rank: (weight path, digest)
        #: Of the last fit: whether the workers started from a saved optimizer state, and its step count.
        self.optimizer_start: tuple[bool, int] | None = None
        #: Of the last fit, per epoch: the workers' optimizer step count at its end (as the driver's checkpoint saves it).
        self.epoch_iterations: dict[int, int] = {}

    def scaling(self) -> tuple[int, bool]:
        import ray

        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        if self.workers:
            return int(self.workers), gpus >= self.workers
        if gpus:
            return gpus, True
        return max(1, int(res.get("CPU", 1) // self.cpus_per_worker)), False

    def fit(
        self,
        model: Any,
        *,
        root: str,
        train: tuple[list[str], np.ndarray, np.ndarray],
        val: tuple[list[str], np.ndarray],
        num_classes: int,
        epochs: int,
        initial_epoch: int,
        steps: int,
        batch_size: int,
        lr: float,
        optimizer: str,
        label_smoothing: float,
        seed: int,
        image_size: int,
        resize_policy: str,
        callbacks: Sequence[Any],
        cancel: threading.Event,
        skip_log: Any = None,
    ) -> None:
        """Train ``model`` on the cluster, driving ``callbacks`` as ``model.fit`` would.

        ``train`` is ``(dataset-relative paths, labels, sample weights)``, ``val`` ``(paths, labels)``;
        ``steps`` is the number of batches per epoch given to the callbacks' ``set_params``.
        At the end ``model`` holds the trained weights (also when stopped early or cancelled), and
        ``model.optimizer`` (when compiled) the workers' optimizer variables; an optimizer that has
        already taken steps (a resumed run's, restored from its checkpoint) is where the workers start.
        The callbacks (the run's events and cancel callbacks) get ``on_epoch_end`` with the weights
        of that epoch already in ``model``, so checkpoints and best-weights tracking work as locally.
        """
        import keras
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer

        from tlstudio.cluster.features import model_to_bytes

        workers, use_gpu = self.scaling()
        coord = ray.remote(num_cpus=0)(Coordinator).remote()
        model_ref = ray.put(model_to_bytes(model))
        saved = optimizer_state(model)
        cfg = {
            "coordinator": [coord],
            "model": [model_ref],
            "optimizer_state": [ray.put(saved)] if saved else None,
            "root": root,
            "train": {"rel": list(train[0]), "labels": np.asarray(train[1]).tolist(),
                      "weights": np.asarray(train[2], np.float32).tolist()},
            "val": {"rel": list(val[0]), "labels": np.asarray(val[1]).tolist()},
            "num_classes": int(num_classes), "epochs": int(epochs), "initial_epoch": int(initial_epoch),
            "batch_size": int(batch_size), "lr": float(lr), "optimizer": optimizer,
            "label_smoothing": float(label_smoothing), "seed": int(seed), "image_size": int(image_size),
            "resize_policy": resize_policy,
        }
        storage = self.session.storage_dir
        trainer = TensorflowTrainer(
            fine_tune_loop,
            train_loop_config=cfg,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": self.cpus_per_worker}),
            run_config=RunConfig(name=f"tlstudio-fine-tune-{int(time.time())}",
                                 storage_path=storage) if storage else None,
        )
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = trainer.fit()
            except BaseException as exc:  # noqa: BLE001 - reported in the driver's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="tlstudio-ray-fine-tune", daemon=True)
        callback = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=int(epochs), steps=int(steps), verbose=0)
        model.stop_training = False
        callback.on_train_begin()
        thread.start()
        state = {"epoch": None, "stop_sent": False}
        self.digests, self.optimizer_start, self.epoch_iterations = {}, None, {}
        try:
            while True:
                alive = thread.is_alive()
                for message in ray.get(coord.drain.remote()):
                    self._handle(message, model, callback, state, skip_log)
                if (cancel.is_set() or model.stop_training) and not state["stop_sent"]:
                    coord.request_stop.remote()
                    state["stop_sent"] = True
                if not alive:
                    break
                time.sleep(POLL_SECONDS)
            thread.join()
        finally:
            if thread.is_alive():  # the driver itself failed: stop the workers before leaving
                coord.request_stop.remote()
                thread.join(timeout=30)
        if "error" in outcome:
            exc = outcome["error"]
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"fine-tuning on the cluster failed: {first}") from exc
        result = outcome["result"]
        if result.checkpoint is not None:
            with result.checkpoint.as_directory() as folder:
                load_training_checkpoint(folder, model)
        callback.on_train_end()
        ray.kill(coord)

    def _handle(self, message: tuple[Any, ...], model: Any, callback: Any, state: dict[str, Any], skip_log: Any) -> None:
        kind = message[0]
        if kind == "batch":
            _, epoch, batch, _steps, logs = message
            if state["epoch"] != epoch:
                state["epoch"] = epoch
                callback.on_epoch_begin(epoch)
            callback.on_train_batch_end(batch, logs)
        elif kind == "epoch":
            _, epoch, logs, weights, skipped, optimizer = message
            if skip_log is not None:
                for path, reason in skipped:
                    skip_log.add(path, reason)
            if state["epoch"] != epoch:
                state["epoch"] = epoch
                callback.on_epoch_begin(epoch)
            model.set_weights(weights)
            if put_optimizer_state(model, optimizer):  # so the run's checkpoint of this epoch holds it
                self.epoch_iterations[int(epoch)] = int(model.optimizer.iterations.numpy())
            callback.on_epoch_end(epoch, logs)
        elif kind == "digest":
            self.digests[int(message[1])] = message[2]
        elif kind == "optimizer":
            self.optimizer_start = (bool(message[1]), int(message[2]))
