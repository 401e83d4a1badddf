"""Head training on features streamed from memory-mapped cache shards: peak memory and time per epoch.

Writes synthetic cache shards once (tlstudio's own format: float16 ``.npy`` shards of 2,048 rows
with their JSON index, as the cache fill writes them), then trains a linear softmax head for one
epoch in a fresh process per size and prints its peak resident memory (``ru_maxrss``) and the
epoch's wall time, two ways: the Keras step over a ``tf.data`` stream (``train_head_streaming``), and
the path a run's head phase takes above its memory budget (the numpy head over
``iterate_batches``, ``head_fit.fit_numpy_batches``). At the smallest size it also trains the same head the in-memory way (every
feature copied into one float32 array, as the head phase does for small datasets) and prints
the ratios.

    python benchmarks/streaming_head.py                       # 100k and 1M rows of 1,280 features
    python benchmarks/streaming_head.py --rows 100000 --dir /big/disk/bench

1M x 1,280 float16 is 2.6 GB on disk (float32 would be 5.1 GB): the script checks the free
space first and says what it writes. The shards stay in ``--dir`` for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DIM = 1280
CLASSES = 10
SHARD_ROWS = 2048  # the cache fill's flush size


def key_of(i: int) -> str:
    return f"row{i:08d}"


def generate(folder: Path, rows: int) -> None:
    """Shards of ``rows`` synthetic features (class centre + noise), written once."""
    from tlstudio.core.train.feature_cache import FeatureCache

    done = folder / f"done-{rows}"
    if done.exists():
        print(f"  shards for {rows:,} rows already in {folder}")
        return
    need = rows * DIM * 2 * 1.05
    free = shutil.disk_usage(folder).free
    if free < need + 2e9:
        sys.exit(f"not enough disk space in {folder}: {need / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free")
    print(f"  writing {rows:,} rows x {DIM} float16 ({rows * DIM * 2 / 1e9:.2f} GB) to {folder}", flush=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLASSES, DIM)).astype(np.float32)
    cache = FeatureCache(f"bench{rows}".ljust(40, "0"), root=folder)
    t0 = time.perf_counter()
    for start in range(0, rows, SHARD_ROWS):
        n = min(SHARD_ROWS, rows - start)
        labels = np.arange(start, start + n) % CLASSES
        feats = centres[labels] + rng.standard_normal((n, DIM), dtype=np.float32) * 2.0
        cache.store([key_of(i) for i in range(start, start + n)], feats)
    done.write_text("ok")
    print(f"  written in {time.perf_counter() - t0:.0f} s", flush=True)


def child(folder: Path, rows: int, mode: str, batch_size: int) -> dict[str, float]:
    """One epoch in this (fresh) process; returns the measurements."""
    import keras

    from tlstudio.core.train import streaming
    from tlstudio.core.train.feature_cache import FeatureCache
    from tlstudio.core.train.head_fit import fit_numpy_batches
    from tlstudio.core.train.head_stack import HeadStack
    from tlstudio.core.train.streaming import fit_small_model

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cache = FeatureCache(f"bench{rows}".ljust(40, "0"), root=folder)
    keys = [key_of(i) for i in range(rows)]
    labels = np.arange(rows) % CLASSES
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(CLASSES, activation="softmax")])
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    t0 = time.perf_counter()
    if mode == "stream":
        train_rows = streaming.rows_from_cache(cache, keys, labels)
        ds = streaming.streaming_dataset(train_rows, batch_size=batch_size, num_classes=CLASSES)
    elif mode == "run":
        train_rows = streaming.rows_from_cache(cache, keys, labels)
        stack = HeadStack(DIM, CLASSES, [1e-3], [0.0], seed=0)
    else:
        import tensorflow as tf

        found = cache.lookup(keys)
        x = np.stack([found[k] for k in keys]).astype(np.float32)
        del found
        ds = (
            tf.data.Dataset.from_tensor_slices((x, np.eye(CLASSES, dtype=np.float32)[labels], np.ones(rows, np.float32)))
            .shuffle(rows, seed=0)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
    prepare = time.perf_counter() - t0

    class Last(keras.callbacks.Callback):
        loss = float("nan")

        def on_epoch_end(self, epoch, logs=None):
            Last.loss = float((logs or {}).get("loss", float("nan")))

    t0 = time.perf_counter()
    steps = -(-rows // batch_size)
    if mode == "run":
        def batches(epoch: int):
            return streaming.iterate_batches(train_rows, batch_size=batch_size, num_classes=CLASSES, epoch=epoch,
                                             one_hot=False)

        fit_numpy_batches(head, stack, batches, steps=steps, epochs=1, initial_epoch=0, callbacks=[Last()])
    else:
        fit_small_model(head, ds, epochs=1, initial_epoch=0, steps=steps, callbacks=[Last()],
                        loss=keras.losses.CategoricalCrossentropy())
    epoch = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "mode": mode, "prepare_s": prepare, "epoch_s": epoch, "peak_rss_mb": peak,
            "rss_after_imports_mb": base_rss, "loss": Last.loss}


def run_child(folder: Path, rows: int, mode: str, batch_size: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, "--rows", str(rows), "--dir", str(folder),
           "--batch-size", str(batch_size)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="100000,1000000", help="comma-separated sizes")
    p.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "tlstudio-streaming-bench"))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--child", choices=("stream", "run", "memory"))
    args = p.parse_args()
    folder = Path(args.dir)
    sizes = [int(s) for s in args.rows.split(",")]
    if args.child:
        print(json.dumps(child(folder, sizes[0], args.child, args.batch_size)))
        return
    folder.mkdir(parents=True, exist_ok=True)
    print(f"synthetic shards in {folder} ({shutil.disk_usage(folder).free / 1e9:.0f} GB free); "
          f"{DIM} float16 features per row, {CLASSES} classes; linear softmax head, batch {args.batch_size}")
    for rows in sizes:
        generate(folder, rows)
    results = []
    for rows in sizes:
        r = run_child(folder, rows, "stream", args.batch_size)
        results.append(r)
        print(f"streamed  {rows:>9,} rows: epoch {r['epoch_s']:7.1f} s ({rows / r['epoch_s']:,.0f} rows/s), "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB (after imports {r['rss_after_imports_mb']:.0f} MB), "
              f"index {r['prepare_s']:.1f} s, loss {r['loss']:.3f}", flush=True)
        r = run_child(folder, rows, "run", args.batch_size)
        print(f"run path  {rows:>9,} rows: epoch {r['epoch_s']:7.1f} s ({rows / r['epoch_s']:,.0f} rows/s), "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB (numpy head over iterate_batches, as a run above its budget)",
              flush=True)
    small = sizes[0]
    m = run_child(folder, small, "memory", args.batch_size)
    s = results[0]
    print(f"in memory {small:>9,} rows: epoch {m['epoch_s']:7.1f} s, peak RSS {m['peak_rss_mb']:6.0f} MB, "
          f"load {m['prepare_s']:.1f} s, loss {m['loss']:.3f}")
    print(f"ratios at {small:,} rows, streamed / in memory: peak RSS {s['peak_rss_mb'] / m['peak_rss_mb']:.2f}, "
          f"epoch time {s['epoch_s'] / m['epoch_s']:.2f}")
    if len(results) > 1:
        big = results[-1]
        print(f"streamed, {big['rows']:,} / {small:,} rows: peak RSS x{big['peak_rss_mb'] / s['peak_rss_mb']:.2f} "
              f"for x{big['rows'] / small:.0f} the rows; epoch time x{big['epoch_s'] / s['epoch_s']:.1f}; "
              f"in memory the features alone would take {big['rows'] * DIM * 4 / 1e9:.1f} GB as float32")


if __name__ == "__main__":
    main()
