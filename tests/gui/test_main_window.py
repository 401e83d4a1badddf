"""The main window: empty first screen, steps, projects, drag-and-drop, closing."""

from __future__ import annotations

import json
import sys
from unittest import mock

from PySide6.QtWidgets import QLabel, QMessageBox
from support.qt_events import accepted_as_copy, drop


def test_window_opens_on_the_empty_first_screen(main_window):
    assert main_window.showing_welcome()
    assert main_window.current_step() == "data"
    texts = [label.text() for label in main_window.welcome.findChildren(QLabel)]
    assert any("one subfolder per class" in t for t in texts)
    assert main_window.sidebar.status["data"][0] == "pending"
    assert "tensorflow" not in sys.modules or main_window.state.tf_ready is False


def test_every_step_shows_its_own_page(main_window):
    from tlstudio.gui.main_window import PAGES

    for key in main_window.sidebar.keys():
        page = main_window.go_to(key)
        assert main_window.current_step() == key
        if key == "data":
            assert page is main_window.welcome  # no folder yet
            continue
        assert type(page).__name__ == PAGES[key][1]
        assert main_window.stack.currentWidget().isAncestorOf(page) and page.isVisible()


def test_corrupt_project_shows_an_error_and_is_never_overwritten(main_window, dialogs, tmp_path):
    bad = tmp_path / "broken.tlsproj"
    bad.write_text("{ not json", encoding="utf-8")
    before = main_window.state.project
    assert main_window.open_project(bad) is False
    assert dialogs.kinds() == ["critical"]
    assert "damaged" in dialogs.texts()[0]
    assert main_window.state.project is before and main_window.state.project_path is None
    assert bad.read_text(encoding="utf-8") == "{ not json"


def test_newer_project_is_refused_with_a_clear_message(main_window, dialogs, tmp_path):
    newer = tmp_path / "newer.tlsproj"
    newer.write_text(json.dumps({"schema_version": 99, "name": "x"}), encoding="utf-8")
    assert main_window.open_project(newer) is False
    assert "newer tlstudio" in dialogs.texts("critical")[0]
    # Saving over it is refused too.
    main_window.state.mark_dirty()
    assert main_window.projects.write(newer) is False
    assert json.loads(newer.read_text())["schema_version"] == 99


def test_save_as_then_open_restores_settings(main_window, dialogs, tmp_path):
    state = main_window.state
    state.update_train_config(dropout=0.35, hidden_units=64, head_epochs=4, split={"val_fraction": 0.25, "seed": 7})
    assert state.dirty and main_window.isWindowModified()
    dialogs.files.append(str(tmp_path / "mine"))
    assert main_window.save_project_as()
    path = tmp_path / "mine.tlsproj"
    assert path.is_file() and not state.dirty and state.project_path == path
    state.update_train_config(dropout=0.1)
    dialogs.answers.append(mock.sentinel.no_answer)  # neither Save nor Discard: treated as Cancel
    assert main_window.open_project(path) is False
    dialogs.answers.append(QMessageBox.StandardButton.Discard)
    assert main_window.open_project(path)
    cfg = state.project.train
    assert (cfg.dropout, cfg.hidden_units, cfg.head_epochs) == (0.35, 64, 4)
    assert (cfg.split.val_fraction, cfg.split.seed) == (0.25, 7)


def test_autosave_writes_a_recovery_copy_beside_the_project(main_window, dialogs, tmp_path):
    from tlstudio.core.project import autosave_path

    assert main_window.autosave() is None  # nothing to save
    path = tmp_path / "p.tlsproj"
    assert main_window.projects.write(path)
    main_window.state.update_train_config(dropout=0.4)
    copy = main_window.autosave()
    assert copy == autosave_path(path) and copy.is_file()
    assert json.loads(path.read_text())["train"]["dropout"] != 0.4  # the project file itself is untouched
    assert json.loads(copy.read_text())["train"]["dropout"] == 0.4
    main_window.save_project()
    assert not copy.exists()


