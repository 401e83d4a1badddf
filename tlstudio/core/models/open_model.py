"""Open a model file someone brings: tlstudio's own, any Keras 3 ``.keras``, Keras 2 ``.h5``, Teachable Machine.

Safety first: every model config is read and checked here (:mod:`tlstudio.core.models.safety`) before
Keras builds anything, so a file carrying code (a Lambda layer, a custom class, a module outside Keras)
is refused with a plain explanation and its code never runs.

Whatever the source, the returned model takes raw RGB pixel values 0-255 at ``input_size``; where the
original expected another scale and tlstudio knows it (Teachable Machine: [-1, 1]), standard Keras
layers that do the scaling are put in front of it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core.models.safety import ModelFileError, UnsafeModelError, read_keras_archive

__all__ = [
    "MIN_KERAS_VERSION",
    "LoadedModel",
    "ModelFileError",
    "UnsafeModelError",
    "check_keras_version",
    "cut_below_classifier",
    "find_model_file",
    "load_model_file",
    "read_labels",
]

# Keras 3.12 carries the fixes for the published safe_mode bypasses (CVE-2025-1550, CVE-2025-8747,
# CVE-2025-9906); older versions could run code from a crafted .keras file despite safe_mode=True.
MIN_KERAS_VERSION = (3, 12)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
DEFAULT_SIZE = (224, 224)


@dataclass
class LoadedModel:
    """A model ready for tlstudio: takes raw RGB 0-255 images of ``input_size`` (height, width).

    Attributes
    ----------
    model : keras.Model
        The classifier (or whatever the file held), uncompiled.
    source : str
        ``"tlstudio"``, ``"keras3"``, ``"keras2"`` or ``"teachable-machine"``.
    labels : list of str or None
        Class names in output order, from ``labels.txt`` beside the file when present.
    input_size : tuple of int
        (height, width) the model expects.
    notes : list of str
        Short remarks for the user (conversion done, preprocessing added, labels missing, ...).
    path : Path
        The model file that was opened.
    """

    model: Any
    source: str
    labels: list[str] | None
    input_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    path: Path = field(default_factory=Path)

    @property
    def num_outputs(self) -> int | None:
        """Number of values the model outputs per image (classes), when known."""
        shape = self.model.outputs[0].shape if getattr(self.model, "outputs", None) else None
        return int(shape[-1]) if shape is not None and shape[-1] is not None else None

    @property
    def source_title(self) -> str:
        """The source in words, for the GUI's model information."""
        return {
            "tlstudio": "tlstudio",
            "keras3": "Keras 3",
            "keras2": "Keras 2 / tf.keras (converted)",
            "teachable-machine": "Teachable Machine",
        }.get(self.source, self.source)


def check_keras_version(version: str | None = None) -> None:
    """Refuse to open ``.keras`` files with a Keras older than :data:`MIN_KERAS_VERSION`.

    Raises
    ------
    ModelFileError
        When the installed Keras is too old to keep ``safe_mode`` safe.
    """
    if version is None:
        import keras

        version = keras.__version__
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    if tuple(parts[:2]) < MIN_KERAS_VERSION:
        need = ".".join(map(str, MIN_KERAS_VERSION))
        raise ModelFileError(
            f"Keras {version} is installed, but opening .keras files safely needs Keras {need} or newer "
            f"(older versions have known ways to run code hidden in a model file). "
            f"Update it with: pip install 'keras>={need}'"
        )


