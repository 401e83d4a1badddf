"""The nodes of the layer tree, and how they are read from a Keras model (the only part that needs Keras).

BatchNormalization layers of a pre-trained base always run in inference mode (the rule of the
Keras transfer-learning guide): the base is called with ``training=False``, and because in Keras 3
the ``training=True`` of ``fit`` reaches nested calls anyway (keras-team/keras#20285) while a
frozen BatchNormalization always normalises with its moving statistics, those layers are locked
frozen. A randomly initialised base has no statistics to keep (moving mean 0, variance 1), and
its BatchNormalization layers train normally. Each node's note says which applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tlstudio.core.errors import TlstudioError
from tlstudio.core.models.block_rules import count_weights as _count
from tlstudio.core.models.block_rules import detect_family, group_layers

BN_NOTE = (
    "stays in inference mode (base is called with training=False); kept frozen, because Keras 3 "
    "runs a trainable BatchNormalization in training mode during fit"
)
BN_RANDOM_NOTE = "no learned statistics yet (random initialisation), so it trains like any layer"
IDENTITY_NOTE = "passes images through: the base scales its input itself"
PREPROCESS_NOTE = "input scaling for the base; always frozen"


class LayerTreeError(TlstudioError):
    """A layer path, name or saved state that does not fit the model."""


@dataclass
class LayerNode:
    """One node of the tree: a nested model, a group (block) of layers, or a layer.

    ``trainable`` is None for a group or model whose layers are partly trainable. Counts of a
    group or model are the sums over its layers. ``path`` is the tuple of node names from the
    root (the root's path is ``()``); ``layer_path`` is the chain of Keras layer names (groups
    left out) that finds the layer in the model.
    """

    name: str
    kind: str  # "model" | "group" | "layer"
    layer_type: str
    output_shape: str
    params: int
    trainable_params: int
    trainable: bool | None
    is_batchnorm: bool = False
    locked: bool = False
    note: str = ""
    children: list[LayerNode] = field(default_factory=list)
    path: tuple[str, ...] = ()
    layer_path: tuple[str, ...] = ()
    trainable_capacity: int = 0  # parameters that train when the layer is on (BatchNorm: gamma and beta)

    def iter_nodes(self) -> Iterator[LayerNode]:
        """This node and every node below it, depth first, in model order."""
        yield self
        for child in self.children:
            yield from child.iter_nodes()

    def leaves(self) -> Iterator[LayerNode]:
        """The layers (kind ``"layer"``) under this node, in model order."""
        for node in self.iter_nodes():
            if node.kind == "layer":
                yield node

    def to_dict(self) -> dict[str, Any]:
        data = {key: getattr(self, attr) for key, attr in _NODE_JSON.items()}
        data["children"] = [c.to_dict() for c in self.children]
        return data


#: JSON key -> LayerNode attribute (``tlstudio layers --json``); the paths stay out.
_NODE_JSON = {
    "name": "name", "kind": "kind", "type": "layer_type", "output_shape": "output_shape", "params": "params",
    "trainable_params": "trainable_params", "trainable": "trainable", "batchnorm": "is_batchnorm",
    "locked": "locked", "note": "note",
}


# ----------------------------------------------------------------------- reading a model


def _shape_text(layer) -> str:
    try:
        out = layer.output
    except Exception:  # a layer used more than once, or never called
        return ""
    try:
        if isinstance(out, (list, tuple)):
            return ", ".join(str(tuple(o.shape)) for o in out)
        return str(tuple(out.shape))
    except Exception:
        return ""


def has_learned_statistics(layer) -> bool:
    """True when a BatchNormalization layer's moving mean / variance differ from their initial 0 / 1."""
    import numpy as np

    try:
        mean = np.asarray(layer.moving_mean)
        var = np.asarray(layer.moving_variance)
    except (AttributeError, TypeError, ValueError):
        return True
    return not (np.all(mean == 0.0) and np.all(var == 1.0))


