"""``tlstudio predict MODEL IMAGE_OR_DIR... [--top-k K] [--threshold T] [--csv OUT] [--json] [--gradcam OUT_DIR]``.

Classifies images (folders recursively) with a run folder or a model file, using the run's own
preprocessing. Exit code 0 when every file was classified, 1 when some could not be read (they
are reported with the reason), 2 for a usage or model error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tlstudio.commands._progress import terminal_progress


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a trained model (top-k, CSV, JSON, Grad-CAM)",
        description=(
            "Classify images with MODEL (a tlstudio run folder or a .keras / .h5 file). Folders are searched "
            "recursively; a file that cannot be read is reported with the reason."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="a run folder or a .keras / .h5 model file")
    parser.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    parser.add_argument("--top-k", type=int, default=3, metavar="K", help="how many classes to list (default 3)")
    parser.add_argument(
        "--threshold", type=float, default=None, metavar="T",
        help=('answer "not sure" when the best probability is below T (0-1); default: the threshold the run '
              'chose on its validation images; 0 never answers "not sure"'),
    )
    parser.add_argument("--csv", metavar="OUT", help="write one row per file to this CSV file")
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")
    parser.add_argument("--gradcam", metavar="OUT_DIR", help="save a Grad-CAM overlay PNG per image into OUT_DIR")
    parser.set_defaults(func=run)


def _unique_png(folder: Path, source: str, used: set[str]) -> Path:
    """A name for ``source``'s overlay that neither this run nor anything already in ``folder`` uses."""
    stem = Path(source).stem or "image"
    name = f"{stem}_gradcam.png"
    i = 1
    while name in used or (folder / name).exists():
        i += 1
        name = f"{stem}_{i}_gradcam.png"
    used.add(name)
    return folder / name


def run(args: argparse.Namespace) -> int:
    from tlstudio.core.deploy.batch import format_top, predict_files, predict_folder_to_csv
    from tlstudio.core.deploy.predict import Predictor
    from tlstudio.core.errors import TlstudioError

    if args.top_k < 1:
        raise TlstudioError("--top-k must be at least 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise TlstudioError("--threshold must be between 0 and 1")
    if args.csv and (Path(args.csv).exists() or Path(args.csv).is_symlink()):
        raise TlstudioError(f"{args.csv} already exists; tlstudio does not overwrite files: choose another --csv")
    predictor = Predictor.from_path(args.model)
    if args.threshold is None and predictor.threshold is not None:
        print(f'answering "not sure" below {predictor.threshold:.0%} (the run\'s threshold; --threshold 0 turns it off)',
              file=sys.stderr)
    progress, finish = terminal_progress(sys.stderr, "predicting")
    try:
        if args.csv:
            preds = predict_folder_to_csv(
                predictor, args.images, args.csv, top_k=args.top_k, threshold=args.threshold, progress=progress
            )
        else:
            preds = predict_files(predictor, args.images, top_k=args.top_k, threshold=args.threshold, progress=progress)
    finally:
        finish()
    cams: dict[str, str] = {}
    if args.gradcam:
        out = Path(args.gradcam)
        out.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for pred in preds:
            if pred.error is None:
                cam = predictor.gradcam(pred.source)
                path = _unique_png(out, pred.source, used)
                cam.overlay.save(path)
                cams[pred.source] = os.fspath(path)
    failed = sum(1 for p in preds if p.error is not None)
    if args.json:
        data = {
            "model": os.fspath(args.model),
            "labels": predictor.labels,
            "predictions": [dict(p.to_dict(), **({"gradcam": cams[p.source]} if p.source in cams else {})) for p in preds],
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        print(f"wrote {len(preds)} rows to {args.csv}" + (f" ({failed} files could not be read)" if failed else ""))
    else:
        for p in preds:
            if p.error is not None:
                print(f"{p.source}: error: {p.error}")
            else:
                print(f"{p.source}: {p.label} {p.probability:.1%}  [{format_top(p.top)}]")
    if cams and not args.json:
        print(f"Grad-CAM overlays saved in {args.gradcam}")
    if not preds:
        raise TlstudioError("no files to classify")
    return 1 if failed else 0
