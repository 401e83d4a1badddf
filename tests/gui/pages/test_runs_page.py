"""The Runs view: a table of every run; selected runs overlay their real training curves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support.trained_runs import record_for, trained_runs  # noqa: F401

SHOTS = os.environ.get("TLSTUDIO_SCREENSHOTS")


@pytest.fixture
def view(qtbot, trained_runs, tmp_path):  # noqa: F811
    from tlstudio.gui.pages.runs import RunsView
    from tlstudio.gui.state import AppState

    state = AppState()
    for i, run in enumerate(trained_runs.runs):
        state.add_run(record_for(run, name=f"run {i + 1}"))
    view = RunsView(state)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    return view


def _history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text(encoding="utf-8"))["epochs"]


def test_table_lists_every_run_with_its_figures(view, trained_runs):  # noqa: F811
    table = view.table
    assert table.rowCount() == 2
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    rows = {
        table.item(r, 0).text(): {h: table.item(r, c).text() for c, h in enumerate(headers)} for r in range(table.rowCount())
    }
    assert set(rows) == {"run 1", "run 2"}
    for i, run in enumerate(trained_runs.runs):
        row = rows[f"run {i + 1}"]
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        assert row["Base"].startswith("MobileNet")
        assert row["Epochs"] == str(info["epochs_run"]) == str(len(_history(run)))
        assert row["Val accuracy"] == f"{info['val_accuracy']:.1%}"  # the kept model's, not the best epoch's
        assert row["Status"] == "finished"
        assert row["Trainable part"] == info["frozen_summary"]
        assert row["Time"].endswith(("s", "min"))
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        assert row["Dataset"] == Path(config["data_dir"]).name
        assert row["Classes"] == f"{len(info['classes'])}: {', '.join(info['classes'])}"


def test_overlaying_two_runs_shows_both_curves(qtbot, view, trained_runs):  # noqa: F811
    state = view.state
    view.select_runs(trained_runs.runs)
    assert set(view.curves) == {str(r) for r in trained_runs.runs}
    colours = set()
    for run in trained_runs.runs:
        epochs = _history(run)
        curves = view.curves[str(run)]
        for key in ("val_accuracy", "accuracy", "val_loss", "loss"):
            xs, ys = curves[key].getData()
            assert list(xs) == [e["run_epoch"] for e in epochs]
            assert list(ys) == pytest.approx([e[key] for e in epochs])
        colours.add(curves["val_accuracy"].opts["pen"].color().name())
    assert len(colours) == 2, "one colour per run"
    legend = view.acc_plot.plotItem.legend
    assert sorted(label.text for _sample, label in legend.items) == ["run 1", "run 2"]
    assert state.current_run in {str(r) for r in trained_runs.runs}
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        view.grab().save(str(Path(SHOTS) / "runs_view.png"))

    # Selecting one run sets it as the current run and drops the other's curves.
    view.select_runs([trained_runs.runs[0]])
    assert list(view.curves) == [str(trained_runs.runs[0])]
    assert state.current_run == str(trained_runs.runs[0])


def test_rename_delete_and_delete_folder(qtbot, view, trained_runs, tmp_path, monkeypatch):  # noqa: F811
    from PySide6.QtWidgets import QInputDialog

    from tlstudio.gui.pages import runs as runs_view
    state = view.state
    copy = tmp_path / "copy-of-run"
    shutil.copytree(trained_runs.runs[0], copy)
    state.add_run(record_for(copy, name="scratch"))
    assert view.table.rowCount() == 3

    view.select_runs([copy])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("  best so far ", True)))
    view.rename_selected()
    assert state.find_run(copy).name == "best so far"
    assert "best so far" in [view.table.item(r, 0).text() for r in range(view.table.rowCount())]

    # Cancel keeps everything; "remove" keeps the folder; "delete-folder" removes it from disk.
    answers = [None, "delete-folder"]
    monkeypatch.setattr(runs_view, "ask_delete", lambda parent, names: answers.pop(0))
    view.select_runs([copy])
    view.delete_selected()
    assert state.find_run(copy) is not None and copy.is_dir()
    view.select_runs([copy])
    view.delete_selected()
    assert state.find_run(copy) is None and not copy.exists()
    assert view.table.rowCount() == 2
    assert all(Path(r).is_dir() for r in trained_runs.runs)

    keep = tmp_path / "kept-run"
    shutil.copytree(trained_runs.runs[1], keep)
    state.add_run(record_for(keep))
    monkeypatch.setattr(runs_view, "ask_delete", lambda parent, names: "remove")
    view.select_runs([keep])
    view.delete_selected()
    assert state.find_run(keep) is None and keep.is_dir()


def test_a_run_whose_folder_is_gone_shows_as_missing_and_can_be_located(
        qtbot, view, trained_runs, tmp_path, monkeypatch, dialogs):  # noqa: F811
    from PySide6.QtWidgets import QFileDialog

    state = view.state
    moved = tmp_path / "moved-run"
    shutil.copytree(trained_runs.runs[0], moved)
    gone = tmp_path / "gone-run"
    state.add_run(record_for(moved, name="wanderer"))
    state.find_run(moved).run_dir = str(gone)  # as if the folder had been moved away since
    shutil.copytree(moved, tmp_path / "unused")  # (any other folder on disk is left alone)
    view.refresh()
    row = next(r for r in range(view.table.rowCount()) if view.table.item(r, 0).text() == "wanderer")
    assert view.table.item(row, 2).text() == "folder missing"
    assert "cannot be found" in view.table.item(row, 0).toolTip()
    view.select_runs([gone])
    assert view.locate_button.isVisibleTo(view) and view.delete_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(moved)))
    assert view.locate_selected()
    assert state.find_run(moved) is not None and state.find_run(gone) is None
    row = next(r for r in range(view.table.rowCount()) if view.table.item(r, 0).text() == "wanderer")
    assert view.table.item(row, 2).text() == "finished"


def test_delete_key_removes_the_selected_run(qtbot, view, trained_runs, monkeypatch):  # noqa: F811
    from PySide6.QtCore import Qt

    from tlstudio.gui.pages import runs as runs_view

    asked = []
    monkeypatch.setattr(runs_view, "ask_delete", lambda parent, names: asked.append(names) or "remove")
    view.select_runs([trained_runs.runs[0]])
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus)
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert asked == [["run 1"]] and view.state.find_run(trained_runs.runs[0]) is None


def test_name_accuracy_and_status_stay_in_view_at_1400_px(qtbot, view, tmp_path, trained_runs):  # noqa: F811
    state = view.state
    run = tmp_path / "own-model-run"
    shutil.copytree(trained_runs.runs[1], run)
    own_model = str(tmp_path / "a" / "very" / "long" / "path" / "to" / "my_own_model_file_with_a_long_name.keras")
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    info.update(base=own_model, base_model_path=own_model, alpha=0.25, frozen_summary="blocks 1-13 frozen, " * 6)
    (run / "run.json").write_text(json.dumps(info), encoding="utf-8")
    state.project.runs.append(record_for(run, name="on my own model"))
    view.resize(1400 - 190, 700)  # the page's share of a 1400 px window
    view.refresh()
    qtbot.wait(50)
    table = view.table
    visible = table.viewport().width()
    for name in ("Name", "Val accuracy", "Status"):
        col = view.COLUMNS.index(name)
        assert table.columnViewportPosition(col) + table.columnWidth(col) <= visible, name
    bases = [table.item(r, view.COLUMNS.index("Base")).text() for r in range(table.rowCount())]
    assert "my_own_model_file_with_a_long_name.keras" in bases  # a file name, without a MobileNet width
