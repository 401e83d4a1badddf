"""Train page: a setting tlstudio chooses shows "Automatic" (and what the current run chose), never a default number."""

from __future__ import annotations

from support.trained_runs import record_for, trained_runs  # noqa: F401

from tlstudio.gui.pages.train import TrainPage
from tlstudio.gui.state import AppState


def field_texts(settings) -> dict[str, str]:
    return {"epochs": settings.head_epochs.text(), "head_lr": settings.head_lr.currentText(),
            "fine_tune_lr": settings.fine_tune_lr.currentText(), "dropout": settings.dropout.text(),
            "threshold": settings.threshold.text()}


def test_automatic_fields_say_automatic_not_their_default_number(qtbot):
    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    settings = page.settings
    assert field_texts(settings) == dict.fromkeys(("epochs", "head_lr", "fine_tune_lr", "dropout", "threshold"),
                                                  "Automatic")
    assert not settings.head_epochs.isEnabled() and not settings.dropout.isEnabled()
    # Unticked: the person's number comes back, editable; ticked again: "Automatic" again, the value kept.
    settings.auto_boxes["dropout"].setChecked(False)
    settings.auto_boxes["epochs"].setChecked(False)
    assert settings.dropout.text() == "0.20" and settings.dropout.isEnabled()
    assert settings.head_epochs.text() == "10" and settings.head_epochs.isEnabled()
    settings.dropout.setValue(0.35)
    settings.auto_boxes["dropout"].setChecked(True)
    assert settings.dropout.text() == "Automatic" and state.project.train.dropout == 0.35
    settings.auto_boxes["head_lr"].setChecked(False)
    assert settings.head_lr.currentText() == "0.001" and settings.head_lr.value() == 0.001
    # The Train page's words follow: no "up to 10 epochs" while the classifier runs until it stops improving.
    settings.auto_boxes["epochs"].setChecked(True)
    assert "until it stops improving" in page.plan_label.text()
    assert "10 epochs" not in page.context_label.text()


def test_varied_images_use_the_epoch_number(qtbot):
    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    state.update_train_config(augment={"enabled": True})  # no feature cache: the number is what runs
    assert page.settings.head_epochs.text() == "10" and page.settings.head_epochs.isEnabled()
    assert "up to 10 epochs" in page.plan_label.text()


def test_the_fields_show_what_the_current_run_chose(qtbot, trained_runs):  # noqa: F811
    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    run = trained_runs.runs[1]  # chose dropout and the "not sure" threshold; its learning rate was given
    state.add_run(record_for(run, name="run 2"))
    state.set_current_run(str(run))
    texts = field_texts(page.settings)
    assert texts["dropout"] == "Automatic (last run: 0.00)"
    assert texts["threshold"] == "Automatic (last run: 0.75)"
    assert texts["head_lr"] == "Automatic"  # that run did not choose it
    state.set_current_run("")
    assert field_texts(page.settings)["dropout"] == "Automatic"


def test_fine_tuning_epochs_say_what_ticked_layers_will_run(qtbot):
    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    field = page.settings.fine_tune_epochs
    assert field.text() == "0"
    ticked = {"version": 1, "layers": [{"path": "base/conv1", "trainable": True}]}
    state.update_train_config(layer_state=ticked)  # ticked on the Model page: core fine-tunes 10 epochs
    assert field.text() == "10 (layers ticked on the Model page)" and field.value() == 0
    state.update_train_config(auto_fine_tune_lr=False)
    assert page.settings.fine_tune_lr.isEnabled()  # a fine-tuning phase will run: its rate can be set
    field.setValue(4)
    assert field.text() == "4" and state.project.train.fine_tune_epochs == 4
    state.update_train_config(fine_tune_epochs=0, layer_state=None)
    assert field.text() == "0" and not page.settings.fine_tune_lr.isEnabled()


def test_the_model_pages_dropout_says_automatic_too(qtbot, main_window):
    page = main_window.page("model")
    page.auto_build = False
    main_window.go_to("model")
    assert page.dropout_spin.text() == "Automatic" and not page.dropout_spin.isEnabled()
    main_window.state.update_train_config(auto_dropout=False)  # unticked on the Train page
    assert page.dropout_spin.text() == "0.20" and page.dropout_spin.isEnabled()
