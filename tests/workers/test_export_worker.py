"""ExportWorker: core's one export loop off the GUI thread, each format's outcome as a signal."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from support.engine_here import engine_in_this_process
from support.predict_run import trained_run

from tlstudio.workers.base import start_worker
from tlstudio.workers.export_worker import PROGRESS_SCALE, ExportSummary, ExportWorker


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def _run(qtbot, recorder, worker):
    started, done, finished = recorder(worker.format_started), recorder(worker.format_done), recorder(worker.finished)
    progress, failed = recorder(worker.progress), recorder(worker.failed)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: bool(finished.calls or failed.calls), timeout=120000)
    assert handle.wait(10000)
    qtbot.wait(20)
    gc.collect()
    return started, done, finished, progress, failed


def test_a_failed_format_is_reported_and_the_others_are_written(qtbot, recorder, run_dir, tmp_path, monkeypatch):
    from tlstudio.core.deploy import export as core_export

    real = core_export.write_format

    def no_tflite(predictor, fmt, path, scratch, images=None):
        if fmt == "tflite":
            raise core_export.ExportError("tflite export failed: the converter refused the model")
        return real(predictor, fmt, path, scratch, images)

    monkeypatch.setattr(core_export, "write_format", no_tflite)
    engine_in_this_process(monkeypatch)  # the patch above applies where the engine's handler runs
    dest = tmp_path / "exp"
    worker = ExportWorker(run_dir, ["tflite", "keras"], dest, verify=False)
    started, done, finished, progress, failed = _run(qtbot, recorder, worker)
    assert not failed.calls
    assert [c[0] for c in started.calls] == ["tflite", "keras"]
    tflite, keras_ = (c[0] for c in done.calls)
    assert not tflite.ok and tflite.error == "tflite export failed: the converter refused the model" and not tflite.files
    assert keras_.ok and [Path(p).name for p, _ in keras_.files] == ["model.keras", "predict_keras.py", "labels.txt",
                                                                     "model_card.md"]
    assert all(Path(p).stat().st_size == size for p, size in keras_.files)
    summary = finished.calls[0][0]
    assert isinstance(summary, ExportSummary) and summary.destination == str(dest)
    assert progress.calls[-1] == (PROGRESS_SCALE, PROGRESS_SCALE)
    assert sorted(p.name for p in dest.iterdir()) == ["labels.txt", "model.keras", "model_card.md", "predict_keras.py"]


def test_a_destination_that_is_not_empty_fails_in_one_line(qtbot, recorder, run_dir, tmp_path):
    dest = tmp_path / "exp"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    _started, done, finished, _progress, failed = _run(qtbot, recorder, ExportWorker(run_dir, ["keras"], dest))
    assert not finished.calls and not done.calls
    assert "is not empty (it holds notes.txt)" in failed.calls[0][0] and "\n" not in failed.calls[0][0]
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