def _is_container(layer) -> bool:
    return bool(getattr(layer, "_layers", None)) and hasattr(layer, "layers")


def _model_output_text(model) -> str:
    try:
        return ", ".join(str(tuple(o.shape)) for o in model.outputs)
    except Exception:
        return ""


def model_node(
    model, path, layer_path, family, *, in_base: bool, top: bool, lock_bn: bool | None
) -> LayerNode:
    """The node of a (nested) Keras model, its layers grouped into blocks when it is a base."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if top:
        base_like = not any(layer.name in ("base", "head") for layer in layers)
    else:
        base_like = model.name != "head"
    in_base = in_base or base_like
    groups: list[tuple[str, list]] = []
    if base_like:
        fam = family or detect_family([layer.name for layer in layers])
        groups = group_layers(layers, fam) or []
    # The family names the first base-like model only; models nested in it guess their own.
    child_family = None if base_like else family
    children: list[LayerNode] = []
    if groups:
        for gname, glayers in groups:
            gpath = path + (gname,)
            gchildren = [
                layer_node(layer, gpath, layer_path, child_family, in_base=in_base, lock_bn=lock_bn)
                for layer in glayers
            ]
            children.append(
                LayerNode(
                    name=gname,
                    kind="group",
                    layer_type="Block",
                    output_shape=gchildren[-1].output_shape if gchildren else "",
                    params=0,
                    trainable_params=0,
                    trainable=None,
                    children=gchildren,
                    path=gpath,
                )
            )
    else:
        for layer in layers:
            children.append(
                layer_node(layer, path, layer_path, child_family, in_base=in_base, lock_bn=lock_bn)
            )
    return LayerNode(
        name=model.name,
        kind="model",
        layer_type=type(model).__name__,
        output_shape=_model_output_text(model),
        params=0,
        trainable_params=0,
        trainable=None,
        children=children,
        path=path,
        layer_path=layer_path,
        note="called with training=False" if (not top and model.name == "base") else "",
    )

def layer_node(
    layer, parent_path, parent_layer_path, family, *, in_base: bool, lock_bn: bool | None
) -> LayerNode:
    """The node of one layer (or, for a nested model, of that model)."""
    import keras

    path = parent_path + (layer.name,)
    layer_path = parent_layer_path + (layer.name,)
    if _is_container(layer) and isinstance(layer, keras.Model):
        return model_node(
            layer, path, layer_path, family, in_base=in_base, top=False, lock_bn=lock_bn
        )
    is_bn = isinstance(layer, keras.layers.BatchNormalization)
    # The preprocessing is fixed arithmetic; BatchNormalization in the base stays in inference
    # mode, which Keras 3 only guarantees for a frozen layer (fit's training=True reaches nested
    # calls), so both are locked.
    bn_locked = False
    if is_bn and in_base:
        bn_locked = lock_bn if lock_bn is not None else has_learned_statistics(layer)
    locked = (layer.name == "preprocess" and len(parent_layer_path) == 0) or bn_locked
    capacity_vars = getattr(layer, "_trainable_variables", None)
    capacity = _count(capacity_vars) if capacity_vars is not None else _count(layer.trainable_weights)
    note = ""
    if is_bn and in_base:
        note = BN_NOTE if bn_locked else BN_RANDOM_NOTE
    elif locked:
        note = PREPROCESS_NOTE if type(layer).__name__ != "Identity" else IDENTITY_NOTE
    return LayerNode(
        name=layer.name,
        kind="layer",
        layer_type=type(layer).__name__,
        output_shape=_shape_text(layer),
        params=_count(layer.weights),
        trainable_params=0,
        trainable=False if locked else bool(layer.trainable),
        is_batchnorm=is_bn,
        locked=locked,
        note=note,
        path=path,
        layer_path=layer_path,
        trainable_capacity=capacity,
    )
