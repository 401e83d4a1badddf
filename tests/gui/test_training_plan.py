"""What the Train page says before Start, from the state alone."""

from __future__ import annotations

from tlstudio.core.config import TrainConfig
from tlstudio.gui.state import AppState
from tlstudio.gui.training_plan import cannot_train_reason, context_text, plan_text


class Scan:
    root = "/data"
    classes = ["a", "b"]
    warnings: list = []

    def __init__(self, counts):
        self.counts = counts

    def class_counts(self):
        return self.counts

    def usable(self):
        return [0] * sum(self.counts.values())


def test_reasons():
    state = AppState()
    assert "Choose a dataset" in cannot_train_reason(state)
    state.scan = Scan({"a": 4, "b": 0})
    assert "only one class (a)" in cannot_train_reason(state)
    state.scan = Scan({})
    assert "no images" in cannot_train_reason(state)
    state.scan = Scan({"a": 4, "b": 3})
    assert cannot_train_reason(state) is None
    assert context_text(state).startswith("7 images in 2 classes")


def test_plan_follows_the_fine_tuning_settings():
    assert "No fine-tuning" in plan_text(TrainConfig(head_epochs=7, fine_tune_epochs=0))
    text = plan_text(TrainConfig(head_epochs=7, fine_tune_epochs=4, unfreeze_top=1, fine_tune_lr=1e-5))
    assert "up to 7 epochs" in text and "the top 1 block of the base" in text and "1e-05" in text
    chosen = plan_text(TrainConfig(fine_tune_epochs=0, layer_state={"trainable": {}}))
    assert "together with the layers you ticked" in chosen
