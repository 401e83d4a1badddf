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

from typing import Any

from tlstudio.core.models.block_rules import detect_family as detect_family  # re-exported
from tlstudio.core.models.layer_nodes import BN_NOTE as BN_NOTE  # re-exported
from tlstudio.core.models.layer_nodes import (
    LayerNode,
    LayerTreeError,
    model_node,
)
from tlstudio.core.models.layer_nodes import (
    has_learned_statistics as has_learned_statistics,  # re-exported
)

STATE_VERSION = 1


# ---------------------------------------------------------------------------------- the tree


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
        root = model_node(model, (), (), family, in_base=False, top=True, lock_bn=lock_batchnorm)
        return cls(root)

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
