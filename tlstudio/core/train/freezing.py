"""Which layers train in which phase: the base frozen for the head, the chosen blocks for fine-tuning.

Unfreezing always means fine-tuning: blocks marked trainable train only after the head has
converged (with a random head beside them they would be pulled far from their pre-trained values).

The classifier is ``preprocess -> base -> head`` (:func:`tlstudio.core.models.catalogue.build_classifier`).
Preprocessing never trains. The layer tree (:mod:`tlstudio.core.models.layer_tree`) decides which
base layers a saved ``layer_state`` or "the top N blocks" unfreezes, with its per-family block rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tlstudio.core.config import TrainConfig


def trainable_flags(model: Any) -> dict[str, bool]:
    """``layer.trainable`` of every layer, nested models included, by "/"-joined layer path."""
    flags: dict[str, bool] = {}

    def walk(layer: Any, prefix: str) -> None:
        for child in getattr(layer, "layers", []) or []:
            path = f"{prefix}{child.name}"
            flags[path] = bool(child.trainable)
            walk(child, path + "/")

    walk(model, "")
    return flags


def apply_trainable_flags(model: Any, flags: dict[str, bool]) -> None:
    """Set the flags of :func:`trainable_flags` back, containers before their layers."""

    def walk(layer: Any, prefix: str) -> None:
        for child in getattr(layer, "layers", []) or []:
            path = f"{prefix}{child.name}"
            if path in flags:
                child.trainable = bool(flags[path])
            walk(child, path + "/")

    walk(model, "")


def layer_tree_for(model: Any, config: TrainConfig) -> Any:
    """The layer tree of the classifier, with the block rules of the base's family."""
    from tlstudio.core.models import layer_tree

    family = None
    if not config.base_model_path:
        from tlstudio.core.models.catalogue import get_spec

        family = get_spec(config.base).family
    return layer_tree.LayerTree.from_model(model, family=family)


def _freeze_preprocess(model: Any) -> None:
    try:
        model.get_layer("preprocess").trainable = False
    except ValueError:
        pass


def set_head_phase_trainable(model: Any, config: TrainConfig) -> None:
    """Phase 1: the base frozen, the head trainable. Unfrozen blocks train only in phase 2 (fine-tuning)."""
    model.get_layer("base").trainable = False
    model.get_layer("head").trainable = True
    _freeze_preprocess(model)


def fine_tune_wanted(model: Any, config: TrainConfig) -> bool:
    """Whether the run has a fine-tuning phase: a budget was given, or the layer state unfreezes base layers.

    Leaves the model with the head phase's flags.
    """
    if config.fine_tune_epochs > 0:
        return True
    if not config.layer_state:
        return False
    tree = layer_tree_for(model, config)
    tree.apply_state(config.layer_state)
    tree.apply_to(model)
    unfrozen = base_trainable_params(model) > 0
    set_head_phase_trainable(model, config)
    return unfrozen


def set_fine_tune_trainable(model: Any, config: TrainConfig, saved: dict[str, bool] | None = None) -> dict[str, bool]:
    """Phase 2: the layer state's (or the top ``unfreeze_top``) blocks and the head; returns the flags.

    ``saved`` (when resuming) are the exact flags the phase started with: what the layer tree
    decides can depend on weights that changed during the phase, e.g. BatchNorm statistics.
    """
    if isinstance(saved, dict) and saved:
        apply_trainable_flags(model, saved)
        return saved
    tree = layer_tree_for(model, config)
    if config.layer_state:
        tree.apply_state(config.layer_state)
    else:
        tree.freeze_base()
        tree.unfreeze_top_blocks(int(config.unfreeze_top))
    tree.apply_to(model)
    model.get_layer("head").trainable = True
    _freeze_preprocess(model)
    return trainable_flags(model)


def _count(weights: Any) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def base_trainable_params(model: Any) -> int:
    """Trainable parameters in the base (0: the base is frozen)."""
    return _count(model.get_layer("base").trainable_weights)


def describe_freezing(model: Any, *, fine_tune: bool = False, cached: bool = False) -> str:
    """One line for run.json: what trains in this phase."""
    base_total = _count(model.get_layer("base").weights)
    trainable = base_trainable_params(model)
    head = _count(model.get_layer("head").trainable_weights)
    where = "fine-tune" if fine_tune else "head phase"
    if trainable == 0:
        how = "base frozen" + (" (cached features)" if cached and not fine_tune else "")
    else:
        how = f"{trainable:,} of {base_total:,} base parameters trainable"
    return f"{where}: {how}; head {head:,} parameters"
