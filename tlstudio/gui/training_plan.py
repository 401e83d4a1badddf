"""What the Train page says before Start: whether a run can start, on what, and what trains in each phase.

Pure functions of the app state, so the words are tested without a window. The plan follows core's
rules (:mod:`tlstudio.core.train.trainer`): the classifier first with the base as it is; then, when
fine-tuning has epochs or base layers are ticked on the Model page, the ticked layers, else the base's
top blocks, after the classifier has learned.
"""

from __future__ import annotations

from pathlib import Path

from tlstudio.core.config import DEFAULT_FINE_TUNE_EPOCHS
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


def runs_to_convergence(config) -> bool:
    """Whether the classifier trains until validation stops improving (automatic epochs on cached features).

    With varied (augmented) images there is no cache and the epoch number is used as it is.
    """
    return bool(config.is_auto("epochs") and config.use_cache and not config.augment.enabled and config.head_epochs > 0)


def unfreezes_base(config) -> bool:
    """Whether the layers ticked on the Model page (``layer_state``) include any layer of the base."""
    layers = config.layer_state.get("layers") if isinstance(config.layer_state, dict) else None
    if not isinstance(layers, list):
        return bool(config.layer_state)  # a state in another form: trust that it chose something
    return any(isinstance(e, dict) and e.get("trainable") and str(e.get("path", "")).startswith("base/")
               for e in layers)


def fine_tune_epochs(config) -> int:
    """The fine-tuning budget the run will use: ticking base layers turns fine-tuning on (core's rule)."""
    if config.fine_tune_epochs > 0:
        return int(config.fine_tune_epochs)
    return DEFAULT_FINE_TUNE_EPOCHS if unfreezes_base(config) else 0


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
    head = "until it stops improving" if runs_to_convergence(c) else \
        f"up to {c.head_epochs} epoch{'s' if c.head_epochs != 1 else ''}"
    fine = fine_tune_epochs(c)
    return f"{data} · base {model_name(c)} · classifier {head}" + (f", then up to {fine} fine-tuning" if fine else "")


def plan_text(config) -> str:
    """What will learn in each phase, in plain words (HTML, one line per phase)."""
    how_long = "until it stops improving" if runs_to_convergence(config) else f"for up to {config.head_epochs} epochs"
    first = f"<b>1.</b> The new classifier learns {how_long}; the base model stays as it is."
    fine = fine_tune_epochs(config)
    if fine <= 0:
        return f"{first}<br><b>2.</b> No fine-tuning (Fine-tuning epochs is 0)."
    if config.layer_state:
        what = "the layers you ticked on the Model page learn" if unfreezes_base(config) else \
            "only the classifier learns again (no base layer is ticked on the Model page)"
    else:
        what = f"the top {config.unfreeze_top} block{'s' if config.unfreeze_top != 1 else ''} of the base learn"
    rate = "1/100 of the classifier's learning rate" if config.is_auto("fine_tune_lr") else \
        f"learning rate {config.fine_tune_lr:g}"
    second = f"<b>2.</b> Fine-tuning: {what} too, for up to {fine} epochs at {rate}."
    if not config.fine_tune_epochs:
        second += " Ticking base layers turned fine-tuning on."
    return f"{first}<br>{second}"
