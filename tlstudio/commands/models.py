"""``tlstudio models [--json]``: the catalogue of pre-trained base models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "list the pre-trained base models"
DESCRIPTION = (
    "List the base models tlstudio can train on: input size, width multipliers (alpha), "
    "parameters of the feature extractor, ImageNet top-1 accuracy documented by Keras, "
    "relative speed, and where the ImageNet weights come from "
    "(shipped, already cached, or downloaded on first use)."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help=HELP, description=DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    parser.set_defaults(func=run)


def catalogue_rows() -> list[dict[str, Any]]:
    """One dict per catalogue entry, with the weights status at its default width and size."""
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models.catalogue import CATALOGUE, top1_for, weights_status

    rows = []
    for spec in CATALOGUE.values():
        status = weights_status(TrainConfig(base=spec.name, alpha=spec.default_alpha, weights="imagenet"))
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "default_size": spec.default_size,
                "min_size": spec.min_size,
                "alphas": list(spec.alphas),
                "default_alpha": spec.default_alpha,
                "params": spec.params,
                "top1": top1_for(spec, spec.default_alpha),
                "top1_full_width": spec.top1,
                "speed": spec.speed,
                "preprocess": spec.preprocess,
                "weights": status.kind,
                "weights_file": status.file_name,
                "description": spec.description,
            }
        )
    return rows


def _params_text(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def run(args: argparse.Namespace) -> int:
    rows = catalogue_rows()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    headers = ["name", "size", "alpha", "params", "top-1", "speed", "weights"]
    table = []
    for r in rows:
        if r["alphas"]:
            alpha = ",".join(str(float(a)) for a in r["alphas"]) + f" ({float(r['default_alpha'])})"
        else:
            alpha = "-"
        if r["top1"] is not None:
            top1 = f"{r['top1']:.1f}%"
        elif r["top1_full_width"] is not None:
            top1 = f"({r['top1_full_width']:.1f}% at 1.0)"
        else:
            top1 = "-"
        weights = {"bundled": "shipped", "cached": "cached", "download": "download"}.get(
            r["weights"], r["weights"]
        )
        table.append(
            [r["name"], str(r["default_size"]), alpha, _params_text(r["params"]), top1, r["speed"], weights]
        )
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    out = sys.stdout
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(
        "\nparams: feature extractor without its ImageNet top, at the default alpha. "
        "top-1: ImageNet accuracy documented by Keras.\n"
        "weights: shipped = inside tlstudio (works offline); cached = in the Keras cache; "
        "download = fetched once on first use.\n"
    )
    return 0
