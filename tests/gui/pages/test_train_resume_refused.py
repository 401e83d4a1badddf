"""The Train page's Resume of a run whose dataset's classes changed is refused in plain words (promise 6)."""

from __future__ import annotations

import html
import os

import pytest

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_dataset
from tlstudio.core.errors import Interrupted
from tlstudio.gui.pages.train import TrainPage
from tlstudio.gui.state import AppState


def _interrupted_run(data, run):
    from tlstudio.core.train.trainer import train

    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights="none", input_size=32,
                         head_epochs=40, fine_tune_epochs=0, batch_size=4, auto_epochs=False, early_stopping=False)
    stop = ev.StopRequest()

    def emit(event):
        if isinstance(event, ev.EpochEnded):
            stop.stop(ev.STOP_QUIT)

    with pytest.raises(Interrupted):
        train(config, run, emit=emit, cancel=stop)


def test_resume_after_a_class_folder_was_renamed_says_which_classes_differ(qtbot, image_folder, tmp_path):
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    run = tmp_path / "run"
    _interrupted_run(data, run)
    (data / "dogs").rename(data / "wolves")
    os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
    state = AppState()
    state.set_scan(scan_dataset(data))
    page = TrainPage(state)
    qtbot.addWidget(page)
    page.interrupted_run = run  # as after the engine died or the window was closed during the run

    assert page.resume_training()
    qtbot.waitUntil(lambda: not state.training, timeout=120_000)
    expected = "the dataset's classes changed since the run started (new: wolves; gone: dogs)"
    assert expected in page.status_label.text()
    assert html.escape(expected) in page.result_label.text() and page.result_label.isVisibleTo(page)
    assert "Traceback" not in page.log_text()
    assert state.project.runs == []  # nothing was added to the project
    assert run_folder.read_summary(run).status == "interrupted"  # still resumable once the folder is back
    assert page.shutdown(10_000)
