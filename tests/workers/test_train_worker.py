"""TrainWorker: core training on a QThread, each core event forwarded as a signal."""

from __future__ import annotations

import sys
from pathlib import Path

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.workers.base import start_worker
from tlstudio.workers.train_worker import TrainWorker


def tiny_config(data_dir: Path, **changes) -> TrainConfig:
    config = TrainConfig(data_dir=str(data_dir), base="MobileNet", alpha=0.25, weights="none", input_size=32,
                         head_epochs=2, fine_tune_epochs=0, batch_size=4, early_stopping=False)
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def test_worker_forwards_core_events_as_signals(qtbot, recorder, image_folder, tmp_path):
    data = image_folder({"cats": 5, "dogs": 5}, size=(32, 32))
    worker = TrainWorker(tiny_config(data, head_epochs=1), tmp_path / "run")
    started = recorder(worker.run_started)
    phases = recorder(worker.phase_started)
    batches = recorder(worker.batch_ended)
    epochs = recorder(worker.epoch_ended)
    every = recorder(worker.event)
    outcomes = []
    interval = sys.getswitchinterval()
    handle = start_worker(worker, connect={name: (lambda *a, n=name: outcomes.append((n, *a)))
                                           for name in ("finished", "failed", "cancelled")})
    qtbot.waitUntil(lambda: bool(outcomes), timeout=120_000)
    assert sys.getswitchinterval() == interval  # the faster GIL hand-over lasts only as long as the run
    assert handle.wait(10_000)
    qtbot.wait(50)
    assert [o[0] for o in outcomes] == ["finished"], outcomes  # exactly one outcome

    assert isinstance(started.calls[0][0], ev.RunStarted)
    assert started.calls[0][0].classes == ("cats", "dogs")
    assert ev.PHASE_HEAD in [c[0].phase for c in phases.calls]
    assert [c[0].run_epoch for c in epochs.calls] == [1]
    assert batches.calls and all(isinstance(c[0], ev.BatchEnded) for c in batches.calls)
    finished = [c[0] for c in every.calls if isinstance(c[0], ev.TrainFinished)]
    assert finished[0].status == "finished"
    result = outcomes[0][1]
    assert Path(result.model_path).is_file()
    # The catch-all signal saw every typed event too, in order.
    kinds = [type(c[0]) for c in every.calls]
    assert ev.RunStarted in kinds and kinds[-1] is ev.TrainFinished
    assert kinds.count(ev.EpochEnded) == 1
    assert worker.result is result


def test_bad_data_folder_fails_with_one_line(qtbot, recorder, tmp_path):
    worker = TrainWorker(tiny_config(tmp_path / "missing"), tmp_path / "run")
    outcomes = []
    handle = start_worker(worker, connect={name: (lambda *a, n=name: outcomes.append((n, *a)))
                                           for name in ("finished", "failed", "cancelled")})
    qtbot.waitUntil(lambda: bool(outcomes), timeout=60_000)
    assert handle.wait(10_000)
    qtbot.wait(50)
    assert [o[0] for o in outcomes] == ["failed"]
    message = outcomes[0][1]
    assert "\n" not in message and "Traceback" not in message
    assert "missing" in message or "not found" in message.lower()


def test_preview_augmentation_keeps_size_and_varies_the_image():
    import random

    import numpy as np
    from PIL import Image

    from tlstudio.core.config import AugmentConfig
    from tlstudio.workers.augment_preview import augment_image

    arr = np.zeros((40, 48, 3), dtype=np.uint8)
    arr[:, :24] = (220, 40, 40)  # left half red, right half black
    img = Image.fromarray(arr)
    off = AugmentConfig(enabled=True, flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0)
    assert np.array_equal(np.asarray(augment_image(img, off, random.Random(0))), arr)
    on = AugmentConfig(enabled=True, rotation=0.2, zoom=0.2, translation=0.1)
    outs = [np.asarray(augment_image(img, on, random.Random(seed))) for seed in range(4)]
    assert all(o.shape == arr.shape for o in outs)
    assert any(not np.array_equal(o, arr) for o in outs)
    # Reflection fill: a solid image stays solid (a zero-filled border would bring black corners).
    solid = Image.new("RGB", (40, 40), (200, 200, 40))
    rotated = np.asarray(augment_image(solid, on, random.Random(1)))
    assert rotated.min(axis=(0, 1)).tolist()[0] > 150
