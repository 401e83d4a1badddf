"""train_in_subprocess: the same contract as train(), with the work in a child process."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.train.launcher import train_in_subprocess


def tiny_config(data_dir: Path, **changes) -> TrainConfig:
    config = TrainConfig(data_dir=str(data_dir), base="MobileNet", alpha=0.25, weights="none", input_size=32,
                         head_epochs=3, fine_tune_epochs=0, batch_size=2, early_stopping=False)
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def test_cancel_reaches_the_child_within_a_batch(image_folder, tmp_path):
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    cancel = threading.Event()
    seen: list[ev.Event] = []

    def emit(event):
        seen.append(event)
        if isinstance(event, ev.EpochEnded):
            cancel.set()

    try:
        result = train_in_subprocess(tiny_config(data), tmp_path / "run", emit=emit, cancel=cancel)
    except Cancelled:  # allowed by the contract, though an epoch has completed here
        pytest.fail("a run cancelled after an epoch must keep its weights")
    assert result.status == "cancelled"
    assert Path(result.model_path).is_file()
    epochs = [e for e in seen if isinstance(e, ev.EpochEnded)]
    assert len(epochs) == 1  # the cancel was honoured before a second epoch completed
    assert any(isinstance(e, ev.RunStarted) for e in seen) and isinstance(seen[-1], ev.TrainFinished)


def test_a_child_that_dies_is_reported_in_one_line(image_folder, tmp_path):
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))

    def emit(event):
        if isinstance(event, ev.BatchEnded):
            for child in multiprocessing.active_children():
                if child.name == "tlstudio-train":
                    os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(TlstudioError) as info:
        train_in_subprocess(tiny_config(data), tmp_path / "run", emit=emit)
    message = str(info.value)
    assert "stopped unexpectedly" in message and "\n" not in message
    assert not [c for c in multiprocessing.active_children() if c.name == "tlstudio-train"]


def test_the_child_trains_inside_the_context_it_is_given(image_folder, tmp_path):
    """The engine hands a run to a Ray cluster this way: core gets a context factory, never Ray itself."""
    import functools

    from support.train_context import marking_context

    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    marker = tmp_path / "context.txt"
    result = train_in_subprocess(tiny_config(data, head_epochs=1), tmp_path / "run",
                                 context=functools.partial(marking_context, str(marker)))
    assert result.status == "finished"
    entered, left = marker.read_text().splitlines()
    assert entered.startswith("entered ") and int(entered.split()[1]) != os.getpid()  # in the child
    assert left == "left"
