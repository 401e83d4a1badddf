"""``tlstudio export MODEL --format FMT [--format FMT ...] --out PATH [--verify]``.

Writes the model in each format with a sample script, plus one ``labels.txt`` and one
``model_card.md`` listing them all. With several formats, ``--out`` is a folder and each gets its
default file name. A format that fails is reported and the others go on: exit code 0 when every
format was written, 1 when some failed, 2 when none was (or for a usage error).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "export a trained model (Keras, SavedModel, TFLite, ONNX, a web page) with labels and a model card"
DESCRIPTION = (
    "Export MODEL (a run folder or a .keras / .h5 file). Beside the model go labels.txt, model_card.md "
    "and predict_<format>.py, a short script that runs the file with its own runtime. "
    "--verify reloads the export in a fresh process and compares it with the Keras model."
)


FORMATS = ("keras", "savedmodel", "tflite", "tflite-f16", "tflite-int8", "onnx", "web")  # = tlstudio.core.deploy.export.FORMATS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help=HELP, description=DESCRIPTION)
    parser.add_argument("model", metavar="MODEL", help="a run folder or a .keras / .h5 model file")
    parser.add_argument(
        "--format", "-f", dest="formats", action="append", required=True, metavar="FORMAT",
        help=f"one of {', '.join(FORMATS)}; repeat it (or separate by commas) for several",
    )
    parser.add_argument(
        "--out", "-o", required=True, metavar="PATH",
        help="a new or empty folder to write default names into, or (one format) the new file (a folder for savedmodel and web) to write; "
        "nothing is ever overwritten",
    )
    parser.add_argument("--verify", action="store_true", help="check the export in a fresh process with its runtime")
    parser.add_argument(
        "--images", action="append", metavar="IMAGE_OR_DIR",
        help="images for int8 calibration and --verify when the run's own images are not available",
    )
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    """Export every format asked for; each failure is one line. Exit 0 all written, 1 some failed, 2 none."""
    from tlstudio.core.deploy.export import check_format, describe_verification, export_models

    formats = [check_format(part) for item in args.formats for part in item.split(",") if part.strip()]

    def status(text: str) -> None:
        print(f"{text}...", file=sys.stderr, flush=True)

    results = export_models(args.model, formats, args.out, verify=args.verify, images=args.images, status=status)
    failed = [r for r in results if not r.ok]
    if len(results) == 1 and failed and failed[0].failure is not None:
        raise failed[0].failure  # one format: its reason is the command's one line
    for result in results:
        if not result.ok:
            print(f"tlstudio export: {result.format} failed: {result.error}", file=sys.stderr)
            continue
        print(f"{result.format}: {result.path} ({_size(result.files[0][1])})")
        for path, size in result.files[1:]:
            print(f"  + {path.name} ({_size(size)})")
        for note in result.notes:
            print(f"  note: {note}")
        if result.verification:
            print(f"  verified: {describe_verification(result.verification)}")
    if failed:
        print(f"tlstudio export: {len(failed)} of {len(results)} formats failed", file=sys.stderr)
        return 2 if len(failed) == len(results) else 1
    return 0
