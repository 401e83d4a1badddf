"""What several sub-commands do alike: read the base/split options into a config, print JSON or a report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def apply_base_and_split(config: Any, args: argparse.Namespace) -> None:
    """Copy ``--weights``, ``--base-model``, ``--val-fraction``, ``--test-fraction`` and ``--seed`` into ``config``.

    File names are made absolute, so the config still means the same files when read from elsewhere.
    """
    if args.weights is not None:
        lower = args.weights.lower()
        config.weights = lower if lower in ("imagenet", "none") else str(Path(args.weights).expanduser().resolve())
    if args.base_model:
        config.base_model_path = str(Path(args.base_model).expanduser().resolve())
    if args.val_fraction is not None:
        config.split.val_fraction = None if args.val_fraction == "auto" else args.val_fraction
    if args.test_fraction is not None:
        config.split.test_fraction = args.test_fraction
    if args.seed is not None:
        config.split.seed = args.seed


def print_result(as_json: bool, to_json: Callable[[], Any], print_report: Callable[[], None]) -> None:
    """Print ``to_json()`` as indented JSON, or call ``print_report``; a reader that leaves early is fine."""
    try:
        if as_json:
            json.dump(to_json(), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print_report()
        sys.stdout.flush()
    except BrokenPipeError:  # `tlstudio scan DATA --json | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
