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
    text = plan_text(TrainConfig(head_epochs=7, fine_tune_epochs=4, unfreeze_top=1, fine_tune_lr=1e-5,
                                 auto_fine_tune_lr=False))
    assert "up to 7 epochs" in text and "the top 1 block of the base" in text and "1e-05" in text
    assert "1/100 of the classifier's" in plan_text(TrainConfig(fine_tune_epochs=4))  # automatic rate


def base_layers(*trainable: bool) -> dict:
    layers = [{"path": f"base/conv{i}", "trainable": t} for i, t in enumerate(trainable)]
    return {"version": 1, "layers": layers + [{"path": "head/dense", "trainable": True}]}


def test_ticking_base_layers_means_fine_tuning_after_the_classifier():
    # As core trains it: ticked base layers learn in a fine-tuning phase (10 epochs when none were given).
    chosen = plan_text(TrainConfig(fine_tune_epochs=0, layer_state=base_layers(False, True)))
    assert "Fine-tuning: the layers you ticked on the Model page learn too, for up to 10 epochs" in chosen
    assert "turned fine-tuning on" in chosen and "together with" not in chosen
    # Unticked again (only the classifier ticked): no fine-tuning, as before.
    assert "No fine-tuning" in plan_text(TrainConfig(fine_tune_epochs=0, layer_state=base_layers(False, False)))


def test_automatic_epochs_are_not_shown_as_a_number():
    assert "until it stops improving" in plan_text(TrainConfig())
    state = AppState()
    state.scan = Scan({"a": 4, "b": 3})
    assert "until it stops improving" in context_text(state) and "10 epochs" not in context_text(state)
    state.update_train_config(layer_state=base_layers(True))
    assert context_text(state).endswith("then up to 10 fine-tuning")
    varied = TrainConfig()
    varied.augment.enabled = True  # no cache: the epoch number is what runs
    assert "for up to 10 epochs" in plan_text(varied)
