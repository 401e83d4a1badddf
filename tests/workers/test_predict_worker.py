"""PredictWorker: one long-lived thread that loads the model once and answers many requests."""

from __future__ import annotations

import gc

import pytest
import support.trained_runs as runs_support

from tlstudio.workers.base import start_worker
from tlstudio.workers.predict_worker import PredictWorker


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return runs_support.session_runs(tmp_path_factory)


def _stop(handle, qtbot):
    handle.cancel()
    handle.thread.quit()
    assert handle.wait(10000)
    # Let the queued deleteLater calls run, then collect cycles here in the GUI thread: a collection
    # triggered later inside another worker thread must not be the one to destroy these Qt objects.
    qtbot.wait(20)
    gc.collect()


def test_model_loads_once_and_answers_images_gradcam_and_folders(qtbot, recorder, runs):
    run = str(runs.runs[-1])
    images = [runs.loose / "red_new.png", runs.loose / "green_new.png"]
    worker = PredictWorker()
    loading = recorder(worker.model_loading)
    ready = recorder(worker.model_ready)
    done = recorder(worker.image_done)
    cams = recorder(worker.gradcam_done)
    progress = recorder(worker.folder_progress)
    folders = recorder(worker.folder_done)
    handle = start_worker(worker)
    try:
        worker.submit_images(run, [(1, str(images[0])), (2, str(runs.loose / "broken.jpg"))], top_k=2)
        worker.submit_images(run, [(3, str(images[1]))], top_k=3)
        worker.submit_gradcam(run, 3, str(images[1]))
        worker.submit_folder(run, 9, [str(p) for p in sorted(runs.loose.iterdir())], top_k=1)
        qtbot.waitUntil(lambda: len(done.calls) == 3 and bool(cams.calls) and bool(folders.calls), timeout=60000)
    finally:
        _stop(handle, qtbot)

    assert len(loading.calls) == 1, "the model must be loaded once and kept for later requests"
    info = ready.calls[0][0]
    assert list(info.labels) == list(runs_support.CLASSES)
    by_id = {c[0].item_id: c[0] for c in done.calls}

    reference = runs_support.reference_predictor(run)
    expected = reference.predict([str(images[0]), str(images[1])], top_k=3)
    assert [name for name, _p in by_id[1].prediction.top] == [name for name, _p in expected[0].top[:2]]
    got = by_id[3].prediction.top
    assert [n for n, _p in got] == [n for n, _p in expected[1].top]
    assert [p for _n, p in got] == pytest.approx([p for _n, p in expected[1].top], abs=1e-5)
    assert by_id[1].thumbnail is not None and max(by_id[1].thumbnail.size) <= 160
    assert by_id[2].prediction.error and "broken.jpg" in by_id[2].prediction.error
    assert by_id[2].thumbnail is None

    cam = cams.calls[0][0]
    assert cam.item_id == 3 and cam.label in runs_support.CLASSES
    assert cam.overlay.size[0] > 0

    outcome = folders.calls[0][0]
    assert outcome.job_id == 9 and not outcome.cancelled
    assert len(outcome.predictions) == 4  # three images and the broken file, each with its row
    assert sum(1 for p in outcome.predictions if p.error) == 1
    assert progress.calls[-1] == (9, 4, 4)


def test_a_model_that_cannot_load_is_reported_and_the_worker_goes_on(qtbot, recorder, runs, tmp_path):
    bad = tmp_path / "not-a-model.keras"
    bad.write_bytes(b"junk")
    worker = PredictWorker()
    failed = recorder(worker.model_failed)
    done = recorder(worker.image_done)
    folders = recorder(worker.folder_done)
    handle = start_worker(worker)
    try:
        worker.submit_folder(str(bad), 5, [str(runs.loose / "red_new.png")])
        qtbot.waitUntil(lambda: bool(failed.calls) and bool(folders.calls), timeout=30000)
        assert failed.calls[0][0] == str(bad) and failed.calls[0][1]
        assert folders.calls[0][0].cancelled
        worker.submit_images(str(runs.runs[1]), [(1, str(runs.loose / "blue_new.png"))])
        qtbot.waitUntil(lambda: bool(done.calls), timeout=30000)
        assert done.calls[0][0].prediction.error is None
        assert done.calls[0][0].prediction.label in runs_support.CLASSES
    finally:
        _stop(handle, qtbot)
