"""The Model page: build on a worker, layer tree presets, head settings, and the project round trip."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def model_page(main_window, tiny_settings):
    main_window.state.update_train_config(**tiny_settings)
    page = main_window.page("model")
    page.auto_build = False
    return page


def build(qtbot, page, expect="finished"):
    with qtbot.waitSignal(page.build_finished, timeout=120000) as blocker:
        page.build_model()
        assert page.busy.isVisibleTo(page) or blocker.signal_triggered
    assert blocker.args == [expect]


def test_build_shows_the_layer_tree_and_totals(qtbot, main_window, model_page):
    state = main_window.state
    build(qtbot, model_page)
    tree = state.layer_tree
    assert tree is not None and model_page.layers.tree_model.tree is tree
    assert not model_page.busy.isVisibleTo(model_page)
    assert model_page.layers.view.isVisibleTo(model_page)
    # Default with no fine-tuning epochs: the base is frozen, the head trains.
    assert tree.base.trainable is False and tree.trainable_params > 0
    assert f"{tree.trainable_params:,}" in model_page.layers.totals.text()
    assert f"{tree.total_params - tree.trainable_params:,}" in model_page.layers.totals.text()
    assert state.tf_ready
    assert main_window.sidebar.status["model"][0] == "done"


def test_presets_and_check_boxes_go_into_the_project(qtbot, main_window, model_page):
    state = main_window.state
    build(qtbot, model_page)
    tree = state.layer_tree
    blocks = tree.block_names()
    model_page.layers.top_spin.setValue(3)
    model_page.layers.top_button.click()
    trained = [b for b in blocks if tree.node(tree.base.path + (b,)).trainable]
    assert trained == blocks[-3:]
    assert state.project.train.unfreeze_top == 3
    assert state.project.train.layer_state == tree.state() and state.dirty
    # Unfreeze from the selected block.
    idx = model_page.layers.proxy.mapFromSource(model_page.layers.tree_model.index_of(tree.base.path + (blocks[5],)))
    model_page.layers.view.setCurrentIndex(idx)
    assert model_page.layers.from_button.isEnabled()
    model_page.layers.from_button.click()
    assert [b for b in blocks if tree.node(tree.base.path + (b,)).trainable] == blocks[5:]
    model_page.layers.all_button.click()
    assert tree.base.trainable is True
    model_page.layers.freeze_button.click()
    assert tree.base.trainable is False and state.project.train.unfreeze_top == 0
    # A check box in the view's model edits the same tree and updates the totals.
    block = model_page.layers.tree_model.index_of(tree.base.path + (blocks[-1],))
    model_page.layers.tree_model.setData(block, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    assert f"{tree.trainable_params:,}" in model_page.layers.totals.text()
    assert state.project.train.layer_state == tree.state()


def test_changing_the_base_drops_the_tree_and_its_frozen_set(qtbot, main_window, model_page):
    state = main_window.state
    build(qtbot, model_page)
    model_page.layers.unfreeze_all()
    assert state.project.train.layer_state is not None
    model_page.alpha_combo.setCurrentIndex(model_page.alpha_combo.findData(0.5))
    assert state.project.train.alpha == 0.5
    assert state.layer_tree is None and state.project.train.layer_state is None
    # Head settings change the model too, but keep the frozen set.
    build(qtbot, model_page)
    model_page.layers.unfreeze_all()
    model_page.dropout_spin.setValue(0.4)
    assert state.project.train.dropout == 0.4 and state.layer_tree is None
    assert state.project.train.layer_state is not None


def test_weights_choice_shows_where_weights_come_from(main_window, model_page):
    state = main_window.state
    assert model_page.weights_box.w_random.isChecked()
    assert "pre-training" in model_page.weights_box.status.text()
    model_page.size_spin.setValue(224)
    model_page.weights_box.w_imagenet.setChecked(True)
    assert state.project.train.weights == "imagenet"
    assert "shipped with tlstudio" in model_page.weights_box.status.text()
    state.update_train_config(weights="/nowhere/weights.h5")
    assert model_page.weights_box.w_file.isChecked() and "not found" in model_page.weights_box.status.text()
    with_errors = []
    model_page.build_finished.connect(with_errors.append)
    model_page.build_model()  # refused up front with the reason
    assert with_errors == ["failed"] and "not found" in model_page.error_banner.messages[0]


def test_project_round_trip_restores_settings_and_frozen_set(qtbot, main_window, model_page, dialogs, tmp_path,
                                                            image_folder):
    from tlstudio.gui.main_window import MainWindow

    state = main_window.state
    root = image_folder({"a": 5, "b": 5, "c": 5})
    main_window.open_dataset(root)
    qtbot.waitUntil(lambda: state.scan is not None, timeout=15000)
    model_page.pooling_combo.setCurrentIndex(model_page.pooling_combo.findData("max"))
    model_page.hidden_spin.setValue(16)
    model_page.dropout_spin.setValue(0.3)
    state.update_train_config(fine_tune_epochs=2, head_epochs=3, batch_size=8, split={"val_fraction": 0.4})
    build(qtbot, model_page)
    tree = state.layer_tree
    assert model_page.last_build.num_classes == 3
    blocks = tree.block_names()
    model_page.layers.tree_model.setData(model_page.layers.tree_model.index_of(tree.base.path + (blocks[-1],)),
                                  Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    model_page.layers.tree_model.setData(model_page.layers.tree_model.index_of(tree.base.path + (blocks[2],)),
                                  Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    saved_state = tree.state()
    saved_config = state.train_config()
    path = tmp_path / "proj.tlsproj"
    assert main_window.projects.write(path)

    other = MainWindow()
    qtbot.addWidget(other)
    try:
        assert other.open_project(path)
        qtbot.waitUntil(lambda: other.state.scan is not None, timeout=15000)
        cfg = other.state.project.train
        for name in ("base", "alpha", "input_size", "weights", "pooling", "dropout", "hidden_units",
                     "fine_tune_epochs", "head_epochs", "batch_size", "split", "data_dir"):
            assert getattr(cfg, name) == getattr(saved_config, name), name
        assert cfg.layer_state == saved_state
        page = other.page("model")
        page.auto_build = False
        assert page.pooling_combo.currentData() == "max" and page.hidden_spin.value() == 16
        build(qtbot, page)
        assert other.state.layer_tree.state() == saved_state  # the exact frozen set
        assert not other.state.dirty
    finally:
        other.state.dirty = False
        other.close()
        other.shutdown()


def test_a_saved_frozen_set_is_dropped_when_the_architecture_changes_before_a_build(main_window, model_page):
    state = main_window.state
    state.update_train_config(layer_state={"version": 1, "layers": [{"path": "base/conv1", "trainable": True}]})
    state.update_train_config(fine_tune_epochs=3)  # not an architecture change
    assert state.project.train.layer_state is not None
    model_page.size_spin.setValue(64)
    assert state.project.train.input_size == 64 and state.project.train.layer_state is None


def test_the_default_frozen_set_follows_the_fine_tuning_settings(qtbot, main_window, model_page):
    state = main_window.state
    build(qtbot, model_page)
    tree = state.layer_tree
    assert tree.base.trainable is False  # no fine-tuning: the head only
    state.update_train_config(fine_tune_epochs=2, unfreeze_top=1)
    assert [b for b in tree.block_names() if tree.node(tree.base.path + (b,)).trainable] == tree.block_names()[-1:]
    assert state.project.train.layer_state is None  # still the default, not a saved choice
    # Nothing stored: core unfreezes the same top block by default, so what trains is what is shown.
    assert state.train_config().layer_state is None
    # Once chosen by hand, the choice stays.
    model_page.layers.unfreeze_all()
    state.update_train_config(fine_tune_epochs=0)
    assert tree.base.trainable is True


def test_building_only_to_look_changes_nothing_that_trains(qtbot, main_window, model_page):
    state = main_window.state
    state.update_train_config(fine_tune_epochs=3, unfreeze_top=2)
    build(qtbot, model_page)
    assert state.layer_tree is not None
    assert state.project.train.layer_state is None  # looking stored no choice
    assert state.train_config().layer_state is None  # so fine-tuning unfreezes the top 2 blocks, as by default
    train = main_window.go_to("train")
    assert "top 2 blocks of the base" in train.plan_label.text()
    # A choice made by hand is what trains, and the Train page says so.
    model_page.layers.unfreeze_all()
    assert state.train_config().layer_state is not None
    assert "layers you ticked" in train.plan_label.text()
