"""``model_card.md``: what an exported model is, how it was made and how well it did."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tlstudio import __version__
from tlstudio.core import run_folder

if TYPE_CHECKING:  # pragma: no cover
    from tlstudio.core.deploy.predict import Predictor

PREPROCESS_TEXT = {
    "tf": "scaled to [-1, 1] (x / 127.5 - 1)",
    "caffe": "converted to BGR with the ImageNet mean subtracted",
    "torch": "scaled to [0, 1], then normalised with the ImageNet mean and standard deviation",
    "none": "passed as they are (the base scales its input itself)",
}


def _versions() -> str:
    parts = [f"tlstudio {__version__}"]
    try:
        import tensorflow as tf

        parts.append(f"TensorFlow {tf.__version__}")
    except ImportError:  # pragma: no cover
        pass
    try:
        import keras

        parts.append(f"Keras {keras.__version__}")
    except ImportError:  # pragma: no cover
        pass
    parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)


def _fmt(value: Any, pct: bool = True) -> str:
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:.1%}" if pct else f"{v:.4g}"


def _model_section(predictor: Predictor) -> list[str]:
    run = predictor.run
    lines = ["## Model", ""]
    if run is None:
        source = predictor.model_path.name if predictor.model_path else "a Keras model"
        lines.append(f"- Made from the model file {source} (not a tlstudio run).")
        return lines + [""]
    cfg = run.config
    base = cfg.base_model_path or cfg.base or run.summary.base or "?"
    lines.append(f"- Base: {base}" + (f" (alpha {cfg.alpha:g})" if isinstance(cfg.alpha, (int, float)) else ""))
    weights: Any = cfg.weights
    try:
        from tlstudio.core.models.catalogue import weights_label

        weights = weights_label(cfg)
    except Exception:  # noqa: BLE001 - an older or partial config still gets a card
        pass
    lines.append(f"- Starting weights: {weights or '-'}")
    head = f"pooling {cfg.pooling}, dropout {cfg.dropout}"
    if cfg.hidden_units:
        head += f", hidden layer of {cfg.hidden_units} units"
    lines.append(f"- Head: {head}")
    if run.summary.epochs_run:
        lines.append(f"- Trained for {run.summary.epochs_run} epochs")
    lines.append(f"- Parameters: {predictor.model.count_params():,}")
    return lines + [""]


def _preprocess_mode(predictor: Predictor) -> str | None:
    if predictor.run is None:
        return None
    cfg = predictor.run.config
    if cfg.base_model_path:
        return "none"
    try:
        from tlstudio.core.models.catalogue import get_spec

        return get_spec(str(cfg.base)).preprocess
    except Exception:  # noqa: BLE001
        return None


def _input_section(predictor: Predictor) -> list[str]:
    h, w = predictor.input_size
    policy = {
        "stretch": "stretched to the input size (aspect ratio not kept)",
        "crop": "centre-cropped to a square, then resized",
        "pad": "resized with the aspect ratio kept and black borders added",
    }[predictor.resize_policy]
    mode = _preprocess_mode(predictor)
    inside = PREPROCESS_TEXT.get(mode or "", "scaled as the model's first layers do")
    return [
        "## Input and preprocessing",
        "",
        f"- Input: float32 tensor of shape (batch, {h}, {w}, 3), RGB values 0-255 (not normalised).",
        f"- Images are decoded to RGB with their EXIF orientation applied, then {policy}.",
        f"- Inside the model, pixel values are {inside}" + (f" (mode \"{mode}\")." if mode else "."),
        f"- Output: one probability per class (softmax), in the order of {run_folder.LABELS_FILE}.",
        "",
    ]


def _data_section(predictor: Predictor) -> list[str]:
    run = predictor.run
    lines = ["## Classes and data", ""]
    lines.append(f"{len(predictor.labels)} classes: " + ", ".join(predictor.labels))
    lines.append("")
    if run is None:
        return lines
    s = run.summary
    counts = [(k, n) for k, n in (("train", s.num_train), ("val", s.num_val), ("test", s.num_test)) if n]
    if counts:
        lines.append("- Images: " + ", ".join(f"{n} {k}" for k, n in counts))
    if run.config.data_dir:
        lines.append(f"- Data folder: {run.config.data_dir}")
    parts = [f"{len(v)} {k}" for k, v in run.split.items() if v]
    if run.split.get("train"):
        lines.append(f"- Split recorded in {run_folder.CONFIG_FILE}: {', '.join(parts)}")
    return lines + [""]


def _metrics_section(predictor: Predictor) -> list[str]:
    evaluation = predictor.run.evaluation if predictor.run is not None else None
    if not evaluation or not isinstance(evaluation.get("splits"), dict):
        return ["## Evaluation", "", "No evaluation was recorded for this model.", ""]
    lines = ["## Evaluation", ""]
    for split, metrics in evaluation["splits"].items():
        if not isinstance(metrics, dict):
            continue
        name = {"val": "Validation", "test": "Test"}.get(split, split)
        lines.append(
            f"- {name}: accuracy {_fmt(metrics.get('accuracy'))}, macro F1 {_fmt(metrics.get('macro_f1'), False)}, "
            f"loss {_fmt(metrics.get('loss'), False)}"
        )
    for split, metrics in evaluation["splits"].items():
        per_class = metrics.get("per_class") if isinstance(metrics, dict) else None
        if not isinstance(per_class, dict) or not per_class:
            continue
        name = {"val": "validation", "test": "test"}.get(split, split)
        lines += ["", f"Per class ({name}):", "", "| class | precision | recall | F1 | images |", "|---|---|---|---|---|"]
        for cls, m in per_class.items():
            lines.append(
                f"| {cls} | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | {_fmt(m.get('f1'), False)} | {m.get('support', '-')} |"
            )
    warnings = evaluation.get("warnings") or []
    if warnings:
        lines.append("")
    for warning in warnings:
        lines.append(f"- Note: {warning}")
    return lines + [""]


def _threshold_origin(predictor: Predictor) -> str:
    recorded = predictor.run.summary.get("threshold") if predictor.run is not None else None
    if isinstance(recorded, dict) and recorded.get("source") == "validation":
        return " The threshold was chosen on the validation images so that confident answers are rarely wrong."
    return ""


def _not_sure_section(predictor: Predictor) -> list[str]:
    threshold = getattr(predictor, "threshold", None)
    if not threshold:
        return []
    return [
        '## "Not sure"',
        "",
        f"When the best class gets less than {threshold:.0%} probability the answer is \"not sure\" "
        "(with the best guess beside it); the sample scripts do the same." + _threshold_origin(predictor),
        "",
    ]


def model_card(predictor: Predictor, files: list[tuple[str, str]], *, name: str | None = None) -> str:
    """The Markdown model card of an export.

    Parameters
    ----------
    predictor
        The model with its run information.
    files
        (file name, description) of the exported files in the folder.
    name
        A title; default the run folder's or model file's name.
    """
    title = name or (predictor.run_dir.name if predictor.run_dir else (predictor.model_path.stem if predictor.model_path else "model"))
    date = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [f"# Model card: {title}", "", "An image classifier trained with tlstudio (transfer learning).", ""]
    lines += _model_section(predictor)
    lines += _input_section(predictor)
    lines += _data_section(predictor)
    lines += _metrics_section(predictor)
    lines += _not_sure_section(predictor)
    lines += ["## Files", ""]
    for file_name, description in files:
        lines.append(f"- `{file_name}`: {description}")
    lines += [f"- `{run_folder.LABELS_FILE}`: the class names, one per line, in output order", ""]
    lines += ["## Made with", "", f"- {_versions()}", f"- Exported {date}", ""]
    if predictor.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in predictor.notes] + [""]
    return "\n".join(lines)
