"""How many planted label errors and near-duplicates does the audit find, and how fast is it?

Copies a stratified sample of a real photo set (default: ../shared/datasets/trashnet, 6 classes)
into a temporary folder, then plants

* ``--flips`` label errors: images moved into another, random class folder, and
* ``--dups`` near-duplicates: copies of images resized to 55-85 % and re-saved as JPEG (quality 85)
  in the same class,

runs ``audit_dataset`` (MobileNet alpha 0.25 with the official ImageNet weights, 224 px) once with
an empty embedding cache and once more with the features cached, and prints

* recall of the flips among the first N suspects (N = ``--top``, default twice the flips), the
  precision of those N, and recall among all suspects;
* recall of the planted duplicates (both files in one reported group) and how many other groups
  were reported (natural near-duplicates of the photo set, or false alarms);
* the audit time with features cached, in this process and as a fresh ``tlstudio audit --json``
  process (Python start, TensorFlow import and building the base included).

Usage::

    python benchmarks/audit_recall.py [--data DIR] [--n 1000] [--flips 40] [--dups 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared"
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def sample_dataset(src: Path, dst: Path, n: int, seed: int) -> list[str]:
    """Copy about ``n`` images, the same share of each class, into ``dst``; returns relative paths."""
    rng = random.Random(seed)
    classes = sorted(p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {c: sorted(p for p in (src / c).iterdir() if p.suffix.lower() in IMAGE_EXT) for c in classes}
    total = sum(len(v) for v in files.values())
    out = []
    for c in classes:
        take = max(5, round(n * len(files[c]) / total))
        for p in rng.sample(files[c], min(take, len(files[c]))):
            (dst / c).mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst / c / p.name)
            out.append(f"{c}/{p.name}")
    return sorted(out)


def plant(root: Path, paths: list[str], flips: int, dups: int, seed: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Move ``flips`` images to a wrong class and write ``dups`` resized copies; returns what was planted."""
    from PIL import Image

    rng = random.Random(seed + 1)
    classes = sorted({p.split("/")[0] for p in paths})
    chosen = rng.sample(paths, flips + dups)
    flipped: dict[str, str] = {}  # new path -> true class
    for rel in chosen[:flips]:
        true = rel.split("/")[0]
        wrong = rng.choice([c for c in classes if c != true])
        new = f"{wrong}/flip_{Path(rel).name}"
        os.rename(root / rel, root / new)
        flipped[new] = true
    pairs = []
    for i, rel in enumerate(chosen[flips:]):
        with Image.open(root / rel) as im:
            im = im.convert("RGB")
            scale = rng.uniform(0.55, 0.85)
            small = im.resize((max(16, int(im.width * scale)), max(16, int(im.height * scale))), Image.BICUBIC)
            new = f"{rel.split('/')[0]}/dup_{i:03d}.jpg"
            small.save(root / new, quality=85)
        pairs.append((rel, new))
    return flipped, pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "datasets" / "trashnet")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5")
    parser.add_argument("--n", type=int, default=1000, help="images sampled from the photo set")
    parser.add_argument("--flips", type=int, default=40)
    parser.add_argument("--dups", type=int, default=30)
    parser.add_argument("--top", type=int, default=0, help="N of 'recall in the first N suspects' (default 2x flips)")
    parser.add_argument("--threshold", type=float, default=None, help="near-duplicate similarity (default: the audit's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the planted dataset here and keep it")
    args = parser.parse_args()
    if not args.data.is_dir() or not args.weights.is_file():
        print(f"needs {args.data} and {args.weights} (../shared is only on developer machines and CI)")
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.data.audit import audit_dataset
    from tlstudio.core.data.near_duplicates import DEFAULT_THRESHOLD, normalised

    threshold = args.threshold or DEFAULT_THRESHOLD
    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    root = args.keep or work / "data"
    home = work / "home"  # an empty embedding cache, shared with the CLI run below
    os.environ["TLSTUDIO_HOME"] = str(home)
    try:
        if root.exists():
            shutil.rmtree(root)
        paths = sample_dataset(args.data, root, args.n, args.seed)
        flipped, pairs = plant(root, paths, args.flips, args.dups, args.seed)
        n_images = len(paths) + len(pairs)
        print(f"{args.data.name}: {n_images} images, {len(flipped)} label flips and {len(pairs)} resized copies planted")
        config = TrainConfig(alpha=0.25, weights=str(args.weights), seed=args.seed)

        t0 = time.perf_counter()
        cold = audit_dataset(root, config, threshold=threshold)
        assert cold.cache_computed > 0
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = audit_dataset(root, config, threshold=threshold)
        t_warm = time.perf_counter() - t0
        assert report.cache_computed == 0, "the second audit should find every feature in the cache"

        top = args.top or 2 * args.flips
        ranked = [s.path for s in report.suspects]
        hits_top = sum(1 for p in ranked[:top] if p in flipped)
        hits_all = sum(1 for p in ranked if p in flipped)
        right_class = sum(1 for s in report.suspects if s.path in flipped and s.suggested == flipped[s.path])
        groups = [set(d.paths) for d in report.near_duplicates]
        found = sum(1 for a, b in pairs if any({a, b} <= g for g in groups))
        planted_groups = sum(1 for g in groups if any({a, b} <= g for a, b in pairs))

        idx = {p: i for i, p in enumerate(report.paths)}
        z = normalised(report.features)
        pair_sims = [float(z[idx[a]] @ z[idx[b]]) for a, b in pairs if a in idx and b in idx]
        sims = z @ z.T
        np.fill_diagonal(sims, -1)
        for a, b in pairs:
            if a in idx and b in idx:
                sims[idx[a], idx[b]] = sims[idx[b], idx[a]] = -1
        nearest = np.sort(sims.max(axis=1))[::-1]

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tlstudio", "audit", str(root), "--weights", str(args.weights), "--json",
             "--seed", str(args.seed)] + (["--threshold", str(threshold)] if args.threshold else []),
            capture_output=True, text=True, env=env,
        )
        t_cli = time.perf_counter() - t0
        cli = json.loads(proc.stdout) if proc.returncode == 0 else {}

        print(f"suspects reported: {len(ranked)}")
        print(f"label flips in the first {top} suspects: {hits_top}/{len(flipped)} "
              f"(recall {hits_top / len(flipped):.2f}, precision {hits_top / max(1, min(top, len(ranked))):.2f})")
        print(f"label flips among all suspects: {hits_all}/{len(flipped)} (recall {hits_all / len(flipped):.2f}); "
              f"{right_class} with their true class suggested")
        print(f"near-duplicates: {found}/{len(pairs)} planted copies found (recall {found / len(pairs):.2f}); "
              f"{len(groups) - planted_groups} other group(s) reported; threshold {threshold}")
        print(f"similarity of planted copies: min {min(pair_sims):.3f}, median {np.median(pair_sims):.3f}; "
              f"highest nearest-neighbour similarity of other images: {nearest[0]:.3f}, 10th {nearest[9]:.3f}")
        print(f"audit time: {t_cold:.1f} s with an empty cache, {t_warm:.2f} s with features cached (in process)")
        print(f"`tlstudio audit --json` as a new process, features cached: {t_cli:.1f} s "
              f"(exit {proc.returncode}, {len(cli.get('suspects', []))} suspects)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
