"""The one model chooser: runs newest first, runs without a model cannot be chosen, other files on request."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from tlstudio.core.project import RunRecord
from tlstudio.gui.state import AppState
from tlstudio.gui.widgets.model_source import OTHER_MODEL, ModelSourceBox, describe_loaded_model


def run_folder(tmp_path, name, model=True):
    folder = tmp_path / name
    folder.mkdir()
    if model:
        (folder / "model.keras").write_bytes(b"zip")
    return folder


def test_lists_runs_newest_first_and_skips_runs_without_a_model(qtbot, tmp_path):
    state = AppState()
    old, broken, new = (run_folder(tmp_path, "old"), run_folder(tmp_path, "broken", model=False),
                        run_folder(tmp_path, "new"))
    for folder in (old, broken, new):
        state.project.runs.append(RunRecord(run_dir=str(folder), name=folder.name, val_accuracy=0.5))
    state.current_run = str(broken)  # not choosable: the box falls back to a run with a model
    box = ModelSourceBox(state)
    qtbot.addWidget(box)
    data = [box.itemData(i) for i in range(box.count())]
    assert data == [str(new), str(broken), str(old), OTHER_MODEL]
    assert box.source() == str(new)
    assert "val 50.0%" in box.itemText(0)
    assert not box.model().item(1).isEnabled()


def test_other_model_file_asks_and_becomes_the_choice(qtbot, tmp_path, monkeypatch):
    state = AppState()
    model = tmp_path / "teachable.h5"
    model.write_bytes(b"h5")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(model), "")))
    box = ModelSourceBox(state)
    qtbot.addWidget(box)
    assert box.source() is None
    with qtbot.waitSignal(box.source_changed) as blocker:
        box.activated.emit(box.findData(OTHER_MODEL))
    assert blocker.args == [str(model)] and box.source() == str(model)
    box.refresh()  # a refill keeps the chosen file
    assert box.source() == str(model)


def test_describe_loaded_model():
    class Info:
        labels = tuple(f"c{i}" for i in range(8))
        input_size = 96

    text = describe_loaded_model(Info(), "run 1")
    assert text == "Model ready: run 1: 8 classes (c0, c1, c2, c3, c4, c5 and 2 more), input 96×96 px."
