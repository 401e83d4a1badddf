"""What the Train page says before Start: whether a run can start, on what, and what trains in each phase.

Pure functions of the app state, so the words are tested without a window. The plan follows core's
rules (:mod:`tlstudio.core.train.trainer`): the classifier first with the base as it is; then, when
fine-tuning has epochs, the layers ticked on the Model page, else the base's top blocks.
"""

from __future__ import annotations

from pathlib import Path

from tlstudio.gui.step_status import model_name


def cannot_train_reason(state) -> str | None:
    """Why Train is disabled, in words, or None when a run can start."""
    scan = state.scan
    if scan is None and not state.project.train.data_dir:
        return "Choose a dataset on the Data page first."
    if scan is not None:
        classes = [name for name, n in scan.class_counts().items() if n > 0]
        if len(classes) < 2:
            found = f"only one class ({classes[0]})" if classes else "no images"
            return f"The dataset has {found}: a model needs at least two classes to tell apart."
    return None


def context_text(state) -> str:
    """One line: the data, the base model and the epoch budget."""
    c = state.project.train
    scan = state.scan
    if scan is not None:
        data = f"{len(scan.usable())} images in {len(scan.classes)} classes"
    elif c.data_dir:
        data = f"data: {Path(c.data_dir).name}"
    else:
        data = "no dataset chosen yet (Data page)"
    epochs = c.head_epochs + c.fine_tune_epochs
    return f"{data} · base {model_name(c)} · up to {epochs} epoch{'s' if epochs != 1 else ''}"


def plan_text(config) -> str:
    """What will learn in each phase, in plain words (HTML, one line per phase)."""
    chosen = bool(config.layer_state)
    first = f"<b>1.</b> The new classifier learns for up to {config.head_epochs} epochs"
    if chosen and config.fine_tune_epochs == 0:
        first += ", together with the layers you ticked on the Model page."
    else:
        first += "; the base model stays as it is."
    if config.fine_tune_epochs <= 0:
        second = "<b>2.</b> No fine-tuning (Fine-tuning epochs is 0)."
    else:
        what = "the layers you ticked on the Model page" if chosen else \
            f"the top {config.unfreeze_top} block{'s' if config.unfreeze_top != 1 else ''} of the base"
        second = (f"<b>2.</b> Fine-tuning: {what} learn too, for up to {config.fine_tune_epochs} epochs at "
                  f"learning rate {config.fine_tune_lr:g}.")
    return f"{first}<br>{second}"
