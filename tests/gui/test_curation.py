"""The app's dataset editor: moves, excludes and undo on real files, announced for the pages; the context menu."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu

from tlstudio.core.data import curate
from tlstudio.gui.curation import DatasetEditor, add_curation_actions


def _data(tmp_path, make_image):
    root = tmp_path / "pets"
    for cls in ("cats", "dogs"):
        for i in range(3):
            make_image(root / cls / f"{cls}{i}.png", pattern=i)
    return root


def test_editor_moves_excludes_and_undoes(qtbot, tmp_path, make_image):
    root = _data(tmp_path, make_image)
    editor = DatasetEditor()
    changes, undo_texts, errors = [], [], []
    editor.changed.connect(changes.append)
    editor.undo_changed.connect(undo_texts.append)
    editor.failed.connect(errors.append)
    editor.set_root(root)
    assert editor.classes() == ["cats", "dogs"]
    editor.move_to_class([str(root / "cats/cats0.png")], "dogs")
    assert (root / "dogs/cats0.png").is_file() and not (root / "cats/cats0.png").exists()
    editor.exclude([str(root / "dogs/dogs1.png")])
    assert (curate.excluded_dir(root) / "dogs/dogs1.png").is_file()
    assert changes == ["moved 1 image(s) to dogs", "excluded 1 image(s)"]
    assert undo_texts[-1] == "excluded 1 image(s)"
    editor.undo()
    editor.undo()
    assert (root / "cats/cats0.png").is_file() and (root / "dogs/dogs1.png").is_file()
    assert undo_texts[-1] == ""
    editor.move_to_class([str(root / "cats/nothing.png")], "dogs")
    assert errors == ["cats/nothing.png not found in the dataset"]


def test_editor_finishes_an_interrupted_edit_when_the_dataset_opens(qtbot, tmp_path, make_image):
    from tlstudio.core.data import edit_journal

    root = _data(tmp_path, make_image)
    op = edit_journal.new_op("move", "moved 1 image(s) to dogs", moves=[["cats/cats1.png", "dogs/cats1.png"]])
    edit_journal.write_json(curate.state_dir(root) / edit_journal.PENDING_FILE, op)
    editor = DatasetEditor()
    changes = []
    editor.changed.connect(changes.append)
    editor.set_root(root)
    assert changes == ["Finished an interrupted edit: moved 1 image(s) to dogs"]
    assert (root / "dogs/cats1.png").is_file()


def test_context_menu_moves_to_a_class(qtbot, tmp_path, make_image):
    root = _data(tmp_path, make_image)
    editor = DatasetEditor()
    editor.set_root(root)
    menu = QMenu()
    paths = [str(root / "cats/cats2.png")]
    add_curation_actions(menu, paths, editor)
    texts = [a.text() for a in menu.actions()]
    assert texts == ["Move image to class", "Exclude image from the dataset"]
    submenu = menu.actions()[0].menu()
    by_name = {a.text(): a for a in submenu.actions()}
    assert not by_name["cats"].isEnabled() and by_name["dogs"].isEnabled()
    by_name["dogs"].trigger()
    assert (root / "dogs/cats2.png").is_file()


def test_the_state_has_one_editor_that_follows_the_dataset_and_names_stale_runs(qtbot, tmp_path, make_image):
    from tlstudio.core import run_folder
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.data.scan import scan_dataset
    from tlstudio.core.project import RunRecord
    from tlstudio.gui.curation import editor_for
    from tlstudio.gui.state import AppState

    root = _data(tmp_path, make_image)
    run = tmp_path / "run-a"
    run.mkdir()
    run_folder.write_run_config(run, TrainConfig(data_dir=str(root)), ["cats", "dogs"],
                                {"train": ["cats/cats0.png", "dogs/dogs0.png"]})
    run_folder.write_summary(run, {"status": "finished", "created": "2000-01-01T00:00:00+00:00"})
    state = AppState()
    state.project.runs.append(RunRecord(run_dir=str(run)))
    messages = []
    state.status_message.connect(messages.append)
    editor = editor_for(state)
    assert editor_for(state) is editor and editor.root is None
    state.set_scan(scan_dataset(root))
    assert editor.root == root.resolve()
    editor.move_to_class([str(root / "cats/cats0.png")], "dogs")
    assert messages[-1] == "Moved 1 image(s) to dogs. 1 run(s) were trained on labels changed since: run-a."
    editor.undo()
    assert messages[-1] == "Undone: moved 1 image(s) to dogs."


def test_no_edits_while_a_run_is_training(qtbot, tmp_path, make_image):
    from tlstudio.gui.curation import editor_for
    from tlstudio.gui.state import AppState

    root = _data(tmp_path, make_image)
    state = AppState()
    editor = editor_for(state)
    editor.set_root(root)
    errors = []
    editor.failed.connect(errors.append)
    state.set_training(True)
    assert editor.move_to_class([str(root / "cats/cats0.png")], "dogs") is None
    assert errors == ["The dataset cannot change now: a training run is reading the pictures."]
    assert (root / "cats/cats0.png").is_file()
    state.set_training(False)
    assert editor.move_to_class([str(root / "cats/cats0.png")], "dogs") is not None
