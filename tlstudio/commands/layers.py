"""``tlstudio layers --base NAME ...``: the layer tree of a model, with blocks, shapes and frozen state."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from tlstudio.commands._progress import terminal_progress

HELP = "show the layers and blocks of a model and which are frozen"
DESCRIPTION = (
    "Build the classifier for a base model (or your own model file) and print its layer tree: the "
    "blocks of the base, output shapes, parameter counts and what trains. By default the base is "
    "frozen (the first phase of training); --unfreeze-top N shows fine-tuning of the top N blocks."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("layers", help=HELP, description=DESCRIPTION)
    parser.add_argument(
        "--base", default="MobileNet", metavar="NAME", help="base model (see `tlstudio models`)"
    )
    parser.add_argument("--alpha", type=float, default=None, help="width multiplier for the MobileNets")
    parser.add_argument(
        "--input-size", type=int, default=None, metavar="S", help="square input size in pixels"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        metavar="W",
        help="imagenet (default), none (random init), or a weights file (.h5 / .weights.h5)",
    )
    parser.add_argument(
        "--base-model", default=None, metavar="FILE", help="use your own model file as the base"
    )
    parser.add_argument("--cut-layer", default=None, metavar="LAYER", help="where to cut your own model")
    parser.add_argument("--classes", type=int, default=2, metavar="N", help="number of classes of the head")
    parser.add_argument(
        "--hidden-units", type=int, default=0, metavar="N", help="hidden Dense layer in the head"
    )
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg")
    freeze = parser.add_mutually_exclusive_group()
    freeze.add_argument(
        "--unfreeze-top", type=int, default=None, metavar="N", help="make the top N blocks trainable"
    )
    freeze.add_argument(
        "--unfreeze-from", default=None, metavar="LAYER", help="make LAYER and all above trainable"
    )
    freeze.add_argument("--unfreeze-all", action="store_true", help="make every layer trainable")
    parser.add_argument("--expand", action="store_true", help="list every layer inside each block")
    parser.add_argument("--json", action="store_true", help="print the tree as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models.catalogue import (
        ModelError,
        alpha_note,
        build_classifier,
        get_spec,
        resolve_alpha,
        weights_label,
        weights_status,
    )
    from tlstudio.core.models.layer_tree import LayerTree

    config = TrainConfig(
        base=args.base,
        alpha=args.alpha,
        input_size=args.input_size,
        weights=args.weights,
        base_model_path=args.base_model,
        cut_layer=args.cut_layer,
        pooling=args.pooling,
        hidden_units=max(0, args.hidden_units),
    )
    if args.classes < 2:
        raise ModelError("--classes must be at least 2")
    family = None
    if not args.base_model:
        family = get_spec(args.base).family
    status = weights_status(config)
    if not status.ok:
        raise ModelError(status.message)
    alpha = None
    if not args.base_model:
        spec = get_spec(args.base)
        alpha = resolve_alpha(spec, args.alpha)
        note = alpha_note(spec, args.alpha)
        if note:
            print(f"tlstudio layers: {note}", file=sys.stderr)
    progress, finish = terminal_progress(sys.stderr, "downloading weights", unit="bytes")
    try:
        model = build_classifier(config, args.classes, progress=progress)
    finally:
        finish()
    tree = LayerTree.from_model(model, family=family)
    if args.unfreeze_all:
        tree.unfreeze_all()
    elif args.unfreeze_from:
        tree.unfreeze_from(args.unfreeze_from)
    else:
        tree.unfreeze_top_blocks(args.unfreeze_top or 0)
    if args.json:
        data = tree.to_dict()
        data["weights"] = weights_label(config)
        data["weights_source"] = status.kind
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    title = args.base_model or get_spec(args.base).name
    out = sys.stdout
    width = f"  alpha {alpha:g}" if alpha is not None else ""
    size = f"{model.inputs[0].shape[1]}x{model.inputs[0].shape[2]}"
    out.write(f"{title}{width}  input {size}  weights: {weights_label(config)}\n")
    print_tree(tree, out, expand=args.expand)
    out.write(f"\n{tree.summary()}\n")
    blocks = tree.block_names()
    if blocks:
        out.write(f"blocks of the base, bottom to top: {', '.join(blocks)}\n")
    return 0


def _mark(node) -> str:
    if node.locked:
        return "[lock]"
    if node.trainable is None:
        return "[mixed]"
    return "[train]" if node.trainable else "[frozen]"


def print_tree(tree, out: TextIO, expand: bool = False) -> None:
    """Write the tree as indented lines: state, name, type, output shape, parameters."""
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(node, depth: int) -> None:
        for child in node.children:
            params = f"{child.params:,}"
            if child.params and child.trainable_params not in (0, child.params):
                params += f" ({child.trainable_params:,} train)"
            label = child.name
            if child.kind == "group":
                label += f"  ({sum(1 for _ in child.leaves())} layers)"
            rows.append(("  " * depth + _mark(child), label, child.layer_type, child.output_shape, params))
            if child.note and child.kind == "layer" and (expand or not child.is_batchnorm):
                rows.append(("", "  " * depth + "  note: " + child.note, "", "", ""))
            if child.kind == "model" or (child.kind == "group" and expand):
                walk(child, depth + 1)

    walk(tree.root, 0)
    table = [r for r in rows if r[0]]
    widths = [max(len(r[i]) for r in table) if table else 0 for i in range(5)]
    for r in rows:
        if not r[0]:
            out.write(f"{'':<{widths[0]}}  {r[1]}\n")
            continue
        out.write(
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]:>{widths[4]}}\n"
        )
    bns = [n for n in tree.base.iter_nodes() if n.is_batchnorm]
    if any(n.locked for n in bns):
        out.write(
            "BatchNormalization layers of the base stay in inference mode: the base is called with "
            "training=False and they are kept frozen.\n"
        )
    elif bns:
        out.write("BatchNormalization layers of the randomly initialised base train normally.\n")