def test_close_with_unsaved_changes_asks_and_can_be_cancelled(main_window, dialogs):
    main_window.state.mark_dirty()
    dialogs.answers.append(QMessageBox.StandardButton.Cancel)
    assert main_window.close() is False
    assert main_window.isVisible()
    assert dialogs.kinds() == ["question"]


def test_dropping_a_non_folder_file_is_ignored(main_window, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("x")
    event = drop(main_window, junk)
    event.ignore.assert_called()
    assert main_window.showing_welcome()


def test_dropping_a_model_file_opens_it_and_offers_the_test_page(qtbot, main_window, tmp_path, monkeypatch,
                                                                 tiny_settings):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models import catalogue as base_models

    path = tmp_path / "mine.keras"
    base_models.build_classifier(TrainConfig(**tiny_settings), 2).save(path)
    asked = []
    monkeypatch.setattr(main_window, "ask_model_action", lambda info: asked.append(info) or "test")
    with qtbot.waitSignal(main_window.state.opened_model_changed, timeout=60000):
        assert accepted_as_copy(drop(main_window, path))
    assert asked[0].source in ("tlstudio", "keras3") and asked[0].input_size == (32, 32)
    assert main_window.state.opened_model == str(path)
    assert main_window.current_step() == "test"
    assert main_window.sidebar.status["test"] == ("ready", "mine.keras")


def test_a_broken_model_file_gives_a_message(qtbot, main_window, dialogs, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK not really a zip")
    main_window.open_model(bad)
    qtbot.waitUntil(lambda: "critical" in dialogs.kinds(), timeout=60000)
    assert main_window.state.opened_model is None


def test_the_engine_starts_in_the_background_flips_tf_ready_and_stops_with_the_window(qtbot, main_window):
    from tlstudio.engine.processes import is_running
    from tlstudio.workers.engine_calls import current_engine, stop_engine

    stop_engine()  # one that earlier tests started on demand
    assert main_window.tf_label.text() == "Engine not started"
    main_window.start_background_loading()
    assert main_window.tf_label.text().startswith("Engine starting")
    qtbot.waitUntil(lambda: main_window.state.tf_ready, timeout=180000)
    assert main_window.tf_label.text() in ("Engine ready", "Engine busy")
    pid = current_engine().pid
    assert is_running(pid)
    main_window.shutdown()
    assert not is_running(pid)


def test_try_a_sample_opens_the_shipped_dataset(qtbot, main_window):
    from tlstudio.gui.pages.welcome import sample_dataset_path

    sample = sample_dataset_path()
    if sample is None:
        assert not main_window.welcome.sample_button.isVisibleTo(main_window.welcome)
        return
    assert main_window.welcome.sample_button.isVisibleTo(main_window.welcome)
    main_window.welcome.sample_button.click()
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=30000)
    assert not main_window.showing_welcome()
    assert len(main_window.state.scan.classes) >= 2
    assert main_window.state.project.train.data_dir == str(sample)


def test_recent_folders_and_geometry_are_remembered(qtbot, main_window, image_folder):
    from tlstudio.gui import settings

    root = image_folder({"a": 5, "b": 5})
    main_window.open_dataset(root)
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=15000)
    assert settings.get("recent/folders")[0] == str(root.resolve())
    main_window.resize(900, 640)
    main_window.close()
    assert not settings.get("window/geometry").isEmpty()
    assert settings.get("window/step") == "data"


def test_closing_cancels_and_waits_for_running_workers(qtbot, main_window, image_folder, monkeypatch):
    import threading

    from tlstudio.core.data import scan as dataset
    root = image_folder({"a": 2, "b": 2})
    started, finished = threading.Event(), threading.Event()
    real = dataset.scan_dataset

    def held_scan(path, *, progress=None, cancel=None):
        started.set()
        try:
            cancel.wait(20)
            return real(path, progress=progress, cancel=cancel)
        finally:
            finished.set()

    monkeypatch.setattr(dataset, "scan_dataset", held_scan)
    main_window.open_dataset(root)
    assert started.wait(10)
    page = main_window.page("data")
    assert page.is_scanning()
    main_window.state.dirty = False
    assert main_window.close()
    assert finished.is_set() and not page.is_scanning()  # close returned only after the scan thread ended


