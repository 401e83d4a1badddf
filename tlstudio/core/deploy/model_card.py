"""``model_card.md``: what an exported model is, how it was made and how well it did."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlstudio import __version__

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
    cfg = predictor.run.config
    lines = ["## Model", ""]
    if predictor.run.run_dir is None:
        source = predictor.model_path.name if predictor.model_path else "a Keras model"
        lines.append(f"- Made from the model file {source} (not a tlstudio run).")
        return lines + [""]
    base = cfg.get("base_model_path") or cfg.get("base") or predictor.run.get("base", "?")
    alpha = cfg.get("alpha")
    lines.append(f"- Base: {base}" + (f" (alpha {alpha:g})" if isinstance(alpha, (int, float)) else ""))
    weights = cfg.get("weights")
    try:
        from tlstudio.core.models.catalogue import weights_label
        from tlstudio.core.run_folder import load_run

        weights = weights_label(load_run(predictor.run.run_dir).config)
    except Exception:  # noqa: BLE001 - an older or partial config still gets a card
        pass
    lines.append(f"- Starting weights: {weights or '-'}")
    head = f"pooling {cfg.get('pooling', 'avg')}, dropout {cfg.get('dropout', '-')}"
    if cfg.get("hidden_units"):
        head += f", hidden layer of {cfg['hidden_units']} units"
    lines.append(f"- Head: {head}")
    epochs = predictor.run.get("epochs_run")
    if epochs is not None:
        lines.append(f"- Trained for {epochs} epochs")
    lines.append(f"- Parameters: {predictor.model.count_params():,}")
    return lines + [""]


def _preprocess_mode(predictor: Predictor) -> str | None:
    cfg = predictor.run.config
    if not cfg:
        return None
    if cfg.get("base_model_path"):
        return "none"
    try:
        from tlstudio.core.models.catalogue import get_spec

        return get_spec(str(cfg.get("base"))).preprocess
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
        "- Output: one probability per class (softmax), in the order of labels.txt.",
        "",
    ]


def _data_section(predictor: Predictor) -> list[str]:
    run = predictor.run
    lines = ["## Classes and data", ""]
    lines.append(f"{len(predictor.labels)} classes: " + ", ".join(predictor.labels))
    lines.append("")
    counts = [(k, run.get(f"num_{k}")) for k in ("train", "val", "test")]
    if any(v is not None for _, v in counts):
        lines.append("- Images: " + ", ".join(f"{v} {k}" for k, v in counts if v is not None))
    if run.config.get("data_dir"):
        lines.append(f"- Data folder: {run.config['data_dir']}")
    if run.config.get("resize_policy"):
        split = run.config.get("split")
        if isinstance(split, dict) and split.get("train"):
            parts = [f"{len(v)} {k}" for k, v in split.items() if isinstance(v, list) and v]
            lines.append(f"- Split recorded in config.json: {', '.join(parts)}")
    return lines + [""]


def _metrics_section(predictor: Predictor) -> list[str]:
    evaluation = predictor.run.evaluation
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
    title = name or (predictor.run.run_dir.name if predictor.run.run_dir else (predictor.model_path.stem if predictor.model_path else "model"))
    date = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [f"# Model card: {title}", "", "An image classifier trained with tlstudio (transfer learning).", ""]
    lines += _model_section(predictor)
    lines += _input_section(predictor)
    lines += _data_section(predictor)
    lines += _metrics_section(predictor)
    lines += ["## Files", ""]
    for file_name, description in files:
        lines.append(f"- `{file_name}`: {description}")
    lines += ["- `labels.txt`: the class names, one per line, in output order", ""]
    lines += ["## Made with", "", f"- {_versions()}", f"- Exported {date}", ""]
    if predictor.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in predictor.notes] + [""]
    return "\n".join(lines)


def describe_folder(folder: Path) -> list[tuple[str, str]]:
    """(name, description) of the exported models found in ``folder``, for the card's file list."""
    from tlstudio.core.deploy.sample_scripts import TITLES, script_name

    found: list[tuple[str, str]] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        fmt = None
        if path.is_dir() and (path / "saved_model.pb").is_file():
            fmt = "savedmodel"
        elif path.suffix == ".keras":
            fmt = "keras"
        elif path.suffix == ".onnx":
            fmt = "onnx"
        elif path.suffix == ".tflite":
            stem = path.stem.lower()
            fmt = "tflite-int8" if "int8" in stem else "tflite-f16" if ("f16" in stem or "float16" in stem) else "tflite"
        if fmt:
            found.append((path.name, TITLES[fmt]))
            if (folder / script_name(fmt)).is_file():
                found.append((script_name(fmt), f"sample script for {path.name}"))
    return found
