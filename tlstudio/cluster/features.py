"""Feature extraction on Ray: the frozen base runs in a pool of actors, the driver keeps the cache.

Ray Data reads the list of files still missing from the cache and sends batches of it through
``map_batches`` to an actor pool (``compute=ActorPoolStrategy``): each actor loads the feature
model once, from bytes in Ray's object store, then decodes its files with tlstudio's own
decoder and runs the model exactly as a local run does (same decoder, same float32 input, same
traced call), so the features are the same numbers. Batches of features stream back to the
driver as they are done; the driver writes them into tlstudio's cache format (shards of
:class:`~tlstudio.core.train.feature_cache.FeatureCache`), so a later run, local or not, finds
them all there, and emits the usual cache progress.

Cancel: the driver stops consuming and closes the stream; Ray Data then stops its executor and
kills the pool's actors, within seconds.

The workers read the image files themselves: every node must see the dataset, at the driver's
path or at the folder its ``TLSTUDIO_DATA_ROOT`` names (the cache keys use dataset-relative paths,
so the mount point may differ).
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

#: Below this many images a cluster is mostly start-up: warn (on 397 photos a local Ray cluster
#: of two workers took 72 s against 39 s for one process, see docs/scaling-out.md).
SMALL_JOB = 5000


def model_to_bytes(model: Any) -> bytes:
    """A Keras model as the bytes of a ``.keras`` file (what actors load)."""
    with tempfile.TemporaryDirectory(prefix="tlstudio-") as tmp:
        path = os.path.join(tmp, "features.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(data: bytes) -> Any:
    """The Keras model saved by :func:`model_to_bytes` (safe mode: no code runs from the file)."""
    import keras

    with tempfile.TemporaryDirectory(prefix="tlstudio-") as tmp:
        path = os.path.join(tmp, "features.keras")
        with open(path, "wb") as f:
            f.write(data)
        return keras.saving.load_model(path, compile=False, safe_mode=True)


def _prepare_worker_tensorflow() -> None:
    """Keras 3 on the worker, and as many TensorFlow threads as the CPUs Ray gave it."""
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    import tensorflow as tf

    cpus = 0
    try:
        import ray

        if ray.is_initialized():  # asking the runtime context otherwise starts a Ray instance
            cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 0))
    except Exception:  # noqa: BLE001 - outside a Ray worker
        cpus = 0
    if cpus > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cpus)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, cpus))
        except RuntimeError:
            pass  # TensorFlow already started in this process


class FeatureActor:
    """Runs on a Ray worker: turns a batch of ``{"rel", "key"}`` into features.

    Parameters
    ----------
    model
        The feature model as ``.keras`` bytes, or a one-item list of an ``ObjectRef`` to them.
    root
        The dataset folder as the driver sees it; ``$TLSTUDIO_DATA_ROOT`` on the worker wins.
    image_size, resize_policy
        As in the local pipeline.
    """

    def __init__(self, model: Any, root: str, image_size: int, resize_policy: str) -> None:
        _prepare_worker_tensorflow()
        import tensorflow as tf

        if isinstance(model, list | tuple):  # [ObjectRef]: nested, so Ray neither inlines nor pins it
            import ray

            model = ray.get(model[0])
        self.model = model_from_bytes(bytes(model))
        self.root = os.environ.get("TLSTUDIO_DATA_ROOT") or root
        self.size = int(image_size)
        self.policy = resize_policy
        fm = self.model
        spec = tf.TensorSpec((None, self.size, self.size, 3), tf.float32)
        # The same traced call as the local cache fill (tlstudio.core.train.trainer.fill_cache).
        self.fn = tf.function(lambda x: fm(x, training=False), input_signature=[spec])
        self.dim = int(self.model.outputs[0].shape[-1])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from tlstudio.core.data import imageio
        from tlstudio.core.data.pipeline import decode_file

        rels = [str(r) for r in batch["rel"]]
        images = np.zeros((len(rels), self.size, self.size, 3), np.uint8)
        ok = np.zeros(len(rels), bool)
        reasons = [""] * len(rels)
        for i, rel in enumerate(rels):
            path = os.path.join(self.root, rel)
            try:
                images[i] = decode_file(path, self.size, self.policy)
                ok[i] = True
            except Exception as exc:  # one bad file skips that file, as in the local pipeline
                reason = str(exc) if isinstance(exc, imageio.ImageError) else imageio.describe_error(exc)
                prefix = f"{os.path.basename(path)}: "
                reasons[i] = reason[len(prefix) :] if reason.startswith(prefix) else reason
        feats = np.asarray(self.fn(images.astype(np.float32)), dtype=np.float32)
        return {
            "key": np.asarray(batch["key"]),
            "rel": np.asarray(rels),
            "ok": ok,
            "reason": np.asarray(reasons),
            "features": feats,
        }


class RayFeatureEngine:
    """The ``features_engine`` that :func:`tlstudio.core.train.trainer.train` uses on a cluster.

    Parameters
    ----------
    actors
        Size of the actor pool (default: one per CPU of the cluster, or one per GPU when it has GPUs).
    cpus_per_actor
        CPUs each actor reserves.
    """

    name = "ray"

    def __init__(self, actors: int | None = None, cpus_per_actor: float = 1.0) -> None:
        self.actors = actors
        self.cpus_per_actor = float(cpus_per_actor)

    def pool_size(self) -> tuple[int, float]:
        """``(actors, gpus per actor)`` for this cluster."""
        import ray

        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        if self.actors:
            return int(self.actors), 1.0 if gpus >= self.actors else 0.0
        if gpus:
            return gpus, 1.0
        return max(1, int(res.get("CPU", 1) // self.cpus_per_actor)), 0.0

    def extract(
        self,
        feature_model: Any,
        root: str,
        items: Sequence[tuple[str, str]],
        *,
        image_size: int,
        resize_policy: str,
        batch_size: int,
        cancel: threading.Event,
        log: Any = None,
    ) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
        """Features of ``items`` (``(dataset-relative path, file key)``), batch by batch as they finish.

        Yields
        ------
        keys, features, skipped
            File keys and float32 features ``(len(keys), D)`` of the files that decoded, and
            ``(path, reason)`` of those that did not. Order across batches is not the input's.
        """
        import ray
        import ray.data

        if len(items) == 0 or cancel.is_set():
            return
        actors, gpus = self.pool_size()
        if log is not None and len(items) < SMALL_JOB:
            log(
                f"{len(items)} image(s) is a small job for a cluster: starting TensorFlow in each of "
                f"{actors} worker(s) may take longer than computing the features here",
                "warning",
            )
        model_ref = ray.put(model_to_bytes(feature_model))
        rows = [{"rel": rel, "key": key} for rel, key in items]
        # Enough blocks that every actor gets work, small enough to report progress often.
        blocks = max(actors, min(len(rows) // max(batch_size, 1) + 1, 4 * actors * 8))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        ds = ds.map_batches(
            FeatureActor,
            fn_constructor_kwargs={
                "model": [model_ref],
                "root": str(root),
                "image_size": int(image_size),
                "resize_policy": resize_policy,
            },
            batch_size=int(batch_size),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=self.cpus_per_actor,
            num_gpus=gpus,
        )
        # Batches are pulled in a thread, so a cancel is seen at once even while the first
        # batch is still minutes away (actors starting TensorFlow on a busy cluster).
        batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        stop = threading.Event()
        pump = threading.Thread(target=_pump, args=(ds, batches, stop), name="tlstudio-ray-features", daemon=True)
        pump.start()
        try:
            while not cancel.is_set():
                try:
                    out = batches.get(timeout=0.1)
                except queue.Empty:
                    continue
                if out is _DONE:
                    break
                if isinstance(out, BaseException):
                    raise out
                ok = np.asarray(out["ok"], bool)
                keys = [str(k) for k in np.asarray(out["key"])[ok]]
                skipped = [
                    (str(r), str(why)) for r, why in zip(out["rel"][~ok], out["reason"][~ok], strict=True)
                ]
                yield keys, np.asarray(out["features"], np.float32)[ok], skipped
        finally:
            stop.set()  # the pump closes the stream, which stops Ray Data's executor and actors
            del model_ref


_DONE = object()


def _pump(ds: Any, batches: queue.Queue[Any], stop: threading.Event) -> None:
    """Move Ray Data's output batches into ``batches`` until done or ``stop`` is set."""
    stream = iter(ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1))
    try:
        for out in stream:
            while not stop.is_set():
                try:
                    batches.put(out, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        batches.put(_DONE)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
        if not stop.is_set():
            batches.put(exc)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - Ray may already be shut down
                pass
