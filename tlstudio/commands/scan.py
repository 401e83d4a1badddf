"""``tlstudio scan DATA [--json]``: report what a dataset folder holds and what is wrong with it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from tlstudio.commands._progress import terminal_progress
from tlstudio.commands._shared import print_result

HELP = "check a dataset folder: classes, counts, unusable files, warnings"
DESCRIPTION = (
    "Scan DATA (DATA/<class>/images or DATA/{train,val,test}/<class>/images) and print counts per "
    "class and split, the files that cannot be used grouped by reason, and warnings."
)


_MAX_LISTED = 5


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("scan", help=HELP, description=DESCRIPTION)
    parser.add_argument("data", metavar="DATA", help="the dataset folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--all", action="store_true", help="list every skipped and ignored file, not a few")
    parser.add_argument(
        "--deep", action="store_true", help="decode every image (slower; also finds damage inside files)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlstudio.core.data.scan import scan_dataset

    progress, finish = terminal_progress(sys.stderr, "scanning")
    try:
        scan = scan_dataset(args.data, progress=progress, deep=args.deep)
    finally:
        finish()
    print_result(args.json, scan.to_json, lambda: print_report(scan, sys.stdout, list_all=args.all))
    return 0


def print_report(scan: Any, out: TextIO, list_all: bool = False) -> None:
    """The human-readable report of a :class:`~tlstudio.core.data.scan.DatasetScan`."""
    from tlstudio.core.data.layout import printable_name

    files = scan.files
    n_usable = sum(1 for f in files if f.status == "usable")
    n_skipped = sum(1 for f in files if f.status == "skipped")
    n_ignored = sum(1 for f in files if f.status == "ignored")
    splits = scan.splits() if scan.presplit else []
    layout = f"split into {', '.join(splits)}" if splits else "one folder per class (not split)"
    out.write(f"Dataset {scan.root}\n")
    out.write(f"Layout: {layout}\n")
    out.write(f"Files: {len(files)} seen, {n_usable} usable, {n_skipped} skipped, {n_ignored} ignored\n\n")

    totals = scan.class_counts()
    if scan.classes:
        columns = [*splits, "total"] if splits else ["images"]
        per_split = {s: scan.class_counts(s) for s in splits}
        width = max(5, *(len(c) for c in scan.classes))
        out.write(f"{'class':<{width}}" + "".join(f"{c:>9}" for c in columns) + "\n")
        for name in scan.classes:
            cells = [per_split[s][name] for s in splits] + [totals[name]]
            out.write(f"{name:<{width}}" + "".join(f"{v:>9}" for v in cells) + "\n")
        if len(scan.classes) > 1:
            cells = [sum(per_split[s].values()) for s in splits] + [sum(totals.values())]
            out.write(f"{'total':<{width}}" + "".join(f"{v:>9}" for v in cells) + "\n")
        out.write(f"\n{len(scan.classes)} class(es)\n")
    else:
        out.write("No classes found.\n")

    for title, status in (("Skipped (cannot be used)", "skipped"), ("Ignored (not images)", "ignored")):
        groups = scan.reasons(status)
        if not groups:
            continue
        count = sum(len(paths) for paths in groups.values())
        out.write(f"\n{title}: {count}\n")
        for reason, paths in groups.items():
            out.write(f"  {reason}: {len(paths)}\n")
            limit = _MAX_LISTED if status == "skipped" else 2
            shown = paths if list_all else paths[:limit]
            for path in shown:
                out.write(f"    {printable_name(path)}\n")  # a name with a line break stays on one line
            if len(shown) < len(paths):
                out.write(f"    ... and {len(paths) - len(shown)} more (--all lists them)\n")

    if scan.warnings:
        out.write(f"\nWarnings: {len(scan.warnings)}\n")
        for warning in scan.warnings:
            out.write(f"  ! {warning}\n")
    else:
        out.write("\nNo warnings.\n")
