"""A pure-Python tree of a model's layers, grouped into the blocks its architecture has.

The tree is built once from a Keras model (:meth:`LayerTree.from_model`); after that it holds
only names, shapes, counts and trainable flags, so the GUI and the CLI can show and edit it
without touching TensorFlow. :meth:`LayerTree.apply_to` writes the flags back onto a model
(the caller then recompiles), and :meth:`LayerTree.state` / :meth:`LayerTree.apply_state`
save and restore the frozen set by layer names (JSON).

Nested models become subtrees. The layers of a base are grouped into blocks derived from
their names, per architecture family (MobileNet ``conv_dw_N``/``conv_pw_N``, MobileNetV2
``block_N_``, ResNet ``conv4_block2_``, EfficientNet ``block6a_`` ...), with a generic fallback.

BatchNormalization layers of a pre-trained base always run in inference mode (the rule of the
Keras transfer-learning guide): the base is called with ``training=False``, and because in Keras 3
the ``training=True`` of ``fit`` reaches nested calls anyway (keras-team/keras#20285) while a
frozen BatchNormalization always normalises with its moving statistics, those layers are locked
frozen. A randomly initialised base has no statistics to keep (moving mean 0, variance 1), and
its BatchNormalization layers train normally. The tree notes which applies on each of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tlstudio.core.errors import TlstudioError

BN_NOTE = (
    "stays in inference mode (base is called with training=False); kept frozen, because Keras 3 "
    "runs a trainable BatchNormalization in training mode during fit"
)
BN_RANDOM_NOTE = "no learned statistics yet (random initialisation), so it trains like any layer"
IDENTITY_NOTE = "passes images through: the base scales its input itself"
PREPROCESS_NOTE = "input scaling for the base; always frozen"
STATE_VERSION = 1


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
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.layer_type,
            "output_shape": self.output_shape,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "trainable": self.trainable,
            "batchnorm": self.is_batchnorm,
            "locked": self.locked,
            "note": self.note,
            "children": [c.to_dict() for c in self.children],
        }


# ------------------------------------------------------------------------------------ grouping

GroupKey = Callable[[str], str | None]  # layer name -> group name, "stem", "top" or None (join previous)


def _re_key(pattern: str, fmt: Callable[[re.Match], str], extra: dict[str, str] | None = None) -> GroupKey:
    rx = re.compile(pattern)

    def key(name: str) -> str | None:
        m = rx.search(name)
        if m:
            return fmt(m)
        for prefix, group in (extra or {}).items():
            if re.match(prefix, name):
                return group
        return None

    return key


def _mobilenet_key(name: str) -> str | None:
    m = re.match(r"conv_(?:dw|pw|pad)_(\d+)", name)
    if m:
        return f"block_{m.group(1)}"
    if name.startswith("conv1"):
        return "stem"
    return None


def _mobilenetv2_key(name: str) -> str | None:
    m = re.match(r"(block_\d+)_", name)
    if m:
        return m.group(1)
    if name.startswith("expanded_conv"):
        return "block_0"
    if name in ("Conv1", "bn_Conv1", "Conv1_relu"):
        return "stem"
    if name.startswith("Conv_1") or name == "out_relu":
        return "top"
    return None


def _mobilenetv3_key(name: str) -> str | None:
    m = re.match(r"expanded_conv_(\d+)_", name)
    if m:
        return f"block_{m.group(1)}"
    if name.startswith("expanded_conv_"):
        return "block_0"
    if name in ("rescaling", "conv", "conv_bn") or name.startswith("rescaling"):
        return "stem"
    if name.startswith("conv_1"):
        return "top"
    return None


def _efficientnet_key(name: str) -> str | None:
    m = re.match(r"(block\d+[a-z])_", name)
    if m:
        return m.group(1)
    if name.startswith(("stem_", "rescaling", "normalization")):
        return "stem"
    if name.startswith("top_"):
        return "top"
    return None


def _resnet_key(name: str) -> str | None:
    m = re.match(r"(conv\d+_block\d+)_", name)
    if m:
        return m.group(1)
    if name.startswith(("conv1_", "pool1_")):
        return "stem"
    if name.startswith("post_"):
        return "top"
    return None


def _densenet_key(name: str) -> str | None:
    m = re.match(r"(conv\d+_block\d+)_", name)
    if m:
        return m.group(1)
    m = re.match(r"(pool\d+)_", name)
    if m:
        return f"transition_{m.group(1)[4:]}"
    if name.startswith("conv1") or name == "pool1" or name.startswith("zero_padding2d"):
        return "stem"
    if name in ("bn", "relu"):
        return "top"
    return None


def _block_key(name: str) -> str | None:  # VGG and Xception
    m = re.match(r"(block\d+)_", name)
    return m.group(1) if m else None


def _convnext_key(name: str) -> str | None:
    m = re.search(r"_stage_(\d+)_block_\d+_", name)
    if m:
        return f"stage_{m.group(1)}"
    m = re.search(r"_downsampling_block_(\d+)", name)
    if m:
        return f"stage_{int(m.group(1)) + 1}"
    if name.endswith(("_prestem_normalization", "_stem")):
        return "stem"
    if name.startswith("layer_normalization"):
        return "top"
    return None


_NASNET_RX = re.compile(
    r"^(?:separable_conv_\d_(?:bn_|pad_)?)?(?:normal|reduction|adjust)_.*?_(stem_\d+|reduce_\d+|\d+)$"
)


def _nasnet_key(name: str) -> str | None:
    m = _NASNET_RX.match(name)
    if m:
        cell = m.group(1)
        if cell.startswith("stem_"):
            return f"cell_stem_{cell[5:]}"
        if cell.startswith("reduce_"):
            return f"cell_reduce_{cell[7:]}"
        return f"cell_{cell}"
    if name.startswith("stem_"):
        return "stem"
    return None


def _inception_key_factory() -> GroupKey:
    # Inception layers are mostly auto-named: blocks end at the "mixedN" concatenations and the
    # stem ends at the second max pooling. The key therefore depends on order; see _group().
    return lambda name: None


FAMILY_KEYS: dict[str, GroupKey] = {
    "mobilenet": _mobilenet_key,
    "mobilenetv2": _mobilenetv2_key,
    "mobilenetv3": _mobilenetv3_key,
    "efficientnet": _efficientnet_key,
    "efficientnetv2": _efficientnet_key,
    "resnet": _resnet_key,
    "densenet": _densenet_key,
    "vgg": _block_key,
    "xception": _block_key,
    "convnext": _convnext_key,
    "nasnet": _nasnet_key,
}


def detect_family(names: list[str]) -> str | None:
    """Guess the architecture family from the layer names of a model (None = unknown)."""
    s = set(names)
    if "conv_dw_1" in s:
        return "mobilenet"
    if "block_1_expand" in s or "block_16_project" in s:
        return "mobilenetv2"
    if any(n.startswith("expanded_conv_1_") for n in names):
        return "mobilenetv3"
    if "stem_conv" in s and any(re.match(r"block\d+[a-z]_", n) for n in names):
        return "efficientnet"
    if any(re.match(r"conv\d+_block\d+_concat", n) for n in names):
        return "densenet"
    if any(re.match(r"conv\d+_block\d+_", n) for n in names):
        return "resnet"
    if "block2_sepconv1" in s:
        return "xception"
    if "block1_conv1" in s and "block1_pool" in s:
        return "vgg"
    if "mixed0" in s:
        return "inception"
    if any("_stage_0_block_0_" in n for n in names):
        return "convnext"
    if "stem_conv1" in s and any(n.startswith("normal_concat") for n in names):
        return "nasnet"
    return None


def _group(layers: list, family: str | None) -> list[tuple[str, list]]:
    """Split ``layers`` (in model order) into named groups. Returns [(group name, layers)]."""
    names = [layer.name for layer in layers]
    if family == "inception":
        return _group_inception(layers)
    key = FAMILY_KEYS.get(family or "")
    if key is None:
        return _group_fallback(layers)
    groups: dict[str, list] = {}
    current: str | None = None
    for layer, name in zip(layers, names, strict=True):
        k = key(name)
        if k is None:
            k = current or "stem"
        groups.setdefault(k, []).append(layer)
        current = k
    ordered = list(groups.items())
    # "top" always comes last, "stem" first.
    ordered.sort(key=lambda item: 0 if item[0] == "stem" else (2 if item[0] == "top" else 1))
    return ordered


def _group_inception(layers: list) -> list[tuple[str, list]]:
    import keras

    out: list[tuple[str, list]] = []
    current: list = []
    pools = 0
    stem_done = False
    for layer in layers:
        current.append(layer)
        if not stem_done and isinstance(layer, keras.layers.MaxPooling2D):
            pools += 1
            if pools == 2:
                out.append(("stem", current))
                current, stem_done = [], True
                continue
        if re.fullmatch(r"mixed\d+", layer.name):
            out.append((layer.name, current))
            current = []
    if current:
        out.append(("top", current))
    return out


_GENERIC_PATTERNS = [
    r"^(block_?\d+[a-z]?)_",
    r"^(conv\d+_block\d+)_",
    r"^(stage_?\d+)",
    r"^(layer\d+)",
    r"^(cell_?\d+)",
]
FALLBACK_MIN_LAYERS = 16  # smaller models are shown flat


def _group_fallback(layers: list) -> list[tuple[str, list]]:
    """Prefix grouping when most weighted layers share a block-like prefix, else consecutive chunks."""
    if len(layers) < FALLBACK_MIN_LAYERS:
        return []
    names = [layer.name for layer in layers]
    for pattern in _GENERIC_PATTERNS:
        rx = re.compile(pattern)
        hits = sum(1 for n in names if rx.match(n))
        if hits >= 0.6 * len(names):
            key = _re_key(pattern, lambda m: m.group(1))
            groups: dict[str, list] = {}
            current = None
            for layer in layers:
                k = key(layer.name) or current or "stem"
                groups.setdefault(k, []).append(layer)
                current = k
            return list(groups.items())
    # Consecutive chunks with about the same number of weighted layers each.
    weighted = [i for i, layer in enumerate(layers) if _count(layer.weights) > 0]
    chunks = 8
    per = max(1, -(-len(weighted) // chunks))
    out: list[tuple[str, list]] = []
    start = 0
    for c in range(0, len(weighted), per):
        end = weighted[min(c + per, len(weighted)) - 1] + 1 if c + per < len(weighted) else len(layers)
        part = layers[start:end]
        if part:
            out.append((f"layers {start + 1}-{end}", part))
        start = end
    return out


# ---------------------------------------------------------------------------------- the tree


def _count(weights) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


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


class LayerTree:
    """The editable tree of a model's layers; see the module docstring."""

    def __init__(self, root: LayerNode) -> None:
        self.root = root
        self._index: dict[tuple[str, ...], LayerNode] = {n.path: n for n in root.iter_nodes()}
        self._parents: dict[tuple[str, ...], LayerNode] = {}
        for node in root.iter_nodes():
            for child in node.children:
                self._parents[child.path] = node
        self._refresh(root)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_model(cls, model, family: str | None = None, *, lock_batchnorm: bool | None = None) -> LayerTree:
        """Build the tree of a Keras model (a whole classifier, or a base alone).

        Parameters
        ----------
        model : keras.Model
        family : str, optional
            Architecture family of the base (``BaseSpec.family``); guessed from layer names if None.
        lock_batchnorm : bool, optional
            Keep the base's BatchNormalization layers frozen (inference mode). By default each one
            is locked when it holds learned statistics, i.e. in a pre-trained base.
        """
        root = cls._model_node(model, (), (), family, in_base=False, top=True, lock_bn=lock_batchnorm)
        return cls(root)

    @classmethod
    def _model_node(
        cls, model, path, layer_path, family, *, in_base: bool, top: bool, lock_bn: bool | None
    ) -> LayerNode:
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
            groups = _group(layers, fam) or []
        # The family names the first base-like model only; models nested in it guess their own.
        child_family = None if base_like else family
        children: list[LayerNode] = []
        if groups:
            for gname, glayers in groups:
                gpath = path + (gname,)
                gchildren = [
                    cls._layer_node(layer, gpath, layer_path, child_family, in_base=in_base, lock_bn=lock_bn)
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
                    cls._layer_node(layer, path, layer_path, child_family, in_base=in_base, lock_bn=lock_bn)
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

    @classmethod
    def _layer_node(
        cls, layer, parent_path, parent_layer_path, family, *, in_base: bool, lock_bn: bool | None
    ) -> LayerNode:
        import keras

        path = parent_path + (layer.name,)
        layer_path = parent_layer_path + (layer.name,)
        if _is_container(layer) and isinstance(layer, keras.Model):
            return cls._model_node(
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

    # ---- derived state --------------------------------------------------------------------

    def _refresh(self, node: LayerNode) -> None:
        """Recompute counts and tri-state flags bottom-up under ``node``."""
        if node.kind == "layer":
            node.trainable_params = node.trainable_capacity if node.trainable else 0
            return
        for child in node.children:
            self._refresh(child)
        node.params = sum(c.params for c in node.children)
        node.trainable_params = sum(c.trainable_params for c in node.children)
        node.trainable = _combine(node.children)

    def _refresh_up(self, path: tuple[str, ...]) -> None:
        node = self._index[path]
        self._refresh(node)
        while path in self._parents:
            parent = self._parents[path]
            parent.params = sum(c.params for c in parent.children)
            parent.trainable_params = sum(c.trainable_params for c in parent.children)
            parent.trainable = _combine(parent.children)
            path = parent.path

    def _snapshot(self) -> dict[tuple[str, ...], bool | None]:
        return {p: n.trainable for p, n in self._index.items()}

    def _changed(self, before: dict[tuple[str, ...], bool | None]) -> list[tuple[str, ...]]:
        return [p for p, n in self._index.items() if before.get(p) != n.trainable]

    # ---- queries ---------------------------------------------------------------------------

    def node(self, path) -> LayerNode:
        """The node at ``path`` (a tuple of names from the root; ``()`` is the root)."""
        key = tuple(path)
        if key not in self._index:
            raise LayerTreeError(f"no layer or block at {'/'.join(key) or '(root)'}")
        return self._index[key]

    def find(self, name: str) -> LayerNode | None:
        """The first node (depth first) with this name, or None."""
        for node in self.root.iter_nodes():
            if node.name == name and node.path:
                return node
        return None

    @property
    def trainable_params(self) -> int:
        return self.root.trainable_params

    @property
    def total_params(self) -> int:
        return self.root.params

    @property
    def base(self) -> LayerNode:
        """The base model's node (the child named ``"base"``), or the root for a bare base."""
        for child in self.root.children:
            if child.kind == "model" and child.name == "base":
                return child
        return self.root

    def _block_parent(self) -> LayerNode:
        node = self.base
        # An own model used as the base may wrap everything in one nested model: look inside.
        while True:
            weighted = [c for c in node.children if c.params > 0]
            if len(weighted) == 1 and weighted[0].kind == "model":
                node = weighted[0]
            else:
                return node

    def block_names(self) -> list[str]:
        """Names of the base's blocks, bottom (input side) to top."""
        return [c.name for c in self._blocks()]

    def _blocks(self) -> list[LayerNode]:
        return [c for c in self._block_parent().children if c.params > 0 and not c.locked]

    def summary(self) -> str:
        """One line: trainable / total parameters."""
        return f"{self.trainable_params:,} of {self.total_params:,} parameters trainable"

    # ---- edits -------------------------------------------------------------------------------

    def set_trainable(self, path, value: bool) -> list[tuple[str, ...]]:
        """Make a layer, or every layer of a group or model, trainable (True) or frozen (False).

        Locked layers (the preprocessing) stay frozen.

        Returns
        -------
        list of tuple
            Paths of every node whose trainable state changed (layers, groups and models).
        """
        before = self._snapshot()
        node = self.node(path)
        self._set(node, bool(value))
        self._refresh_up(node.path)
        return self._changed(before)

    @staticmethod
    def _set(node: LayerNode, value: bool) -> None:
        for leaf in node.leaves():
            if not leaf.locked:
                leaf.trainable = value

    def _head_on(self) -> None:
        base = self.base
        if base is self.root:
            return
        for child in self.root.children:
            if child is not base:
                self._set(child, True)

    def freeze_base(self) -> list[tuple[str, ...]]:
        """Freeze every layer of the base; the head stays trainable."""
        before = self._snapshot()
        self._set(self.base, False)
        self._head_on()
        self._refresh(self.root)
        return self._changed(before)

    def unfreeze_top_blocks(self, n: int) -> list[tuple[str, ...]]:
        """Freeze the base, then make its top ``n`` blocks trainable (0 = base frozen)."""
        before = self._snapshot()
        self._set(self.base, False)
        blocks = self._blocks()
        if n > 0:
            for block in blocks[-n:]:
                self._set(block, True)
        self._head_on()
        self._refresh(self.root)
        return self._changed(before)

    def unfreeze_from(self, layer_name: str) -> list[tuple[str, ...]]:
        """Freeze the base, then make ``layer_name`` (a layer or a block) and everything above it trainable."""
        before = self._snapshot()
        base = self.base
        target = None
        for node in base.iter_nodes():
            if node.name == layer_name and node is not base:
                target = node
                break
        if target is None:
            raise LayerTreeError(f"the base has no layer or block named {layer_name!r}")
        first = next(target.leaves(), None)
        self._set(base, False)
        on = False
        for leaf in base.leaves():
            if leaf is first:
                on = True
            if on and not leaf.locked:
                leaf.trainable = True
        self._head_on()
        self._refresh(self.root)
        return self._changed(before)

    def unfreeze_all(self) -> list[tuple[str, ...]]:
        """Make every layer trainable (except the locked preprocessing)."""
        before = self._snapshot()
        self._set(self.root, True)
        self._refresh(self.root)
        return self._changed(before)

    # ---- persistence and application ---------------------------------------------------------

    def _weighted_leaves(self) -> list[LayerNode]:
        return [leaf for leaf in self.root.leaves() if leaf.params > 0 and not leaf.locked]

    def state(self) -> dict[str, Any]:
        """The trainable flags of every layer with weights, by layer path (JSON-able)."""
        return {
            "version": STATE_VERSION,
            "layers": [
                {"path": "/".join(leaf.layer_path), "trainable": bool(leaf.trainable)}
                for leaf in self._weighted_leaves()
            ],
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        }

    def apply_state(self, state: dict[str, Any]) -> list[tuple[str, ...]]:
        """Restore flags saved by :meth:`state`.

        Layers are matched by name; when a model's automatic layer names differ (``conv2d_7``
        against ``conv2d_101``) but the layer count is the same, by position.

        Raises
        ------
        LayerTreeError
            When the state does not fit this model.
        """
        if not isinstance(state, dict) or not isinstance(state.get("layers"), list):
            raise LayerTreeError("the saved layer state is not readable")
        if int(state.get("version", 1)) > STATE_VERSION:
            raise LayerTreeError("the saved layer state was written by a newer tlstudio")
        before = self._snapshot()
        leaves = self._weighted_leaves()
        by_path = {"/".join(leaf.layer_path): leaf for leaf in leaves}
        entries = state["layers"]
        same_length = len(entries) == len(leaves)
        missing = 0
        for i, entry in enumerate(entries):
            try:
                path, flag = str(entry["path"]), bool(entry["trainable"])
            except (KeyError, TypeError):
                raise LayerTreeError("the saved layer state is not readable") from None
            leaf = by_path.get(path)
            if leaf is None and same_length:
                leaf = leaves[i]
            if leaf is None:
                missing += 1
                continue
            leaf.trainable = flag
        if missing:
            # Roll back: a partial restore would train a different set than the one saved.
            for p, v in before.items():
                self._index[p].trainable = v
            self._refresh(self.root)
            raise LayerTreeError(
                f"the saved layer state does not fit this model ({missing} layers not found)"
            )
        self._refresh(self.root)
        return self._changed(before)

    def apply_to(self, model) -> None:
        """Set ``layer.trainable`` on ``model`` (the model this tree describes, or a rebuild of it).

        Nested models are switched on when any of their layers trains (Keras only trains the layers
        of a nested model whose own flag is on), then every layer gets its own flag. Recompile the
        model afterwards.
        """
        models = [n for n in self.root.iter_nodes() if n.kind == "model"]
        leaves = list(self.root.leaves())
        resolved_models = [(n, _resolve(model, n.layer_path)) for n in models]
        resolved_leaves = [(n, _resolve(model, n.layer_path)) for n in leaves]
        for node, layer in resolved_models:
            layer.trainable = node.trainable is not False
        for node, layer in resolved_leaves:
            layer.trainable = bool(node.trainable) and not node.locked

    def to_dict(self) -> dict[str, Any]:
        """The whole tree as nested dicts (for ``tlstudio layers --json``)."""
        return {
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "blocks": self.block_names(),
            "root": self.root.to_dict(),
        }


def _combine(children: list[LayerNode]) -> bool | None:
    weighted = [c for c in children if c.params > 0 and not c.locked]
    pool = weighted or [c for c in children if not c.locked] or children
    states = {c.trainable for c in pool}
    if not states:
        return None
    if len(states) == 1:
        return next(iter(states))
    return None


def _resolve(model, layer_path: tuple[str, ...]):
    obj = model
    for name in layer_path:
        try:
            obj = obj.get_layer(name)
        except (ValueError, AttributeError):
            raise LayerTreeError(f"the model has no layer {'/'.join(layer_path)}") from None
    return obj


def _model_output_text(model) -> str:
    try:
        return ", ".join(str(tuple(o.shape)) for o in model.outputs)
    except Exception:
        return ""


def apply_freezing(
    model, state: dict[str, Any] | None = None, *, unfreeze_top: int = 0, family: str | None = None
) -> LayerTree:
    """Freeze a classifier for training and return its tree: a saved ``state`` wins, else the top blocks.

    With no state and ``unfreeze_top=0`` the whole base is frozen (the head-only phase).
    The caller recompiles the model afterwards.
    """
    tree = LayerTree.from_model(model, family=family)
    if state:
        tree.apply_state(state)
    else:
        tree.unfreeze_top_blocks(unfreeze_top)
    tree.apply_to(model)
    return tree