def read_labels(path: str | Path) -> list[str]:
    """Read class names from a ``labels.txt``: one per line, either ``name`` or ``index name``.

    Teachable Machine writes ``0 Class 1``; tlstudio writes the bare name. Indices are stripped only when
    every line starts with its own position (0, 1, 2, ...), so a class really called ``"3 dogs"`` in a
    bare-name file stays as it is.

    Parameters
    ----------
    path : str or Path
        The labels file.

    Returns
    -------
    list of str
        Class names in output order.

    Raises
    ------
    ModelFileError
        When the file cannot be read or holds no names.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read the labels file {path}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ModelFileError(f"the labels file {path} holds no class names.")
    numbered = [re.match(r"^(\d+)[\s:,]+(.+)$", line) for line in lines]
    if all(m is not None and int(m.group(1)) == i for i, m in enumerate(numbered)):
        return [m.group(2).strip() for m in numbered if m is not None]
    return lines


def find_model_file(path: str | Path) -> Path:
    """The model file to open for ``path``: the file itself, or the model inside a folder (run folder).

    Raises
    ------
    ModelFileError
        When nothing openable is there.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("model.keras", "keras_model.h5", "model.h5"):
            if (path / name).is_file():
                return path / name
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
        if len(found) == 1:
            return found[0]
        if not found:
            raise ModelFileError(f"no model file (.keras or .h5) in the folder {path}.")
        raise ModelFileError(
            f"several model files in {path}; choose one of: {', '.join(p.name for p in found)}"
        )
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.suffix.lower() == ".zip":
        return unpack_model_zip(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path.name} is not a model file tlstudio can open (expected .keras, or a Keras 2 .h5 file)."
        )
    return path


def unpack_model_zip(path: Path) -> Path:
    """Unpack a downloaded model archive (Teachable Machine's ``converted_keras.zip``) into the cache.

    Only the one model file and a ``labels.txt`` are taken out, under their bare names, so nothing in
    the archive can write elsewhere. Returns the unpacked model file.

    Raises
    ------
    ModelFileError
        When the archive is damaged, holds no model file or several.
    """
    import hashlib
    import zipfile

    from tlstudio.core.atomic import atomic_path
    from tlstudio.core.paths import cache_dir

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = cache_dir() / "unpacked-models" / digest.hexdigest()[:16]
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and "__MACOSX" not in m.filename]
            models = [m for m in members if Path(m.filename).suffix.lower() in MODEL_SUFFIXES]
            labels = [m for m in members if Path(m.filename).name.lower() == "labels.txt"]
            if not models:
                raise ModelFileError(f"{path.name} holds no model file (.keras or .h5).")
            if len(models) > 1:
                names = ", ".join(m.filename for m in models)
                raise ModelFileError(
                    f"{path.name} holds several model files ({names}); unpack it and choose one."
                )
            wanted = [(models[0], Path(models[0].filename).name)]
            if len(labels) == 1:
                wanted.append((labels[0], "labels.txt"))
            target.mkdir(parents=True, exist_ok=True)
            for member, name in wanted:
                if (target / name).is_file() and (target / name).stat().st_size == member.file_size:
                    continue
                with atomic_path(target / name) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        dst.write(block)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path.name} is damaged or not a zip archive ({exc}).") from exc
    return target / wanted[0][1]


