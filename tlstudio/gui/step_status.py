"""What the side bar says about each workflow step, computed from the app state alone (no widgets)."""

from __future__ import annotations

from pathlib import Path

#: (key, title) of each step, in order.
STEP_TITLES: tuple[tuple[str, str], ...] = (
    ("data", "Data"),
    ("model", "Model"),
    ("train", "Train"),
    ("evaluate", "Evaluate"),
    ("test", "Test & Export"),
    ("runs", "Runs"),
)


def model_name(config) -> str:
    """The base model in plain words: a user's own model by file name, a catalogue model by name."""
    if config.base_model_path:
        return Path(config.base_model_path).name
    return config.base


def data_ready(state) -> bool:
    """True when the scanned dataset has images in two or more classes."""
    scan = state.scan
    return scan is not None and sum(1 for n in scan.class_counts().values() if n > 0) >= 2


def step_statuses(state) -> dict[str, tuple[str, str]]:
    """``{step: (status, detail)}``; status is pending | ready | done | busy | warning | error."""
    s = state
    out: dict[str, tuple[str, str]] = {}
    scan = s.scan
    ready = data_ready(s)
    if scan is None:
        out["data"] = ("pending", "Not scanned yet" if s.project.train.data_dir else "Open a folder")
    elif ready:
        n = len(scan.usable())
        k = sum(1 for count in scan.class_counts().values() if count > 0)
        out["data"] = ("warning" if scan.warnings else "done", f"{n} images, {k} classes")
    else:
        out["data"] = ("error", "Needs 2 or more classes")
    base = model_name(s.project.train)
    out["model"] = ("done", base) if s.layer_tree is not None else ("ready" if ready else "pending", base)
    runs = len(s.project.runs)
    runs_text = f"{runs} run{'s' if runs != 1 else ''}"
    if s.training:
        out["train"] = ("busy", "Training...")
    elif runs:
        out["train"] = ("done", runs_text)
    elif ready:
        out["train"] = ("ready", "Ready" if s.tf_ready else "Waiting for TensorFlow")
    else:
        out["train"] = ("pending", "Needs a dataset")
    run = s.find_run(s.current_run) if s.current_run else None
    run_name = (run.name if run and run.name else Path(s.current_run).name) if s.current_run else ""
    out["evaluate"] = ("ready", run_name) if s.current_run else ("pending", "After training")
    tested = s.tested_model or s.opened_model or s.current_run
    if tested:
        run = s.find_run(tested)
        out["test"] = ("ready", run.name if run is not None and run.name else Path(tested).name)
    else:
        out["test"] = ("pending", "After training")
    out["runs"] = ("done" if runs else "pending", runs_text)
    return out
