"""Model page: ticking base blocks with fine-tuning off turns fine-tuning on, and the page says so in words."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tlstudio.gui.training_plan import unfreezes_base


@pytest.fixture
def model_page(main_window, tiny_settings):
    main_window.state.update_train_config(**tiny_settings, fine_tune_epochs=0)
    page = main_window.page("model")
    page.auto_build = False
    return page


def tick(panel, tree, block: str, on: bool) -> None:
    index = panel.tree_model.index_of(tree.base.path + (block,))
    state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
    assert panel.tree_model.setData(index, state, Qt.ItemDataRole.CheckStateRole)


def test_ticking_blocks_says_they_will_be_fine_tuned_and_unticking_takes_it_back(qtbot, main_window, model_page):
    state = main_window.state
    with qtbot.waitSignal(model_page.build_finished, timeout=120000):
        model_page.build_model()
    panel, tree = model_page.layers, state.layer_tree
    note = panel.plan_note
    assert note.isVisibleTo(model_page)
    assert note.text() == "Only the new classifier learns; the base model stays as it is."
    top = tree.block_names()[-1]
    tick(panel, tree, top, True)
    assert note.text().startswith("1 block of the base will be fine-tuned after the classifier is trained")
    assert "ticking them turned fine-tuning on (up to 10 epochs)" in note.text()
    # What is said is what trains: core fine-tunes when the saved choice unfreezes base layers.
    assert unfreezes_base(state.train_config())
    plan = main_window.go_to("train").plan_label.text()
    assert "the layers you ticked on the Model page learn too, for up to 10 epochs" in plan
    tick(panel, tree, top, False)
    assert note.text() == "Only the new classifier learns; the base model stays as it is."
    assert not unfreezes_base(state.train_config())
    assert "No fine-tuning" in main_window.page("train").plan_label.text()
    panel.top_spin.setValue(3)
    panel.top_button.click()
    assert note.text().startswith("3 blocks of the base will be fine-tuned")
    state.update_train_config(fine_tune_epochs=4)  # a budget given on the Train page: no "turned on"
    assert note.text() == "3 blocks of the base will be fine-tuned after the classifier is trained (up to 4 epochs)."