def test_about_shows_the_version(main_window, dialogs):
    import tlstudio

    main_window.about_action.trigger()
    assert dialogs.kinds() == ["about"] and tlstudio.__version__ in dialogs.texts()[0]


def test_new_project_asks_about_unsaved_changes_and_returns_to_the_first_screen(qtbot, main_window, dialogs,
                                                                                image_folder):
    root = image_folder({"a": 5, "b": 5})
    main_window.open_dataset(root)
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=15000)
    assert main_window.state.dirty
    main_window.new_action.trigger()
    assert dialogs.kinds() == ["question"]  # answered Discard by the fixture
    assert main_window.showing_welcome() and main_window.state.scan is None and not main_window.state.dirty


def test_app_main_opens_a_folder_given_on_the_command_line(qapp, image_folder, dialogs):
    from tlstudio.app import main
    from tlstudio.gui import settings

    root = image_folder({"a": 5, "b": 5})
    assert main(["--no-tensorflow", "--quit-after", "1500", str(root)]) == 0
    assert qapp.applicationName() == "tlstudio" and qapp.organizationName() == "tlstudio"
    assert settings.get("recent/folders")[0] == str(root.resolve())
    assert dialogs.kinds() == ["question"]  # the opened folder made the project dirty: asked on close


def test_autosave_of_an_untitled_project_is_offered_at_start(qtbot, main_window, dialogs, image_folder):
    from PySide6.QtWidgets import QMessageBox

    from tlstudio.core.project import autosave_path
    from tlstudio.gui.main_window import MainWindow

    main_window.state.update_train_config(dropout=0.45, hidden_units=32)
    copy = main_window.autosave()
    assert copy == autosave_path(None) and copy.is_file()
    other = MainWindow()
    qtbot.addWidget(other)
    dialogs.answers.append(QMessageBox.StandardButton.Yes)
    assert other.offer_recovery()
    assert other.state.project.train.dropout == 0.45 and other.state.dirty
    other.state.dirty = False
    other.close()
    other.shutdown()
    copy.unlink()


def test_app_state_runs_and_config(qtbot, tmp_path):
    import pytest

    from tlstudio.core.project import RunRecord
    from tlstudio.gui.state import AppState

    state = AppState()
    with qtbot.waitSignals([state.train_config_changed, state.dirty_changed]):
        state.update_train_config(dropout=0.3, split={"seed": 5})
    assert state.project.train.split.seed == 5 and state.dirty
    with pytest.raises(KeyError):
        state.update_train_config(not_a_field=1)
    state.project_path = tmp_path / "p.tlsproj"
    first = state.new_run_dir()
    second = state.new_run_dir()
    assert first != second and first.parent == tmp_path / "p-runs" and first.is_dir() and second.is_dir()
    with qtbot.waitSignals([state.runs_changed, state.current_run_changed]):
        state.add_run(RunRecord(run_dir=str(first), name="one"))
    state.add_run(RunRecord(run_dir=str(second), name="two"))
    assert state.current_run == str(second)
    state.rename_run(second, "best")
    assert state.find_run(second).name == "best"
    with qtbot.waitSignal(state.current_run_changed) as blocker:
        state.remove_run(second)
    assert blocker.args == [str(first)] and [r.name for r in state.project.runs] == ["one"]
    with qtbot.waitSignal(state.opened_model_changed):
        state.set_opened_model(tmp_path / "m.keras")
    assert state.opened_model == str(tmp_path / "m.keras")


def test_menu_texts_show_their_ampersands(main_window):
    from tlstudio.gui.main_window import menu_text

    view = next(a.menu() for a in main_window.menuBar().actions() if a.text() == "&View")
    texts = [a.text() for a in view.actions()]
    assert "Test && Export" in texts  # shown as "Test & Export", not "Test _Export"
    assert menu_text("R&D") == "R&&D"


