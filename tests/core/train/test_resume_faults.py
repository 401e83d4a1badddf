"""Runs end in a true state and resume only what they started with (promises 5 and 6 of issue 18).

A training stopped to quit (the window closing) stays "interrupted" and resumes from its last completed
epoch; a resumed run whose dataset's classes changed is refused, naming them, in core and in the CLI.
Tiny on purpose: MobileNet alpha 0.25 with random weights at 32 px on generated images.
"""

from __future__ import annotations

import json

import pytest

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Interrupted
from tlstudio.core.train.run_data import TrainingError
from tlstudio.core.train.trainer import train


def _config(data) -> TrainConfig:
    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights="none", input_size=32,
                         head_epochs=40, fine_tune_epochs=0, batch_size=4, head_lr=0.01, auto_epochs=False,
                         early_stopping=False)
    config.split.val_fraction = 0.25
    return config


@pytest.fixture
def interrupted_run(image_folder, tmp_path):
    """A run stopped to quit after its second epoch: ``(dataset folder, run folder, events)``."""
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    run = tmp_path / "run"
    stop = ev.StopRequest()
    seen: list[ev.Event] = []

    def emit(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.EpochEnded) and event.run_epoch >= 2:
            stop.stop(ev.STOP_QUIT)

    with pytest.raises(Interrupted, match="--resume"):
        train(_config(data), run, emit=emit, cancel=stop)
    return data, run, seen


def test_a_run_stopped_to_quit_stays_interrupted_and_resumes_where_it_stopped(interrupted_run):
    _data, run, seen = interrupted_run
    summary = json.loads((run / "run.json").read_text())
    assert summary["status"] == "interrupted" and "error" not in summary
    assert run_folder.read_summary(run).status == "interrupted"
    assert not run_folder.has_model(run)  # stopped at once: no evaluation, no model of a "cancelled" run
    assert not any(isinstance(e, ev.TrainFinished) for e in seen)
    run_folder.check_resumable(run)
    done = len(run_folder.read_history(run)["epochs"])
    assert done >= 2

    events: list[ev.Event] = []
    result = train(None, run, emit=events.append, resume=True)
    assert result.status == "finished" and result.epochs_run == 40
    assert any(isinstance(e, ev.LogMessage) and f"resuming after {done} completed epoch(s)" in e.text for e in events)
    first = next(e for e in events if isinstance(e, ev.EpochEnded))
    assert first.run_epoch == done + 1  # continued, not restarted from epoch 0


def test_a_plain_cancel_still_ends_cancelled_with_its_best_weights(image_folder, tmp_path):
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    stop = ev.StopRequest()

    def emit(event: ev.Event) -> None:
        if isinstance(event, ev.EpochEnded):
            stop.stop(ev.STOP_USER)

    result = train(_config(data), tmp_path / "run", emit=emit, cancel=stop)
    assert result.status == "cancelled" and run_folder.has_model(tmp_path / "run")


@pytest.mark.parametrize(
    "change, names",
    [
        (lambda data: (data / "dogs").rename(data / "wolves"), "new: wolves; gone: dogs"),  # renamed
        (lambda data: (data / "cats").rename(data.parent / "cats-elsewhere"), "gone: cats"),  # removed
    ],
)
def test_a_resumed_run_whose_classes_changed_is_refused_naming_them(interrupted_run, change, names):
    data, run, _ = interrupted_run
    change(data)
    with pytest.raises(TrainingError, match=f"classes changed since the run started \\({names}\\)"):
        train(None, run, resume=True)
    assert run_folder.read_summary(run).status == "interrupted"  # still resumable once the folders are back
    run_folder.check_resumable(run)


def test_the_cli_refuses_a_resume_after_a_class_folder_was_added_in_one_line(interrupted_run, image_folder, capsys):
    from tlstudio.cli import main

    data, run, _ = interrupted_run
    image_folder({"birds": 6}, size=(32, 32), root=data)
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("tlstudio train: cannot resume: the dataset's classes changed since the run started "
                       "(new: birds); a resumed run keeps its classes: put the class folders back as they were, "
                       "or start a new run")
    assert "Traceback" not in "\n".join(err)
    assert run_folder.read_summary(run).status == "interrupted"
