"""The Train page: settings go to the project, a tiny real training fills the plots, cancel keeps a model."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt
from support.trained_runs import record_for, trained_runs  # noqa: F401

from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_dataset
from tlstudio.gui.pages.train import TrainPage
from tlstudio.gui.state import AppState

SHOTS = Path(os.environ.get("TLSTUDIO_SHOTS", "")) if os.environ.get("TLSTUDIO_SHOTS") else None


def _shot(widget, name: str) -> None:
    """Save a screenshot when TLSTUDIO_SHOTS names a folder (for looking at the page by eye)."""
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(SHOTS / name))


@pytest.fixture
def page_with_data(qtbot, image_folder, tmp_path):
    data = image_folder({"cats": 8, "dogs": 8}, size=(32, 32))
    state = AppState()
    state.set_scan(scan_dataset(data))
    state.update_train_config(base="MobileNet", alpha=0.25, weights="none", input_size=32, batch_size=4,
                              head_epochs=2, fine_tune_epochs=0, early_stopping=False)
    os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")  # new runs go under paths.runs_dir()
    page = TrainPage(state)
    qtbot.addWidget(page)
    page.resize(1280, 820)
    page.show()
    yield state, page
    assert page.shutdown(60_000)


def _wait_until_done(qtbot, state, timeout=180_000):
    qtbot.waitUntil(lambda: not state.training, timeout=timeout)


def test_settings_form_edits_the_project_and_resets(qtbot):
    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    page.settings.head_epochs.setValue(7)
    page.settings.fine_tune_epochs.setValue(3)
    page.settings.batch_size.setValue(16)
    page.settings.head_lr.setEditText("0.005")
    page.settings.head_lr.lineEdit().editingFinished.emit()  # as Enter or leaving the field does
    page.settings.optimizer.setCurrentIndex(page.settings.optimizer.findData("sgd"))
    page.settings.resize_policy.setCurrentIndex(page.settings.resize_policy.findData("pad"))
    page.settings.augment_group.setChecked(True)
    page.settings.aug_rotation.setValue(0.25)
    page.settings.class_weights.setCurrentIndex(page.settings.class_weights.findData("none"))
    t = state.project.train
    assert (t.head_epochs, t.fine_tune_epochs, t.batch_size, t.head_lr, t.optimizer, t.resize_policy) == (
        7, 3, 16, 0.005, "sgd", "pad")
    assert t.augment.enabled and t.augment.rotation == 0.25 and t.class_weights == "none"
    assert state.dirty
    assert not page.settings.fine_tune_lr.isEnabled()  # automatic by default: the run chooses it
    page.settings.auto_boxes["fine_tune_lr"].setChecked(False)
    assert page.settings.fine_tune_lr.isEnabled()
    # Every setting has a plain-language tooltip.
    f = page.settings
    for w in (f.head_epochs, f.fine_tune_epochs, f.batch_size, f.head_lr, f.fine_tune_lr, f.optimizer, f.early_stopping,
              f.patience, f.label_smoothing, f.class_weights, f.resize_policy, f.aug_flip, f.aug_zoom):
        assert len(w.toolTip()) > 20
    # A change made elsewhere shows up in the form.
    state.update_train_config(head_epochs=12)
    assert page.settings.head_epochs.value() == 12
    page.settings.reset_button.click()
    d = TrainConfig()
    t = state.project.train
    assert (t.head_epochs, t.batch_size, t.head_lr, t.optimizer, t.augment) == (
        d.head_epochs, d.batch_size, d.head_lr, d.optimizer, d.augment)
    assert page.settings.head_epochs.value() == d.head_epochs and not page.settings.augment_group.isChecked()
    assert not page.train_button.isEnabled()  # no dataset yet


def test_augmentation_preview_is_made_off_the_gui_thread(qtbot, page_with_data):
    state, page = page_with_data
    state.update_train_config(augment={"enabled": True, "rotation": 0.3})
    preview = page.settings.preview

    def shown_with_variants() -> bool:  # an earlier request (augmentation off) may land first
        return preview.shown == 3 and all(not row[1].pixmap().isNull() for row in preview.labels)

    qtbot.waitUntil(shown_with_variants, timeout=20_000)
    originals = [row[0].pixmap() for row in preview.labels]
    assert all(not p.isNull() for p in originals)


def test_training_from_the_page_fills_the_plots_and_lists_the_run(qtbot, page_with_data):
    state, page = page_with_data
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert state.training and page.is_training()
    assert not page.train_button.isEnabled() and page.cancel_button.isEnabled()
    assert page.start_training() is False  # a second run cannot start while one runs
    qtbot.waitUntil(lambda: page.plots.epoch_count() >= 1, timeout=180_000)
    _shot(page, "train-mid.png")
    _wait_until_done(qtbot, state)
    _shot(page, "train-after.png")

    assert page.last_error is None, page.log_text()
    x, loss = page.plots.train_loss_curve.getData()
    assert list(x) == [1.0, 2.0] and np.all(np.isfinite(loss))
    _, val_acc = page.plots.val_acc_curve.getData()
    assert len(val_acc) == 2 and np.all((val_acc >= 0) & (val_acc <= 1))
    bx, by = page.plots.batch_loss_curve.getData()
    assert len(bx) == page.plots.batch_count() > 0 and bx[-1] == pytest.approx(2.0)
    log = page.log_text()
    assert "Training the classifier" in log and "Epoch 2/2" in log and "Run started" in log
    assert page.progress.format() == "Finished"

    assert len(state.project.runs) == 1
    run = state.project.runs[0]
    assert run.status == "finished" and run.epochs_run == 2 and run.val_accuracy is not None
    assert state.current_run == run.run_dir
    assert (Path(run.run_dir) / "evaluation.json").is_file()
    assert page.train_button.isEnabled() and not page.cancel_button.isEnabled()
    assert page.open_folder_button.isEnabled()


class _CancelOnFirstEpoch(QObject):
    def __init__(self, page):
        super().__init__()
        self.page = page
        self.epochs = 0

    def on_epoch(self, event):
        self.epochs += 1
        if self.epochs == 1:
            self.page.cancel()


def test_cancel_from_the_first_epoch_keeps_a_usable_model(qtbot, page_with_data):
    state, page = page_with_data
    # End to end, without the feature cache: on cached features 30 epochs of the small classifier take
    # milliseconds, and the run would finish before the cancel arrives.
    state.update_train_config(head_epochs=30, use_cache=False)
    assert page.start_training()
    canceller = _CancelOnFirstEpoch(page)
    page._worker.epoch_ended.connect(canceller.on_epoch)
    _wait_until_done(qtbot, state)

    assert len(state.project.runs) == 1
    run = state.project.runs[0]
    assert run.status == "cancelled"
    assert 1 <= run.epochs_run < 30
    assert "Cancel" in page.progress.format()
    model_file = Path(page.last_result.model_path)
    assert model_file.is_file()

    import keras

    model = keras.models.load_model(model_file)
    probs = model.predict(np.full((1, 32, 32, 3), 128, dtype="float32"), verbose=0)
    assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1.0) < 1e-4


def test_a_run_that_cannot_train_says_why_in_one_line(qtbot, image_folder, tmp_path):
    data = image_folder({"cats": 4}, size=(32, 32))
    os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
    state = AppState()
    state.update_train_config(data_dir=str(data), weights="none", input_size=32, head_epochs=1)
    page = TrainPage(state)
    qtbot.addWidget(page)
    assert page.start_training()
    _wait_until_done(qtbot, state, timeout=60_000)
    assert page.last_error and "\n" not in page.last_error and "two classes" in page.last_error
    assert page.status_label.text().startswith("Training failed:")
    assert "Traceback" not in page.log_text()
    assert state.project.runs == [] and page.progress.format() == "Failed"
    assert page.train_button.isEnabled()
    assert page.shutdown(10_000)


@pytest.mark.slow  # the engine, a run of real epochs and its resume: about a minute
def test_closing_the_window_during_training_asks_then_stops_it_as_interrupted(qtbot, main_window, dialogs,
                                                                              image_folder, tmp_path):
    """Promise 5: "Stop the training and quit?" -> Yes stops the run at once and leaves it "interrupted"
    at its last completed epoch (resumable), not "cancelled" after an evaluation."""
    from PySide6.QtWidgets import QMessageBox

    from tlstudio.core import run_folder
    from tlstudio.core.train.trainer import train

    data = image_folder({"cats": 8, "dogs": 8}, size=(32, 32))
    os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
    state = main_window.state
    state.set_scan(scan_dataset(data))
    # Augmentation sends every epoch through the image pipeline (no cached features): a long run.
    state.update_train_config(base="MobileNet", alpha=0.25, weights="none", input_size=32, batch_size=4,
                              head_epochs=500, fine_tune_epochs=0, early_stopping=False, augment={"enabled": True})
    page = main_window.go_to("train")
    assert isinstance(page, TrainPage)
    assert page.start_training()
    run_dir = page.run_dir
    qtbot.waitUntil(lambda: page.plots.epoch_count() >= 1, timeout=180_000)  # an epoch is checkpointed

    dialogs.answers.append(QMessageBox.StandardButton.No)  # keep training
    main_window.close()
    assert main_window.isVisible() and page.is_training()
    assert any(c[0] == "question" and "Stop the training and quit?" in c[2] for c in dialogs.calls)

    dialogs.answers += [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Discard]
    main_window.close()
    assert not main_window.isVisible()
    assert not page.is_training() and not state.training  # stopped, waited for, and told the state
    assert run_folder.read_summary(run_dir).status == "interrupted"
    assert not run_folder.has_model(run_dir)  # stopped at once: not evaluated and saved as a "cancelled" run
    assert page.interrupted_run == run_dir  # what the Resume button continues
    assert state.find_run(run_dir).status == "interrupted"  # listed before the save question: a saved project resumes it
    run_folder.check_resumable(run_dir)  # its checkpoint is whole
    done = run_folder.read_history(run_dir)["epochs"]
    assert len(done) >= 1

    # And it resumes from there (cancelled at its first new epoch, to keep the test short).
    cancel = threading.Event()
    events = []

    def emit(event):
        events.append(event)
        if type(event).__name__ == "EpochEnded":
            cancel.set()

    result = train(None, run_dir, emit=emit, cancel=cancel, resume=True)
    assert any(f"resuming after {len(done)} completed epoch(s)" in getattr(e, "text", "") for e in events)
    assert result.status == "cancelled" and result.epochs_run > len(done)


def test_one_class_cannot_train_and_the_page_says_why(qtbot, image_folder):
    state = AppState()
    state.set_scan(scan_dataset(image_folder({"cats": 5}, size=(32, 32))))
    page = TrainPage(state)
    qtbot.addWidget(page)
    assert not page.train_button.isEnabled()
    assert "only one class (cats)" in page.train_button.toolTip()
    assert "at least two classes" in page.context_label.text()
    assert page.start_training() is False and not state.training


def test_typing_a_decimal_keeps_what_was_typed_and_commits_on_enter(qtbot, page_with_data):
    state, page = page_with_data
    state.update_train_config(augment={"enabled": True, "zoom": 0.10})
    field = page.settings.aug_zoom
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    field.selectAll()
    qtbot.keyClicks(field, "0.25")
    assert field.text() == "0.25"  # no keystroke was saved and written back as 0.00 while typing
    assert state.project.train.augment.zoom == 0.10
    state.update_train_config(head_epochs=4)  # a refresh while the field has focus leaves it alone
    assert field.text() == "0.25"
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert state.project.train.augment.zoom == 0.25


def test_the_wheel_scrolls_the_form_not_an_unfocused_field(qtbot, page_with_data):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    state, page = page_with_data
    box = page.settings.batch_size
    page.train_button.setFocus()
    pos = QPointF(box.rect().center())
    event = QWheelEvent(pos, QPointF(box.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(box, event)
    assert box.value() == 4 and state.project.train.batch_size == 4


def test_the_page_says_what_trains_in_each_phase_before_start(qtbot, page_with_data):
    state, page = page_with_data
    assert "No fine-tuning" in page.plan_label.text()
    state.update_train_config(fine_tune_epochs=5, unfreeze_top=2)
    assert "top 2 blocks of the base" in page.plan_label.text() and "5 epochs" in page.plan_label.text()
    state.update_train_config(layer_state={"trainable": {}})
    assert "layers you ticked on the Model page" in page.plan_label.text()


def test_reopening_a_project_shows_the_last_runs_curves(qtbot, trained_runs, tmp_path):  # noqa: F811
    import json

    from tlstudio.core.project import Project

    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    assert page.progress.format() == "Not started"
    project = Project(name="reopened")
    project.runs = [record_for(run, name=f"run {i + 1}") for i, run in enumerate(trained_runs.runs)]
    state.set_project(project, tmp_path / "p.tlsproj")
    epochs = json.loads((trained_runs.runs[-1] / "history.json").read_text())["epochs"]
    assert page.plots.epoch_count() == len(epochs) > 0
    assert page.progress.format() == "Last run: finished" and "run 2" in page.status_label.text()
    assert page.open_folder_button.isEnabled()


def test_a_reopened_project_whose_last_run_was_interrupted_offers_resume(qtbot, trained_runs, tmp_path):  # noqa: F811
    from dataclasses import replace

    from tlstudio.core.project import Project

    state = AppState()
    page = TrainPage(state)
    qtbot.addWidget(page)
    project = Project(name="reopened")
    first = record_for(trained_runs.runs[0], name="run 1")
    stopped = replace(record_for(trained_runs.runs[1], name="run 2"), status="interrupted", epochs_run=2)
    project.runs = [first, stopped]
    state.set_project(project, tmp_path / "p.tlsproj")
    assert page.interrupted_run == trained_runs.runs[1] and page.resume_button.isVisibleTo(page)
    assert "stopped after 2 epoch(s)" in page.status_label.text() and "Resume" in page.status_label.text()

    # The resumed run's entry replaces the interrupted one instead of listing the folder twice.
    state.add_run(record_for(trained_runs.runs[1], name="run 2"))
    assert [r.status for r in state.project.runs] == ["finished", "finished"]
    assert [r.run_dir for r in state.project.runs] == [first.run_dir, str(trained_runs.runs[1])]

    # Another project whose last run finished offers nothing to resume.
    state.set_project(Project(name="other", runs=[first]), tmp_path / "q.tlsproj")
    assert page.interrupted_run is None and not page.resume_button.isVisibleTo(page)
