"""The Export dialog offers the web page and counts a folder export's size once."""

from __future__ import annotations

import gc

from support.predict_run import trained_run
from support.trained_runs import record_for


def test_web_page_export_from_the_dialog(qtbot, tmp_path_factory, tmp_path):
    from tlstudio.gui.dialogs.export import ExportDialog, human_size
    from tlstudio.gui.state import AppState

    run = trained_run(tmp_path_factory)
    state = AppState()
    state.add_run(record_for(run, name="colours"))
    dialog = ExportDialog(state, None, run_dir=run)
    qtbot.addWidget(dialog)
    dialog.show()
    assert "web" in dialog.format_boxes and dialog.format_boxes["web"].text() == "Web page"
    dialog.set_destination(tmp_path / "exported")
    dialog.set_formats(["web"])
    dialog.verify_box.setChecked(False)  # the browser check has its own tests
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.finished_state() is not None and not dialog.is_running(), timeout=300000)
    dialog.shutdown()
    qtbot.wait(20)
    gc.collect()

    assert dialog.finished_state() == "finished", dialog.note_label.text()
    folder = tmp_path / "exported"  # a new folder becomes the web page's own folder
    assert (folder / "index.html").is_file() and (folder / "model.onnx").is_file()
    (outcome,) = dialog.outcomes
    assert outcome.ok and outcome.files[0][0] == str(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert human_size(size) in dialog.status_label.text()
