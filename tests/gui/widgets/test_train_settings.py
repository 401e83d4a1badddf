"""The Train page's "Chosen for you" section: automatic by default, a value of one's own on untick."""

from __future__ import annotations

import os

import pytest

from tlstudio.gui.state import AppState
from tlstudio.gui.widgets.train_settings import AUTO_SETTINGS, TrainSettingsForm


@pytest.fixture
def form(qtbot):
    state = AppState()
    form = TrainSettingsForm(state)
    qtbot.addWidget(form)
    form.resize(520, 1300)
    form.show()
    return form


def test_every_choosable_setting_is_automatic_by_default_and_its_field_rests(form):
    train = form.state.project.train
    for name, field_name in AUTO_SETTINGS:
        assert train.is_auto(name), name
        assert form.auto_boxes[name].isChecked(), name
        assert not getattr(form, field_name).isEnabled(), field_name
    if os.environ.get("TLSTUDIO_SCREENSHOTS"):
        form.grab().save(os.path.join(os.environ["TLSTUDIO_SCREENSHOTS"], "train_settings_auto.png"))


def test_unticking_lets_a_value_be_set_and_ticking_gives_the_choice_back(form):
    form.auto_boxes["dropout"].setChecked(False)
    train = form.state.project.train
    assert train.auto_dropout is False and not train.is_auto("dropout")
    assert form.dropout.isEnabled()
    form.dropout.setValue(0.45)
    assert form.state.project.train.dropout == pytest.approx(0.45)
    form.auto_boxes["threshold"].setChecked(False)
    form.threshold.setValue(0.6)
    assert form.state.project.train.threshold == pytest.approx(0.6)
    assert not form.state.project.train.is_auto("threshold")
    form.auto_boxes["dropout"].setChecked(True)
    assert form.state.project.train.is_auto("dropout") and not form.dropout.isEnabled()
    form.reset_to_defaults()
    train = form.state.project.train
    assert train.auto_threshold is None and train.threshold == 0.0 and train.is_auto("threshold")
    assert form.auto_boxes["threshold"].isChecked()


def test_after_a_run_the_form_says_what_it_chose_in_plain_words(qtbot, tmp_path):
    import json

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "status": "finished", "epochs_run": 23, "kept": "head only",
        "settings": {"head_lr": 0.003, "dropout": 0.1, "fine_tune_lr": 3e-5, "automatic": ["head_lr", "dropout"]},
        "threshold": {"value": 0.55, "source": "validation"}}))
    state = AppState()
    form = TrainSettingsForm(state)
    qtbot.addWidget(form)
    state.current_run_changed.emit(str(run))
    text = form.chosen_label.text()
    assert text.startswith("The last run used: learning rate 0.003 (chosen), dropout 0.1 (chosen), "
                           "fine-tuning learning rate 3e-05, 23 epochs, \"not sure\" below 55%.")
    assert "kept the model from before fine-tuning" in text
    state.current_run_changed.emit("")
    assert form.chosen_label.text() == ""


def test_the_cluster_address_is_remembered_and_given_to_the_run(qtbot, tmp_path):
    import importlib.util

    from tlstudio.gui import settings as ui_settings
    from tlstudio.gui.state import AppState
    from tlstudio.gui.widgets.train_settings import TrainSettingsForm

    form = TrainSettingsForm(AppState())
    qtbot.addWidget(form)
    if importlib.util.find_spec("ray") is None:
        assert not form.cluster.isEnabled() and form.cluster_address() == ""
        return
    assert form.cluster_address() == ""  # this computer by default
    form.cluster.setText("  local:2 ")
    form.cluster.editingFinished.emit()
    assert form.cluster_address() == "local:2" and ui_settings.get("train/cluster") == "local:2"
    again = TrainSettingsForm(AppState())
    qtbot.addWidget(again)
    assert again.cluster_address() == "local:2"
    ui_settings.put("train/cluster", "")
