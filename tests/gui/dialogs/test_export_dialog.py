"""The Export dialog: real verified files from a trained run; missing packages and cancel explained."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest
from support.engine_here import engine_in_this_process
from support.trained_runs import record_for, trained_runs  # noqa: F401

SHOTS = os.environ.get("TLSTUDIO_SCREENSHOTS")


@pytest.fixture
def state(trained_runs):  # noqa: F811
    from tlstudio.gui.state import AppState

    state = AppState()
    for i, run in enumerate(trained_runs.runs):
        state.add_run(record_for(run, name=f"run {i + 1}"))
    return state


def _dialog(qtbot, state, run_dir=None):
    from tlstudio.gui.dialogs.export import ExportDialog

    dialog = ExportDialog(state, None, run_dir=run_dir)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog



def _finish(qtbot, dialog):
    qtbot.waitUntil(lambda: dialog.finished_state() is not None and not dialog.is_running(), timeout=120000)
    dialog.shutdown()
    qtbot.wait(20)
    gc.collect()


def test_export_writes_verified_files_and_lists_them(qtbot, state, trained_runs, tmp_path):  # noqa: F811
    run = trained_runs.runs[0]
    dialog = _dialog(qtbot, state, run_dir=run)
    assert dialog.source() == str(run)
    assert dialog.dest_edit.text() == str(run / "export")
    dest = tmp_path / "exported"
    dialog.set_destination(dest)
    dialog.set_formats(["keras"])  # the quickest format: verification reloads it in a fresh process
    assert dialog.verify_box.isChecked()
    dialog.start_export()
    assert dialog.is_running() and dialog.cancel_button.isEnabled() and not dialog.export_button.isEnabled()
    _finish(qtbot, dialog)

    assert dialog.finished_state() == "finished", dialog.note_label.text()
    assert (dest / "model.keras").is_file()
    outcomes = {o.fmt: o for o in dialog.outcomes}
    for fmt, name in (("keras", "model.keras"),):
        o = outcomes[fmt]
        assert o.ok and Path(o.files[0][0]).name == name
        assert o.files[0][1] == (dest / name).stat().st_size
        assert o.verification["ok"] and o.verification["top1_agreement"] == 1.0

    rows = [[dialog.table.item(r, c).text() for c in range(dialog.table.columnCount())] for r in range(dialog.table.rowCount())]
    model_rows = [r for r in rows if r[1] == "model.keras"]
    assert len(model_rows) == 1
    for r in model_rows:
        assert r[2].endswith(("kB", "MB", "bytes")) and r[3] == "100.0%" and r[4] != ""
        assert r[5].startswith("verified")
    assert "labels.txt" in {r[1] for r in rows}
    assert dialog.open_button.isEnabled() and "Exported 1 format " in dialog.status_label.text()
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        dialog.resize(900, 560)
        dialog.grab().save(str(Path(SHOTS) / "export_dialog.png"))


def test_missing_package_is_explained_and_other_formats_still_export(qtbot, state, trained_runs, tmp_path, monkeypatch):  # noqa: F811
    from tlstudio.core.deploy import export as core_export
    calls = []

    def fake_write(predictor, fmt, path, scratch, images=None):
        calls.append(fmt)
        if fmt == "onnx":
            raise core_export.MissingDependency(
                f"ONNX export needs the optional packages tf2onnx, onnx: install them with  {core_export.INSTALL_ONNX}"
            )
        Path(path).write_bytes(b"x" * 2048)
        return []

    monkeypatch.setattr(core_export, "write_format", fake_write)
    engine_in_this_process(monkeypatch)
    dialog = _dialog(qtbot, state)
    assert dialog.source() == str(trained_runs.runs[-1]), "the current (latest) run is exported by default"
    dialog.set_destination(tmp_path / "out")
    dialog.set_formats(["onnx", "keras"])
    dialog.verify_box.setChecked(False)
    dialog.start_export()
    _finish(qtbot, dialog)

    assert sorted(calls) == ["keras", "onnx"]
    assert dialog.finished_state() == "finished"
    onnx_row = next(r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 0).text() == "ONNX")
    note = dialog.table.item(onnx_row, 5).text()
    assert "tf2onnx" in note and "pip install" in note and "Traceback" not in note
    assert dialog.note_label.isVisibleTo(dialog) and "optional packages" in dialog.note_label.text()
    assert "1 failed" in dialog.status_label.text()
    keras_row = next(r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 1).text() == "model.keras")
    assert dialog.table.item(keras_row, 2).text() == "2.0 kB"
    assert dialog.table.item(keras_row, 5).text() == "not verified"


def test_cancel_stops_the_export(qtbot, state, tmp_path, monkeypatch):
    from tlstudio.core.deploy import export as core_export
    from tlstudio.core.errors import Cancelled

    started = threading.Event()

    def slow_write(predictor, fmt, path, scratch, images=None):
        started.set()
        if not dialog._worker.cancel_event.wait(30):  # the Cancel button sets the worker's event
            raise AssertionError("never cancelled")
        raise Cancelled("Export cancelled.")

    monkeypatch.setattr(core_export, "write_format", slow_write)
    engine_in_this_process(monkeypatch)
    dialog = _dialog(qtbot, state)
    dialog.set_destination(tmp_path / "out")
    dialog.set_formats(["keras", "tflite"])
    dialog.start_export()
    qtbot.waitUntil(started.is_set, timeout=30000)
    dialog.cancel_button.click()
    _finish(qtbot, dialog)
    assert dialog.finished_state() == "cancelled"
    assert "cancelled" in dialog.status_label.text().lower()
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert not (tmp_path / "out").exists(), "a cancelled export writes nothing"


def test_closing_during_an_export_cancels_it_then_closes(qtbot, state, tmp_path, monkeypatch):
    from tlstudio.core.deploy import export as core_export
    from tlstudio.core.errors import Cancelled

    started = threading.Event()

    def slow_write(predictor, fmt, path, scratch, images=None):
        started.set()
        dialog._worker.cancel_event.wait(30)
        raise Cancelled("Export cancelled.")

    monkeypatch.setattr(core_export, "write_format", slow_write)
    engine_in_this_process(monkeypatch)
    dialog = _dialog(qtbot, state)
    dialog.set_destination(tmp_path / "out")
    dialog.start_export()
    qtbot.waitUntil(started.is_set, timeout=30000)
    dialog.reject()  # Escape or Close while running: no blocking wait on the GUI thread
    assert dialog.isVisible() and "Cancelling" in dialog.status_label.text()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=30000)
    assert dialog.finished_state() == "cancelled"
    _finish(qtbot, dialog)
