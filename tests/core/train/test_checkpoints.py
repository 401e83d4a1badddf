"""Checkpoints: state.json names complete files, old epochs are pruned, a resume reads it all back."""

from __future__ import annotations

import json

import numpy as np

from tlstudio.core.data.pipeline import SkipLog
from tlstudio.core.train.checkpoints import BestTracker, Checkpointer, RunProgress, load_arrays


class FakeModel:
    optimizer = None

    def __init__(self, value: float) -> None:
        self.value = value
        self.stop_training = False

    def get_weights(self):
        return [np.full((2, 2), self.value, np.float32)]


def test_each_epoch_is_checkpointed_the_best_kept_and_a_resume_reads_it_back(tmp_path):
    progress, best, skips = RunProgress(), BestTracker(patience=1), SkipLog()
    ckpt = Checkpointer(tmp_path, progress, best, skips, lambda: 1.5)
    skips.add("a/x.png", "cannot be decoded")
    logs = []
    for epoch, (value, val_loss) in enumerate([(1.0, 0.5), (2.0, 0.7)]):
        model = FakeModel(value)
        progress.run_epoch += 1
        ckpt.on_epoch(phase="head", epochs=5, model=model, kind="head", log=logs.append)(epoch, {"val_loss": val_loss})
    # patience 1: the second epoch was worse, so early stopping asked to stop
    assert model.stop_training and logs and "stopped early" in logs[0] and "training the classifier" in logs[0]
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 2 and state["phase_done"] is True
    assert state["best"]["file"] == "head-e0001.npz" and state["weights"] == "head-e0002.npz"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.npz")) == ["head-e0001.npz", "head-e0002.npz"]
    assert (tmp_path / "history.json").is_file()

    again = Checkpointer(tmp_path, RunProgress(), BestTracker(patience=1), SkipLog(), lambda: 0.0)
    saved = again.read()
    again.restore_progress(saved)
    again.restore_best(saved)
    assert again.progress.run_epoch == 2 and again.progress.train_seconds == 1.5
    assert again.best.best_loss == 0.5 and float(again.best.best_weights[0][0, 0]) == 1.0
    assert [s.path for s in again.skip_log.all()] == ["a/x.png"]
    assert float(load_arrays(tmp_path / "checkpoints" / saved["weights"])[0][0, 0]) == 2.0

    ckpt.finish()
    assert not list((tmp_path / "checkpoints").glob("*.npz"))
