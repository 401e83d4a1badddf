"""Open a model file someone brings: tlstudio's own, any Keras 3 ``.keras``, Keras 2 ``.h5``, Teachable Machine.

Safety first: every model config is read and checked here (:mod:`tlstudio.core.models.safety`) before
Keras builds anything, so a file carrying code (a Lambda layer, a custom class, a module outside Keras)
is refused with a plain explanation and its code never runs.

Whatever the source, the returned model takes raw RGB pixel values 0-255 at ``input_size``; where the
original expected another scale and tlstudio knows it (Teachable Machine: [-1, 1]), standard Keras
layers that do the scaling are put in front of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core import run_folder
from tlstudio.core.models.cut import cut_below_classifier
from tlstudio.core.models.safety import ModelFileError, UnsafeModelError, read_keras_archive
from tlstudio.core.safe_files import NotRegularFileError, check_regular

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
        for name in (run_folder.MODEL_FILE, "keras_model.h5", "model.h5"):
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
    try:
        check_regular(path)  # a FIFO or device given as a model would block or never end
    except NotRegularFileError as exc:
        raise ModelFileError(f"{path.name} is {exc.reason}") from None
    if path.suffix.lower() == ".zip":
        return unpack_model_zip(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path.name} is not a model file tlstudio can open (expected .keras, or a Keras 2 .h5 file)."
        )
    return path


def unpack_model_zip(path: Path) -> Path:
    """Unpack a downloaded model archive (Teachable Machine's ``converted_keras.zip``) into the cache.

    The archive is checked first (:func:`tlstudio.core.archive.check_archive`: size, member names,
    links), so a hostile archive is refused before anything is written; then only the one model file
    and a ``labels.txt`` are taken out, into a cache folder that appears whole or not at all.
    Returns the unpacked model file.

    Raises
    ------
    ModelFileError
        When the archive is damaged, refused, holds no model file or several.
    UnsafeModelError
        When the archive is hostile (a zip bomb, members named outside it, links).
    """
    import hashlib
    import shutil

    from tlstudio.core.archive import ArchiveError, check_archive, extract_members
    from tlstudio.core.paths import cache_dir
    from tlstudio.core.safe_files import open_regular

    try:
        info = check_archive(path)
    except ArchiveError as exc:
        error = UnsafeModelError if exc.unsafe else ModelFileError
        raise error(str(exc)) from None
    members = [m for m in info.members if "__MACOSX" not in m.filename]
    models = [m for m in members if Path(m.filename).suffix.lower() in MODEL_SUFFIXES]
    labels = [m for m in members if Path(m.filename).name.lower() == run_folder.LABELS_FILE]
    if not models:
        raise ModelFileError(f"{path.name} holds no model file (.keras or .h5).")
    if len(models) > 1:
        names = ", ".join(m.filename for m in models)
        raise ModelFileError(f"{path.name} holds several model files ({names}); unpack it and choose one.")
    digest = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = cache_dir() / "unpacked-models" / digest.hexdigest()[:16]
    model_file = target.joinpath(*Path(models[0].filename).parts)
    wanted = [models[0].filename] + ([labels[0].filename] if len(labels) == 1 else [])
    # The folder is named by the archive's hash: a whole one from an earlier open is reused.
    if not (model_file.is_file() and model_file.stat().st_size == models[0].file_size):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            extract_members(path, target, wanted)
        except ArchiveError as exc:
            raise ModelFileError(str(exc)) from None
        if len(labels) == 1:
            unpacked = target.joinpath(*Path(labels[0].filename).parts)
            beside = model_file.parent / run_folder.LABELS_FILE
            if unpacked != beside and not beside.exists():
                shutil.copyfile(unpacked, beside)  # labels are looked for beside the model
    return model_file


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
    if run_folder.is_run(file.parent):
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
    """Class names from ``labels.txt`` beside the model, else from the run folder it sits in."""
    folder = loaded.path.parent
    outputs = loaded.num_outputs
    labels = run_folder.read_labels(folder)
    if labels is not None:
        if outputs is not None and len(labels) != outputs:
            loaded.notes.append(
                f"{run_folder.LABELS_FILE} names {len(labels)} classes but the model has {outputs} outputs; "
                "the labels were not used."
            )
        else:
            loaded.labels = labels
            return
    elif loaded.source != "tlstudio":
        loaded.notes.append(f"No {run_folder.LABELS_FILE} beside the model: classes are shown by number.")
    if run_folder.is_run(folder):
        try:
            classes = run_folder.read_run_config(folder)[1]
        except run_folder.RunError:
            classes = []
        if classes and (outputs is None or len(classes) == outputs):
            loaded.labels = list(classes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
