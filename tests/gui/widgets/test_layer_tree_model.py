"""LayerTreeModel: a Qt adapter on the core LayerTree; check boxes edit the core tree itself."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tlstudio.gui.widgets.layer_tree_model import (
    COL_NAME,
    COL_TRAINABLE,
    COLUMNS,
    LayerFilterProxy,
    LayerTreeModel,
)


def leaf_flags(tree, node):
    return {leaf.path: leaf.trainable for leaf in node.leaves()}


def test_structure_mirrors_the_core_tree(qtmodeltester, tiny_tree):
    tree = tiny_tree()
    model = LayerTreeModel(tree)
    qtmodeltester.check(model)
    assert model.columnCount() == len(COLUMNS) == 5
    top = [model.data(model.index(r, 0)) for r in range(model.rowCount())]
    assert top == [c.name for c in tree.root.children]
    base = model.index_of(tree.base.path)
    assert model.rowCount(base) == len(tree.base.children)
    assert model.node(base) is tree.base  # the same objects, not a copy


def test_toggling_a_block_flips_exactly_its_layers(qtbot, tiny_tree):
    tree = tiny_tree()
    tree.freeze_base()
    model = LayerTreeModel(tree)
    block = tree.node(tree.base.path + (tree.block_names()[-1],))
    others_before = {p: n.trainable for p, n in ((leaf.path, leaf) for leaf in tree.root.leaves())
                     if p[: len(block.path)] != block.path}
    before = tree.trainable_params
    index = model.index_of(block.path)
    assert model.data(index, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    with qtbot.waitSignals([model.dataChanged, model.trainable_changed]):
        assert model.setData(index, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    assert all(v for p, v in leaf_flags(tree, block).items() if not tree.node(p).locked)
    others_after = {leaf.path: leaf.trainable for leaf in tree.root.leaves() if leaf.path[: len(block.path)] != block.path}
    assert others_after == others_before
    assert tree.trainable_params == before + block.trainable_params > before
    # The base is now partly trainable: tri-state, and the Trainable column counts it.
    base_index = model.index_of(tree.base.path)
    assert model.data(base_index, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.PartiallyChecked
    assert model.data(model.index_of(tree.base.path, COL_TRAINABLE)).endswith(" %")
    # An int check state (as a view sends it) works too; unchecking restores the counts.
    assert model.setData(index, 0, Qt.ItemDataRole.CheckStateRole)
    assert tree.trainable_params == before


def test_partial_base_click_trains_all_of_it(tiny_tree):
    tree = tiny_tree()
    tree.unfreeze_top_blocks(1)
    model = LayerTreeModel(tree)
    base = model.index_of(tree.base.path)
    assert model.data(base, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.PartiallyChecked
    model.setData(base, Qt.CheckState.PartiallyChecked, Qt.ItemDataRole.CheckStateRole)
    assert tree.base.trainable is True


def test_locked_layers_are_not_checkable_and_batchnorm_is_marked(tiny_tree):
    tree = tiny_tree("bn_locked")
    model = LayerTreeModel(tree)
    pre = model.index_of(("preprocess",))
    assert not model.flags(pre) & Qt.ItemFlag.ItemIsUserCheckable
    assert not model.setData(pre, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    bn = next(n for n in tree.root.iter_nodes() if n.is_batchnorm)
    idx = model.index_of(bn.path)
    assert not model.data(idx, Qt.ItemDataRole.DecorationRole).isNull()
    assert "inference mode" in model.data(idx, Qt.ItemDataRole.ToolTipRole)
    assert model.data(model.index_of(bn.path, COL_TRAINABLE)) == "inference mode"


def test_presets_refresh_the_view(qtbot, tiny_tree):
    tree = tiny_tree()
    model = LayerTreeModel(tree)
    with qtbot.waitSignal(model.dataChanged):
        model.apply("freeze_base")
    assert tree.base.trainable is False
    model.apply("unfreeze_top_blocks", 2)
    trained = [b for b in tree.block_names() if tree.node(tree.base.path + (b,)).trainable]
    assert trained == tree.block_names()[-2:]
    model.apply("unfreeze_all")
    assert tree.trainable_params == sum(leaf.trainable_capacity for leaf in tree.root.leaves() if not leaf.locked)


def test_filter_keeps_the_parents_of_matches(tiny_tree):
    tree = tiny_tree()
    model = LayerTreeModel(tree)
    proxy = LayerFilterProxy()
    proxy.setSourceModel(model)
    proxy.setFilterFixedString("conv_pw_13_bn")
    assert proxy.rowCount() == 1  # only the base holds a match
    base = proxy.index(0, COL_NAME)
    assert proxy.data(base) == "base"
    block = proxy.index(0, COL_NAME, base)
    layer = proxy.index(0, COL_NAME, block)
    assert proxy.data(layer) == "conv_pw_13_bn"
    # Edits through the proxy reach the core tree.
    proxy.setData(layer, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    assert tree.find("conv_pw_13_bn").trainable is False
