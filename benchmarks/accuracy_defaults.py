"""Accuracy of the defaults: a one-click ``train()`` against a small manual grid, side by side.

Usage::

    python benchmarks/accuracy_defaults.py WEIGHTS DATA [DATA ...] [--lrs 0.001 0.01] [--epochs 10 30]

WEIGHTS is ``mobilenet_2_5_224_tf_no_top.h5``; each DATA is an image folder (e.g.
``../shared/datasets/trashnet``: 6 unbalanced classes). Every run of one folder uses the same
split: 60 % train, 20 % validation, 20 % test (a pre-split folder keeps its own). The default run
chooses its settings on the validation images; the grid runs use each learning rate x epoch
budget given, with dropout 0.2 and no early stopping, as a person tuning by hand would. The
printout compares them on the **test** images, which no run saw while choosing anything:
accuracy and macro F1 (the mean of the per-class F1 scores, which an unbalanced set needs),
with the best grid point marked. The features are computed once and shared through the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def one_run(data: Path, weights: Path, run_dir: Path, **changes) -> dict:
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.train.trainer import train

    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights=str(weights))
    config.split.val_fraction, config.split.test_fraction = 0.2, 0.2
    for k, v in changes.items():
        setattr(config, k, v)
    result = train(config, run_dir)
    splits = json.loads((run_dir / "evaluation.json").read_text())["splits"]
    part = splits["test"] if splits.get("test", {}).get("n") else splits["val"]
    return {
        "split": "test" if splits.get("test", {}).get("n") else "val",
        "accuracy": part["accuracy"],
        "macro_f1": part["macro_f1"],
        "val_accuracy": result.val_accuracy,
        "epochs": result.epochs_run,
        "seconds": result.train_seconds,
        "settings": result.settings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30])
    args = parser.parse_args(argv)
    report = {}
    with tempfile.TemporaryDirectory(prefix="tlstudio-acc-") as tmp:
        os.environ["TLSTUDIO_HOME"] = str(Path(tmp) / "home")
        for data in args.data:
            data = data.resolve()
            rows = {"default": one_run(data, args.weights.resolve(), Path(tmp) / f"{data.name}-default")}
            for lr in args.lrs:
                for epochs in args.epochs:
                    name = f"lr {lr:g}, {epochs} epochs"
                    rows[name] = one_run(
                        data, args.weights.resolve(), Path(tmp) / f"{data.name}-{lr:g}-{epochs}",
                        head_lr=lr, auto_head_lr=False, dropout=0.2, auto_dropout=False, head_epochs=epochs,
                        auto_epochs=False, early_stopping=False,
                    )
            report[data.name] = rows
            grid = {k: v for k, v in rows.items() if k != "default"}
            best = max(grid, key=lambda k: (grid[k]["accuracy"], grid[k]["macro_f1"]))
            d = rows["default"]
            print(f"\n{data.name} (scored on the {d['split']} images)")
            print(f"  {'run':<24} {'accuracy':>9} {'macro F1':>9} {'epochs':>7} {'seconds':>8}")
            for name, r in rows.items():
                mark = "  <- best of the grid" if name == best else ""
                print(f"  {name:<24} {r['accuracy']:9.3f} {r['macro_f1']:9.3f} {r['epochs']:7d} {r['seconds']:8.1f}{mark}")
            s = d["settings"]
            print(f"  default chose: learning rate {s.get('head_lr')}, dropout {s.get('dropout')}")
            print(f"  default - best grid: accuracy {d['accuracy'] - grid[best]['accuracy']:+.3f}, "
                  f"macro F1 {d['macro_f1'] - grid[best]['macro_f1']:+.3f}   goal >= 0 (within noise)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