def load_model_file(path: str | Path) -> LoadedModel:
    """Open a model file safely and make it take raw RGB 0-255 images.

    ``.keras`` files (any Keras 3, tlstudio's own) are checked and then loaded with ``safe_mode=True``;
    legacy ``.h5`` files (Keras 2, tf.keras, Teachable Machine) have their config checked and translated
    here, the model is built from the checked config and its weights are read by layer name.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` / ``.h5`` file, a folder holding one (a tlstudio run folder), or a ``.zip`` holding
        one (Teachable Machine's ``converted_keras.zip``), which is unpacked into the cache first.

    Returns
    -------
    LoadedModel

    Raises
    ------
    UnsafeModelError
        When the file contains anything that could run code (the message says what, in plain words).
    ModelFileError
        When the file is missing, damaged, of an unknown kind, or not an image model.
    """
    file = find_model_file(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".keras":
            loaded = _load_keras3(file)
        else:
            from tlstudio.core.models import legacy_h5
            loaded = legacy_h5.load_legacy_h5(file)
    except (UnsafeModelError, ModelFileError) as exc:
        raise type(exc)(f"{file.name}: {exc}") from exc
    if Path(path).suffix.lower() == ".zip":
        loaded.notes.insert(0, f"Opened {file.name} from the archive {Path(path).name}.")
    _attach_labels(loaded)
    return loaded


def _load_keras3(file: Path) -> LoadedModel:
    check_keras_version()
    read_keras_archive(file)  # refuses code before Keras sees the file

    import keras

    try:
        model = keras.saving.load_model(file, safe_mode=True, compile=False)
    except ValueError as exc:
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            raise UnsafeModelError(f"Keras refused this model as unsafe ({_first_line(exc)})") from exc
        raise ModelFileError(f"Keras could not build this model: {_first_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear line
        raise ModelFileError(f"Keras could not load this model: {_first_line(exc)}") from exc
    source = "tlstudio" if _looks_like_tlstudio(file, model) else "keras3"
    notes: list[str] = []
    if source == "keras3":
        notes.append("Keras 3 model: its input is taken to be raw RGB 0-255 (its own preprocessing is kept).")
    size = model_input_size(model, notes)
    return LoadedModel(model=model, source=source, labels=None, input_size=size, notes=notes, path=file)


def _looks_like_tlstudio(file: Path, model: Any) -> bool:
    if (file.parent / "run.json").is_file():
        return True
    names = {layer.name for layer in getattr(model, "layers", [])}
    return {"preprocess", "base", "head"} <= names


def model_input_size(model: Any, notes: list[str]) -> tuple[int, int]:
    """(height, width) of an RGB image model's single input; refuse models that are not that."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelFileError("this model has no defined input, so tlstudio cannot feed it images.")
    if len(inputs) != 1:
        raise ModelFileError(f"this model takes {len(inputs)} inputs; tlstudio works with one image input.")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ModelFileError(
            f"this model's input has shape {shape}; tlstudio needs an image input (H, W, 3)."
        )
    if shape[-1] != 3:
        raise ModelFileError(
            f"this model expects {shape[-1]} colour channels; tlstudio works with RGB images (3)."
        )
    h, w = shape[1], shape[2]
    if h is None or w is None:
        notes.append(
            f"The model accepts any image size; images are resized to {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}."
        )
        return DEFAULT_SIZE
    return int(h), int(w)


def _attach_labels(loaded: LoadedModel) -> None:
    labels_file = loaded.path.parent / "labels.txt"
    outputs = loaded.num_outputs
    if labels_file.is_file():
        labels = read_labels(labels_file)
        if outputs is not None and len(labels) != outputs:
            loaded.notes.append(
                f"labels.txt names {len(labels)} classes but the model has {outputs} outputs; the labels were not used."
            )
        else:
            loaded.labels = labels
            return
    elif loaded.source != "tlstudio":
        loaded.notes.append("No labels.txt beside the model: classes are shown by number.")
    config_file = loaded.path.parent / "config.json"
    if loaded.labels is None and config_file.is_file():
        try:
            classes = json.loads(config_file.read_text(encoding="utf-8")).get("classes")
        except (OSError, ValueError, AttributeError):
            classes = None
        if isinstance(classes, list) and all(isinstance(c, str) for c in classes):
            if outputs is None or len(classes) == outputs:
                loaded.labels = list(classes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# Cutting a classifier down to a feature extractor


_CLASSIFIER_LAYERS = {
    "Dense",
    "Dropout",
    "Activation",
    "Softmax",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "LayerNormalization",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "ActivityRegularization",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "InputLayer",
}
_POOLING_LAYERS = {
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
}


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _body_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _is_classifier_block(layer: Any) -> bool:
    """A Dense stack (possibly a nested Sequential of Dense/Dropout layers): the part that is cut off."""
    if _is_model(layer):
        body = _body_layers(layer)
        return bool(body) and all(_is_classifier_block(sub) for sub in body)
    name = type(layer).__name__
    if name in ("BatchNormalization", "ReLU", "LeakyReLU", "PReLU", "ELU"):
        try:
            rank = len(layer.output.shape)
        except (AttributeError, ValueError):
            return False
        return rank == 2  # after pooling only: part of the classifier
    return name in _CLASSIFIER_LAYERS


def _feature_path(model: Any) -> tuple[str, ...]:
    """Names leading to the layer whose output feeds global pooling (or the final Dense stack)."""
    body = _body_layers(model)
    while body and _is_classifier_block(body[-1]):
        body.pop()
    if not body:
        raise ModelFileError("this model has no layers below its classifier to use as a base.")
    last = body[-1]
    if type(last).__name__ in _POOLING_LAYERS:
        if len(body) < 2:
            raise ModelFileError("this model has nothing before its global pooling to use as a base.")
        # In a Functional model the layer before pooling in list order may not feed it; follow the graph.
        prev = _producer(model, last) if not _is_sequential(model) else body[-2]
        return (prev.name,)
    if _is_model(last):
        return (last.name, *_feature_path(last))
    return (last.name,)


def _is_sequential(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Sequential)


def _producer(model: Any, layer: Any) -> Any:
    """The layer of ``model`` whose output is ``layer``'s (single) input."""
    tensor = layer.input
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise ModelFileError(f"cannot follow the model's graph below layer '{layer.name}'.")
    return history[0]


def _find_path(model: Any, name: str) -> tuple[str, ...] | None:
    for layer in model.layers:
        if layer.name == name:
            return (layer.name,)
    for layer in model.layers:
        if _is_model(layer):
            sub = _find_path(layer, name)
            if sub is not None:
                return (layer.name, *sub)
    return None


def _truncate(model: Any, path: tuple[str, ...]) -> Any:
    """A model from ``model``'s input to the output of the layer at ``path`` (sharing its weights)."""
    import keras

    layer = model.get_layer(path[0])
    inner = _truncate(layer, path[1:]) if len(path) > 1 else None
    if _is_sequential(model):
        x = inp = keras.Input(
            shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype, name="image"
        )
        for sub in _body_layers(model):
            if sub is layer:
                x = inner(x) if inner is not None else sub(x)
                break
            x = sub(x)
        return keras.Model(inp, x, name=f"{model.name}_features")
    if inner is None:
        return keras.Model(
            _single_input(model), _outer_tensor(model, layer, "output"), name=f"{model.name}_features"
        )
    return keras.Model(
        _single_input(model), inner(_outer_tensor(model, layer, "input")), name=f"{model.name}_features"
    )


def _outer_tensor(model: Any, layer: Any, which: str) -> Any:
    """``layer``'s input or output tensor in ``model``'s own graph (a nested model has nodes elsewhere too)."""
    import keras

    for node in reversed(getattr(layer, "_inbound_nodes", [])):
        tensors = node.output_tensors if which == "output" else node.input_tensors
        if len(tensors) != 1:
            continue
        try:
            keras.Model(_single_input(model), tensors[0])
        except ValueError:
            continue
        return tensors[0]
    raise ModelFileError(f"cannot follow the model's graph at layer '{layer.name}'.")


def cut_below_classifier(model: Any, cut_layer: str | None = None) -> Any:
    """A feature extractor: ``model`` up to the layer before global pooling / its final Dense stack.

    The result shares layers and weights with ``model`` and takes the same input (for models opened with
    :func:`load_model_file`, raw RGB 0-255 including any preprocessing layers put in front).

    Parameters
    ----------
    model : keras.Model
        A classifier, e.g. ``load_model_file(path).model``.
    cut_layer : str, optional
        Name of the layer whose output becomes the features (searched in nested models too). By default
        the output of the layer feeding global pooling, or else feeding the final Dense stack.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelFileError
        When ``cut_layer`` does not exist or no feature layer can be found.
    """
    if cut_layer:
        path = _find_path(model, cut_layer)
        if path is None:
            raise ModelFileError(f"the model has no layer named '{cut_layer}'.")
    else:
        path = _feature_path(model)
    return _truncate(model, path)


def _single_input(model: Any) -> Any:
    """The model's input as a bare tensor when it has one (a one-element list would warn at every call)."""
    inputs = model.inputs
    return inputs[0] if len(inputs) == 1 else inputs
