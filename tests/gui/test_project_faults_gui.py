"""The window under hand-edited projects, moved runs and a change of dataset (promise 7 of issue 18)."""

from __future__ import annotations

import json
from types import SimpleNamespace


def test_another_dataset_starts_a_fresh_view(qtbot, tmp_path):
    from tlstudio.core.project import RunRecord
    from tlstudio.gui.state import AppState

    state = AppState()
    first, second = tmp_path / "cats", tmp_path / "cars"
    state.set_scan(SimpleNamespace(root=first))
    run = tmp_path / "run-1"
    run.mkdir()
    state.add_run(RunRecord(run_dir=str(run), name="cats run"))
    state.set_tested_model(run / "model.keras")
    assert state.current_run == str(run)
    state.set_scan(SimpleNamespace(root=first))  # the same dataset again: nothing forgotten
    assert state.current_run == str(run)
    with qtbot.waitSignals([state.current_run_changed, state.tested_model_changed]):
        state.set_scan(SimpleNamespace(root=second))
    assert state.current_run is None and state.tested_model is None
    assert [r.name for r in state.project.runs] == ["cats run"]  # still listed on the Runs page


def test_a_hand_edited_project_opens_repaired_and_a_missing_run_says_so(main_window, dialogs, tmp_path):
    path = tmp_path / "edited.tlsproj"
    path.write_text(json.dumps({
        "schema_version": 1, "name": "edited",
        "train": {"batch_size": "lots", "dropout": [1]},
        "runs": [{"run_dir": "gone-run", "status": "finished", "val_accuracy": "high"}],
    }))
    assert main_window.open_project(path) is True
    assert "warning" in dialogs.kinds()
    text = "\n".join(dialogs.texts("warning"))
    assert "batch_size = 'lots'" in text and "val_accuracy" in text
    assert main_window.state.project.train.batch_size == 32
    evaluate = main_window.go_to("evaluate")  # the page builds
    assert evaluate.empty_label.text().startswith("Run folder not found")
    main_window.state.dirty = False  # close without the save prompt


def test_the_runs_table_shows_each_runs_dataset_and_classes(qtbot, tmp_path):
    from tlstudio.core import run_folder
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.project import RunRecord
    from tlstudio.gui.pages.runs import RunsView
    from tlstudio.gui.state import AppState

    state = AppState()
    for name, classes in (("pets", ["cat", "dog"]), ("cars", ["bus", "taxi", "van"])):
        run = tmp_path / f"run-{name}"
        run.mkdir()
        run_folder.write_run_config(run, TrainConfig(data_dir=str(tmp_path / name)), classes, {"train": []})
        run_folder.write_summary(run, {"status": "finished", "classes": classes})
        state.add_run(RunRecord(run_dir=str(run), name=name))
    view = RunsView(state)
    qtbot.addWidget(view)
    view.refresh()
    cols = view.COLUMNS
    rows = {view.table.item(r, 0).text(): r for r in range(view.table.rowCount())}
    assert view.table.item(rows["pets"], cols.index("Dataset")).text() == "pets"
    assert view.table.item(rows["cars"], cols.index("Classes")).text() == "3: bus, taxi, van"
    assert view.table.item(rows["cars"], cols.index("Dataset")).toolTip() == str(tmp_path / "cars")


def test_a_training_that_ends_before_writing_anything_leaves_no_empty_run_folder(tmp_path):
    from tlstudio.gui.state import AppState

    state = AppState()
    state.project_path = tmp_path / "p.tlsproj"
    failed = state.new_run_dir()
    state.set_training(True)
    state.set_training(False)  # failed before its first epoch: the folder is still empty
    assert not failed.exists()
    kept = state.new_run_dir()
    (kept / "run.json").write_text("{}")
    state.set_training(True)
    state.set_training(False)
    assert (kept / "run.json").is_file()  # a folder with anything in it is never touched
