"""The side bar's words for each step follow the state."""

from __future__ import annotations

from tlstudio.core.project import RunRecord
from tlstudio.gui.state import AppState
from tlstudio.gui.step_status import step_statuses


class Scan:
    def __init__(self, counts, warnings=()):
        self.counts, self.warnings, self.root = counts, list(warnings), "/data"

    def class_counts(self):
        return self.counts

    def usable(self):
        return [0] * sum(self.counts.values())


def test_empty_project():
    out = step_statuses(AppState())
    assert out["data"] == ("pending", "Open a folder")
    assert out["train"] == ("pending", "Needs a dataset")
    assert out["test"] == ("pending", "After training")


def test_one_class_blocks_training_and_says_why():
    state = AppState()
    state.scan = Scan({"a": 10, "b": 0})
    out = step_statuses(state)
    assert out["data"] == ("error", "Needs 2 or more classes") and out["train"][0] == "pending"


def test_ready_then_trained(tmp_path):
    state = AppState()
    state.scan = Scan({"a": 3, "b": 4})
    assert step_statuses(state)["data"] == ("done", "7 images, 2 classes")
    assert step_statuses(state)["train"] == ("ready", "Waiting for TensorFlow")
    state.project.runs.append(RunRecord(run_dir=str(tmp_path / "r"), name="first"))
    state.current_run = str(tmp_path / "r")
    out = step_statuses(state)
    assert out["train"] == ("done", "1 run") and out["evaluate"] == ("ready", "first") == out["test"]
    state.opened_model = str(tmp_path / "mine.keras")
    assert step_statuses(state)["test"] == ("ready", "mine.keras")
