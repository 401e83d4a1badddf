"""How fast is the dataset scan compared with decoding every image?

Writes a folder of N small JPEG/PNG images (10 classes, a few truncated and text files posing as
images, a few byte-identical copies) into a temporary folder, then times

* ``scan_dataset`` (header reads, end-of-file checks, duplicate hashing on a thread pool), and
* a naive scan that fully decodes every file with ``Image.open(path).load()``.

Usage::

    python benchmarks/scan_speed.py [--n 10000] [--side 96] [--keep DIR]

Both scans run on a warm file cache (the files were just written), which is the favourable case
for the naive scan: on a cold disk both are bounded by reading, and the scan reads far less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlstudio.core.data.scan import scan_dataset  # noqa: E402


def make_dataset(root: Path, n: int, side: int, classes: int = 10) -> dict[str, int]:
    rng = np.random.default_rng(0)
    counts = {"jpeg": 0, "png": 0, "corrupt": 0, "copies": 0}
    written: list[Path] = []
    for i in range(n):
        cls = f"class_{i % classes:02d}"
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        w = side + int(rng.integers(-side // 4, side // 4))
        h = side + int(rng.integers(-side // 4, side // 4))
        grad = np.add.outer(np.linspace(0, 255, h), np.linspace(0, 255, w)) / 2
        img = np.stack([grad, np.roll(grad, i, axis=1), 255 - grad], axis=-1)
        img += rng.normal(0, 12, img.shape)
        arr = np.clip(img, 0, 255).astype(np.uint8)
        if i % 500 == 7:  # text pretending to be an image
            path = folder / f"img_{i:05d}.jpg"
            path.write_text("not an image")
            counts["corrupt"] += 1
            continue
        if i % 10 < 7:
            path = folder / f"img_{i:05d}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            counts["jpeg"] += 1
        else:
            path = folder / f"img_{i:05d}.png"
            Image.fromarray(arr).save(path, compress_level=1)
            counts["png"] += 1
        if i % 500 == 13:  # cut in half
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            counts["corrupt"] += 1
        elif i % 1000 == 21 and written:  # a byte-identical copy of an earlier file
            path.write_bytes(written[-1].read_bytes())
            counts["copies"] += 1
        written.append(path)
    return counts


def naive_scan(root: Path) -> tuple[int, int]:
    ok = bad = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                with Image.open(os.path.join(dirpath, name)) as im:
                    im.load()
                ok += 1
            except Exception:
                bad += 1
    return ok, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of files (default 10000)")
    parser.add_argument("--side", type=int, default=96, help="typical image side in pixels (default 96)")
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="tlstudio-scan-bench-"))
    try:
        t0 = time.perf_counter()
        made = make_dataset(root / "data", args.n, args.side)
        total_bytes = sum(p.stat().st_size for p in (root / "data").rglob("*") if p.is_file())
        print(
            f"dataset: {args.n} files ({made}), {total_bytes / 1e6:.1f} MB, written in "
            f"{time.perf_counter() - t0:.1f} s, CPUs: {os.cpu_count()}"
        )

        t0 = time.perf_counter()
        scan = scan_dataset(root / "data")
        t_scan = time.perf_counter() - t0
        n_usable, n_skipped = len(scan.usable()), len(scan.skipped())
        print(
            f"scan_dataset:        {t_scan:6.2f} s  {args.n / t_scan:8.0f} files/s  "
            f"({n_usable} usable, {n_skipped} skipped, {len(scan.duplicates)} duplicate groups)"
        )

        t0 = time.perf_counter()
        scan1 = scan_dataset(root / "data", workers=1)
        t_scan1 = time.perf_counter() - t0
        assert len(scan1.usable()) == n_usable
        print(f"scan_dataset (1 thread): {t_scan1:6.2f} s  {args.n / t_scan1:8.0f} files/s")

        t0 = time.perf_counter()
        ok, bad = naive_scan(root / "data")
        t_naive = time.perf_counter() - t0
        print(
            f"naive full decode:   {t_naive:6.2f} s  {args.n / t_naive:8.0f} files/s  ({ok} decoded, {bad} failed)"
        )
        print(f"ratio naive / scan_dataset: {t_naive / t_scan:.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
