"""The engine dies in the middle of a training: the window says so, keeps everything, and resumes in one click."""

from __future__ import annotations

import os
import signal

import pytest
from support.trained_runs import write_image

COLOURS = {"blue": (40, 80, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


@pytest.mark.slow  # two engines and two training processes: minutes on a shared machine
def test_a_killed_engine_is_reported_and_the_interrupted_training_resumes(qtbot, main_window, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from tlstudio.core.config import AugmentConfig
    from tlstudio.core.data.scan import scan_dataset
    from tlstudio.workers.engine_calls import current_engine, stop_engine

    for name, colour in COLOURS.items():
        for i in range(6):
            write_image(tmp_path / "data" / name / f"{name}_{i:02d}.png", colour, pattern=i)
    stop_engine()
    window, state = main_window, main_window.state
    window.start_background_loading()
    state.set_scan(scan_dataset(tmp_path / "data"))
    # Augmentation trains through the image pipeline: about a second an epoch, time to act in between.
    state.update_train_config(base="MobileNet", alpha=0.25, input_size=64, weights="imagenet", head_epochs=4,
                              fine_tune_epochs=0, batch_size=4, early_stopping=False,
                              augment=AugmentConfig(enabled=True))
    project = state.project
    page = window.go_to("train")
    assert page.start_training()
    qtbot.waitUntil(lambda: page._epochs_done >= 2, timeout=600000)
    old = current_engine().pid
    os.kill(old, signal.SIGKILL)

    qtbot.waitUntil(lambda: page.resume_button.isVisible(), timeout=120000)
    # The failed training and the engine's new state reach the window as two queued signals, in either order.
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "engine-stopped") is not None, timeout=30000)
    box = window.findChild(QMessageBox, "engine-stopped")
    assert "stopped unexpectedly" in box.text() and "project" in box.text()
    assert "resumed" in page.result_label.text()
    assert state.project is project and not state.training
    qtbot.waitUntil(lambda: window.engine_state == "ready" and current_engine().pid != old, timeout=300000)

    page.resume_button.click()  # one click
    assert not page.resume_button.isVisible()
    qtbot.waitUntil(lambda: page.last_result is not None and not state.training, timeout=600000)
    assert page.last_result.status == "finished" and page.last_result.epochs_run == 4
    assert [r.run_dir for r in state.project.runs] == [str(page.last_result.run_dir)]
    box.close()
