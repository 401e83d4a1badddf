"""Training speed, whole processes side by side: ``tlstudio train`` against the plain Keras recipe.

Usage::

    python benchmarks/train_vs_keras.py DATA WEIGHTS [--rounds 1] [--epochs 10]

DATA is an image folder (class sub-folders, or train/ and val/ with class sub-folders); WEIGHTS is
``mobilenet_2_5_224_tf_no_top.h5`` (MobileNet alpha 0.25, ImageNet, no top). Each round runs, one
after the other (alternating, so a change in the machine's load hits both sides alike):

(a) ``tlstudio train DATA --weights WEIGHTS`` with its defaults and an empty embedding cache, as a
    user runs it: a new process, from start to exit (TensorFlow import, scan, caching, the
    automatic search, training to convergence, evaluation, saving);
(b) the recipe of the Keras transfer-learning guide in a new process (this script with
    ``--recipe``): ``image_dataset_from_directory``, a frozen MobileNet called with
    ``training=False``, GlobalAveragePooling, Dropout 0.2, Dense softmax, Adam 1e-3, ``fit`` for
    ``--epochs`` epochs, then saving the model;
(c) ``tlstudio train`` again with another learning rate, the cache now warm: only the head trains.

It prints the whole-process times and their ratio (goal <= 0.15), the fit times (tlstudio's
``train_seconds``: caching, search and every epoch; the recipe's ``fit``) and their ratio (goal
<= 0.12), the warm retrain (goal <= 1.5 s), the CPU seconds each used per wall second (2 cores:
at most 2.0), the validation accuracies, and where (a)'s time went (``run.json``'s
"stage_seconds": data, tensorflow (its import), build, features, search, head, save, evaluate;
the rest is the interpreter, imports before the run, and the exit). Timings are of this machine
at this moment.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def keras_recipe(data: Path, weights: Path, epochs: int, out: Path, size: int = 224, batch: int = 32,
                 seed: int = 1337) -> dict:
    """The Keras guide's recipe, in this process; returns its fit time and validation accuracy."""
    import keras

    common = dict(image_size=(size, size), batch_size=batch, label_mode="int")
    if (data / "train").is_dir() and (data / "val").is_dir():
        train_ds = keras.utils.image_dataset_from_directory(data / "train", shuffle=True, seed=seed, **common)
        val_ds = keras.utils.image_dataset_from_directory(data / "val", shuffle=False, **common)
    else:
        train_ds = keras.utils.image_dataset_from_directory(
            data, validation_split=0.2, subset="training", seed=seed, **common
        )
        val_ds = keras.utils.image_dataset_from_directory(
            data, validation_split=0.2, subset="validation", seed=seed, **common
        )
    num_classes = len(train_ds.class_names)
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=str(weights), input_shape=(size, size, 3))
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # mobilenet.preprocess_input
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
    fit = time.perf_counter() - t0
    model.save(out)
    return {"fit_seconds": fit, "val_accuracy": float(history.history["val_accuracy"][-1])}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, CPU seconds (user + system of the child) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--epochs", type=int, default=10, help="the recipe's epochs (the Keras guide's 10)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--recipe", metavar="OUT", type=Path, help=argparse.SUPPRESS)  # run (b) here
    args = parser.parse_args(argv)
    data, weights = args.data.resolve(), args.weights.resolve()
    if not data.is_dir() or not weights.is_file():
        parser.error("DATA must be a folder and WEIGHTS a file")
    if args.recipe:
        print(json.dumps(keras_recipe(data, weights, args.epochs, args.recipe)))
        return 0

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    rows = []
    with tempfile.TemporaryDirectory(prefix="tlstudio-bench-") as tmp:
        for r in range(args.rounds):
            env["TLSTUDIO_HOME"] = str(Path(tmp) / f"home{r}")  # an empty embedding cache per round
            tl = [sys.executable, "-m", "tlstudio", "train", str(data), "--weights", str(weights), "--json"]
            a_wall, a_cpu, a_out = timed([*tl, "--out", str(Path(tmp) / f"cold{r}")], env)
            b_wall, b_cpu, b_out = timed([sys.executable, __file__, str(data), str(weights), "--epochs",
                                          str(args.epochs), "--recipe", str(Path(tmp) / f"recipe{r}.keras")], env)
            c_wall, _, c_out = timed([*tl, "--lr", "0.003", "--out", str(Path(tmp) / f"warm{r}")], env)
            a, b, c = (json.loads(o.strip().splitlines()[-1]) for o in (a_out, b_out, c_out))
            stages = json.loads((Path(tmp) / f"cold{r}" / "run.json").read_text()).get("stage_seconds", {})
            rows.append({"a_wall": a_wall, "a_cpu": a_cpu, "a_fit": a["train_seconds"], "a_acc": a["val_accuracy"],
                         "b_wall": b_wall, "b_cpu": b_cpu, "b_fit": b["fit_seconds"], "b_acc": b["val_accuracy"],
                         "c_wall": c_wall, "c_fit": c["train_seconds"], "c_acc": c["val_accuracy"],
                         "settings": a["settings"], "epochs": a["epochs_run"], "a_stages": stages})

    print(f"data: {data}  cpu cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}")
    for i, x in enumerate(rows):
        print(f"round {i + 1}:")
        print(f"  (a) tlstudio train, cold  process {x['a_wall']:7.2f} s  fit {x['a_fit']:6.2f} s  "
              f"cpu/wall {x['a_cpu'] / x['a_wall']:.2f}  val accuracy {x['a_acc']:.3f}  ({x['epochs']} epochs, "
              f"lr {x['settings'].get('head_lr')}, dropout {x['settings'].get('dropout')})")
        print(f"  (b) Keras recipe          process {x['b_wall']:7.2f} s  fit {x['b_fit']:6.2f} s  "
              f"cpu/wall {x['b_cpu'] / x['b_wall']:.2f}  val accuracy {x['b_acc']:.3f}  ({args.epochs} epochs)")
        print(f"  (c) tlstudio retrain, warm process {x['c_wall']:7.2f} s  fit {x['c_fit']:6.2f} s  "
              f"val accuracy {x['c_acc']:.3f}")
        stages = x["a_stages"]
        if stages:
            outside = x["a_wall"] - sum(stages.values())
            print("  (a) where its time went:  " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
                  + f", outside the run (interpreter, imports, argument parsing, exit) {outside:.2f} s")
        print(f"  whole-process ratio (a)/(b): {x['a_wall'] / x['b_wall']:.3f}   goal <= 0.15")
        print(f"  fit-time ratio (a)/(b):      {x['a_fit'] / x['b_fit']:.3f}   goal <= 0.12")
        print(f"  CPU-seconds ratio (a)/(b):   {x['a_cpu'] / x['b_cpu']:.3f}   (less sensitive to other work on the machine)")
        print(f"  warm retrain (c) fit:        {x['c_fit']:.2f} s   goal <= 1.5 s")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
