"""A bypassed feature cache is a warning in the Train page's log (promise 4 of issue 18).

The fault is real: the engine, and the training child it starts, find a file where the cache folder
would go. They read ``TLSTUDIO_HOME`` when they start, so the test starts its own engine and stops it
again, so that the next test's engine starts with that test's own folder.
"""

from __future__ import annotations

from tlstudio.core.data.scan import scan_dataset
from tlstudio.gui.pages.train import TrainPage
from tlstudio.gui.state import AppState


def test_the_training_log_shows_the_bypassed_cache_as_a_warning(qtbot, image_folder, tmp_path, monkeypatch):
    from tlstudio.workers.engine_calls import stop_engine

    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").write_text("a file where the cache folder would go")
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    stop_engine()  # one that earlier tests started, with their own folder
    monkeypatch.setenv("TLSTUDIO_HOME", str(home))
    try:
        state = AppState()
        state.set_scan(scan_dataset(data))
        state.update_train_config(base="MobileNet", alpha=0.25, weights="none", input_size=32, batch_size=4,
                                  head_epochs=2, auto_epochs=False, fine_tune_epochs=0)
        page = TrainPage(state)
        qtbot.addWidget(page)
        assert page.start_training()
        qtbot.waitUntil(lambda: not state.training, timeout=180_000)
        assert page.last_result is not None and page.last_result.status == "finished"
        lines = [ln for ln in page.log_text().splitlines() if "it is bypassed" in ln]
        assert lines and all("⚠" in ln for ln in lines)  # marked as a warning
        assert str(home / "cache") in lines[0]
        assert page.shutdown(10_000)
    finally:
        stop_engine()
