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