def test_help_opens_the_user_guide(main_window, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    main_window.guide_action.trigger()
    assert opened and opened[0].toLocalFile().endswith("docs/user-guide.md")
    from pathlib import Path

    assert Path(opened[0].toLocalFile()).is_file()


def test_dropping_a_folder_on_a_project_with_runs_asks_first(qtbot, main_window, dialogs, image_folder, tmp_path):
    from tlstudio.core.project import RunRecord

    first = image_folder({"a": 3, "b": 3}, root=tmp_path / "first")
    second = image_folder({"c": 3, "d": 3}, root=tmp_path / "second")
    main_window.open_dataset(first)
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=15000)
    main_window.state.add_run(RunRecord(run_dir=str(tmp_path / "run"), name="trained on first"))
    dialogs.answers.append(QMessageBox.StandardButton.No)
    event = drop(main_window, second)
    assert accepted_as_copy(event)
    assert dialogs.kinds() == ["question"] and "1 run" in dialogs.texts()[0]
    assert main_window.state.project.train.data_dir == str(first.resolve())  # declined: nothing replaced
    dialogs.answers.append(QMessageBox.StandardButton.Yes)
    drop(main_window, second)
    assert main_window.state.project.train.data_dir == str(second.resolve())


def test_autosaved_work_of_a_saved_project_is_offered_at_start_up(qtbot, main_window, dialogs, tmp_path):
    import os

    from tlstudio.core.project import autosave_path
    from tlstudio.gui.main_window import MainWindow

    path = tmp_path / "saved.tlsproj"
    assert main_window.projects.write(path)
    main_window.state.update_train_config(dropout=0.45)
    copy = main_window.autosave()
    old = copy.stat().st_mtime - 60
    os.utime(path, (old, old))  # the copy is newer than the file: unsaved work

    declined = MainWindow()
    qtbot.addWidget(declined)
    dialogs.answers.append(QMessageBox.StandardButton.No)
    main_window.autosave()
    os.utime(path, (old, old))
    assert declined.offer_recovery() is False
    assert "deleted" in dialogs.texts("question")[-1] and "saved.tlsproj" in dialogs.texts("question")[-1]
    assert not autosave_path(path).exists()
    declined.close()

    main_window.autosave()
    os.utime(path, (old, old))
    other = MainWindow()
    qtbot.addWidget(other)
    dialogs.answers.append(QMessageBox.StandardButton.Yes)
    assert other.offer_recovery()
    assert other.state.project_path == path and other.state.project.train.dropout == 0.45 and other.state.dirty
    other.state.dirty = False
    other.close()


def test_project_name_follows_the_dataset_chosen_last(qtbot, main_window, image_folder, tmp_path):
    for name in ("ants", "signs"):
        root = image_folder({"a": 2, "b": 2}, root=tmp_path / name)
        main_window.open_dataset(root)
        qtbot.waitUntil(lambda r=root: main_window.state.scan is not None
                        and main_window.state.scan.root == r.resolve(), timeout=15000)
        assert main_window.state.project.name == name
        assert main_window.windowTitle().startswith(name)


def test_keyboard_starts_and_cancels_training(qtbot, main_window, image_folder, monkeypatch):
    from PySide6.QtCore import Qt

    root = image_folder({"a": 3, "b": 3})
    main_window.open_dataset(root)
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=15000)
    page = main_window.page("train")
    started, cancelled = [], []
    monkeypatch.setattr(page, "start_training", lambda: started.append(1) or main_window.state.set_training(True))
    monkeypatch.setattr(page, "cancel", lambda: cancelled.append(1))
    main_window.activateWindow()
    qtbot.keyClick(main_window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert started == [1] and main_window.current_step() == "train"
    qtbot.keyClick(main_window, Qt.Key.Key_Escape)
    assert cancelled == [1]
    main_window.state.set_training(False)
    qtbot.keyClick(main_window, Qt.Key.Key_Escape)
    assert cancelled == [1]  # Esc does nothing when nothing trains


def test_the_focused_control_is_outlined(qtbot, main_window):
    from PySide6.QtWidgets import QPushButton

    button = main_window.welcome.findChildren(QPushButton)[0]
    other = main_window.welcome.findChildren(QPushButton)[1]
    other.setFocus()
    qtbot.waitUntil(other.hasFocus)
    plain = button.grab().toImage()
    button.setFocus()
    qtbot.waitUntil(button.hasFocus)
    focused = button.grab().toImage()
    assert plain != focused
