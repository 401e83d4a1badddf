"""``tlstudio audit DATA [--json]``: suspected label errors and near-duplicates of a dataset.

Examples::

    tlstudio audit photos/
    tlstudio audit photos/ --base MobileNet --alpha 0.25 --weights imagenet --json

Features come from (and go to) the embedding cache the trainer uses, so a dataset already trained
on with the same base is audited in seconds. DATA is never changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from tlstudio.commands._shared import apply_base_and_split, print_result

HELP = "find suspected label errors and near-duplicate images in a dataset"
_LISTED = 20


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("audit", help=HELP, description=HELP + " (the dataset is never changed).")
    p.add_argument("data", metavar="DATA", help="image folder: one sub-folder per class, or train/val[/test]")
    p.add_argument("--base", metavar="NAME", help="base model from the catalogue (default MobileNet)")
    p.add_argument("--alpha", type=float, metavar="A", help="width multiplier of MobileNet bases (default 0.25)")
    p.add_argument("--weights", metavar="W", help="imagenet (default), none, or a weights file")
    p.add_argument("--base-model", metavar="FILE", help="your own .keras/.h5 model to use as the base")
    p.add_argument("--input-size", type=int, metavar="S", help="square input size (default: the base's)")
    p.add_argument("--resize-policy", choices=("stretch", "crop", "pad"), help="how images reach the input size")
    p.add_argument("--pooling", choices=("avg", "max"), help="pooling of the base's feature map (default avg)")
    p.add_argument("--val-fraction", type=float, metavar="F", help="validation share, for split leaks (default 0.2)")
    p.add_argument("--test-fraction", type=float, metavar="F", help="test share, for split leaks (default 0)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the split and the folds (default 1337)")
    p.add_argument(
        "--threshold", type=float, metavar="X", help="feature similarity of near-duplicates, 0-1 (default 0.95)"
    )
    p.add_argument("--folds", type=int, metavar="K", help="cross-validation folds (default 5)")
    p.add_argument("--all", action="store_true", help=f"list every finding, not the first {_LISTED}")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The TrainConfig whose base (and split) the audit uses."""
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.errors import TlstudioError

    config = TrainConfig(data_dir=str(Path(args.data).expanduser().resolve()))
    for name in ("base", "alpha", "input_size", "resize_policy", "pooling", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(config, name, value)
    apply_base_and_split(config, args)
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        raise TlstudioError("--threshold must be between 0 and 1")
    if args.folds is not None and args.folds < 2:
        raise TlstudioError("--folds must be at least 2")
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from tlstudio.commands._progress import terminal_progress
    from tlstudio.core.data.audit import audit_dataset
    from tlstudio.core.data.near_duplicates import DEFAULT_THRESHOLD
    from tlstudio.core.events import CacheProgress, Event

    config = build_config(args)
    progress, finish = terminal_progress(sys.stderr, "features")

    def emit(event: Event) -> None:
        if progress is not None and isinstance(event, CacheProgress):
            progress(event.done, event.total)

    try:
        report = audit_dataset(
            args.data,
            config,
            threshold=args.threshold if args.threshold is not None else DEFAULT_THRESHOLD,
            folds=args.folds or 5,
            emit=emit,
        )
    finally:
        finish()
    print_result(args.json, report.to_json, lambda: print_report(report, sys.stdout, list_all=args.all))
    return 0


def print_report(report: Any, out: TextIO, list_all: bool = False) -> None:
    """The human-readable report of an :class:`~tlstudio.core.data.audit.AuditReport`."""
    limit = None if list_all else _LISTED
    out.write(f"Audit of {report.root}: {len(report.paths)} image(s), {len(report.classes)} classes\n")
    out.write(
        f"Features: {report.cache_hits} from the cache, {report.cache_computed} computed; "
        f"{report.seconds:.1f} s\n\n"
    )
    suspects = report.suspects
    if suspects:
        out.write(f"Suspected label errors ({len(suspects)}), most suspicious first:\n")
        width = max(len(s.path) for s in suspects[:limit])
        for s in suspects[:limit]:
            out.write(f"  {s.path:<{width}}  {s.class_name} -> looks like {s.suggested}  (score {s.score:.2f})\n")
        if limit is not None and len(suspects) > limit:
            out.write(f"  ... and {len(suspects) - limit} more (--all lists them)\n")
    else:
        out.write("No suspected label errors.\n")
    out.write("\n")
    dups = report.near_duplicates
    if dups:
        leaks = sum(1 for d in dups if d.cross_split)
        clashes = sum(1 for d in dups if d.cross_class)
        out.write(
            f"Near-duplicate groups ({len(dups)}; {leaks} across splits, {clashes} across classes):\n"
        )
        for d in dups[:limit]:
            flags = [f for f, on in (("ACROSS SPLITS", d.cross_split), ("ACROSS CLASSES", d.cross_class)) if on]
            out.write(f"  similarity {d.similarity:.3f}{'  ' + ', '.join(flags) if flags else ''}\n")
            for p in d.paths:
                out.write(f"    {p}\n")
        if limit is not None and len(dups) > limit:
            out.write(f"  ... and {len(dups) - limit} more (--all lists them)\n")
    else:
        out.write("No near-duplicates.\n")
    if report.skipped:
        out.write(f"\n{len(report.skipped)} image(s) could not be read and were left out.\n")
