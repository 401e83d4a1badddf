"""Building a model for training: a catalogue base (or the user's own model) plus preprocessing and head.

Every base is a ``keras.applications`` feature extractor (no top, no pooling). The whole
classifier is one Keras model made of standard layers only, so it loads with
``safe_mode=True`` anywhere and exports to TFLite and ONNX:

``Input "image"`` (raw RGB 0-255, float32) -> ``"preprocess"`` (the base's own input scaling,
frozen) -> nested model ``"base"`` called with ``training=False`` -> ``"pool"`` -> nested
Sequential ``"head"`` (dropout, optional hidden Dense, softmax ``"predictions"``).

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.models import weights as _weights
from tlstudio.core.models.catalogue import (
    CAFFE_MEAN_BGR,
    TORCH_MEAN,
    TORCH_STD,
    BaseSpec,
    ModelError,
    describe_base,
    get_spec,
    input_size,
    resolve_alpha,
    weights_choice,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras


def _keras_ctor(spec: BaseSpec) -> Callable[..., Any]:
    import keras

    return getattr(keras.applications, spec.name)


def _load_weights_file(model: keras.Model, path: Path, spec: BaseSpec, alpha: float | None) -> None:
    name = path.name.lower()
    if name.endswith(".keras"):
        raise ModelError(
            f"{path.name} is a whole model, not a weights file; use it as your own base model instead"
        )
    if not (name.endswith(".h5") or name.endswith(".hdf5")):
        raise ModelError(f"{path.name} is not a weights file (.h5 or .weights.h5)")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns per skipped layer before it raises
            model.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError / OSError / KeyError for a mismatch
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # "A total of N objects could not be loaded. Example error message for object ...:" + the reason
        detail = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines[0] if lines else "")
        detail = detail or type(exc).__name__
        if len(detail) > 240:
            detail = detail[:240] + "..."
        raise ModelError(
            f"the weights file {path.name} does not fit {describe_base(spec, alpha)} without its top ({detail})"
        ) from None


def build_base(
    config: TrainConfig, *, progress: Callable[[int, int], None] | None = None, cancel=None
) -> keras.Model:
    """Build the feature extractor for ``config``: no top, no pooling, named ``"base"``.

    Parameters
    ----------
    config : TrainConfig
        ``base``, ``alpha``, ``input_size``, ``weights``, ``base_model_path`` and ``cut_layer`` are used.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` while official weights download.
    cancel : threading.Event, optional
        Stops a download.

    Returns
    -------
    keras.Model
        Takes the *preprocessed* image (see :func:`make_preprocess_layer`), outputs a 4-D feature map.

    Raises
    ------
    ModelError
        Unknown base, unavailable or mismatched weights, an unusable own model.
    """
    if config.base_model_path:
        return build_own_base(config)
    spec = get_spec(config.base)
    alpha = resolve_alpha(spec, config.alpha)
    size = input_size(config)
    choice = weights_choice(config)
    weights_path: Path | None = None
    if choice == "imagenet":
        official = _weights.find_official(spec.name, alpha, size)
        if official is None:
            raise ModelError(
                f"Keras has no ImageNet weights for {describe_base(spec, alpha)}; choose another width"
            )
        try:
            _, weights_path = _weights.resolve_official(official, progress=progress, cancel=cancel)
        except _weights.WeightsError as exc:
            raise ModelError(str(exc)) from None
    elif choice not in ("none", "random"):
        weights_path = Path(choice).expanduser()
        if not weights_path.is_file():
            raise ModelError(f"weights file not found: {weights_path}")

    ctor = _keras_ctor(spec)
    kwargs: dict[str, Any] = dict(include_top=False, weights=None, input_shape=(size, size, 3))
    if alpha is not None:
        kwargs["alpha"] = alpha
    kwargs.update(dict(spec.ctor_kwargs))
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ctor(**kwargs)
    except ValueError as exc:
        raise ModelError(f"cannot build {describe_base(spec, alpha)} at {size}x{size}: {exc}") from None
    if weights_path is not None:
        _load_weights_file(model, weights_path, spec, alpha)
    # Some constructors derive their structure from ``name``, so the model is renamed by wrapping.
    import keras

    return keras.Model(model.inputs[0], model.outputs[0], name="base")


# ---------------------------------------------------------------------------------- own model


def _load_own_model(path: Path):
    """Load the user's model file through the safe loader; returns the ``LoadedModel``."""
    from tlstudio.core.models import open_model as model_io
    try:
        return model_io.load_model_file(path)
    except TlstudioError as exc:
        raise ModelError(str(exc)) from None


def own_model_size(config: TrainConfig) -> int:
    """Input size of the classifier built on the user's own model (its static size, else the chosen one)."""
    path = Path(str(config.base_model_path)).expanduser()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise ModelError(f"model file not found: {path}") from None
    static, default = _own_model_input(str(path), stamp)
    return int(static or config.input_size or default)


@functools.lru_cache(maxsize=8)
def _own_model_input(path: str, stamp: int) -> tuple[int | None, int]:
    """(static input size or None, the loader's default size) of a model file, cached by modification time."""
    loaded = _load_own_model(Path(path))
    shape = tuple(loaded.model.inputs[0].shape)
    return (int(shape[1]) if shape[1] is not None else None), int(loaded.input_size[0])


def build_own_base(config: TrainConfig) -> keras.Model:
    """The user's own model, cut below its classifier (or at ``config.cut_layer``), named ``"base"``.

    The file is opened by :func:`tlstudio.core.models.open_model.load_model_file` (safe mode; a model that
    carries code is refused). Its own preprocessing stays inside it, so the base takes raw RGB
    0-255 and the classifier built on it uses an identity ``"preprocess"`` layer.
    """
    import keras

    from tlstudio.core.models import open_model as model_io
    path = Path(str(config.base_model_path)).expanduser()
    loaded = _load_own_model(path)
    try:
        cut = model_io.cut_below_classifier(loaded.model, config.cut_layer or None)
    except TlstudioError as exc:
        raise ModelError(f"{path.name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a graph Keras cannot cut becomes one clear line
        where = config.cut_layer or "its classifier"
        raise ModelError(
            f"cannot cut {path.name} at {where}: {str(exc).splitlines()[0] if str(exc) else exc}"
        ) from None
    if len(cut.outputs[0].shape) not in (2, 4):
        raise ModelError(
            f"the layer {config.cut_layer or 'chosen'} of {path.name} does not give image features"
        )
    return keras.Model(cut.inputs[0], cut.outputs[0], name="base")


# --------------------------------------------------------------------------------- classifier


def preprocess_mode(config: TrainConfig) -> str:
    """The preprocessing mode of the model for ``config`` (``"none"`` for the user's own model)."""
    if config.base_model_path:
        return "none"
    return get_spec(config.base).preprocess


def make_preprocess_layer(mode: str):
    """A standard Keras layer named ``"preprocess"`` that scales raw RGB 0-255 the way a base expects.

    ``"tf"`` and ``"torch"`` are a ``Rescaling`` (per-channel for ``"torch"``); ``"caffe"`` is a
    frozen 1x1 ``Conv2D`` that swaps RGB to BGR and subtracts the ImageNet mean; ``"none"`` is an
    ``Identity``. None of them has trainable weights.
    """
    import keras
    import numpy as np

    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")
    if mode == "torch":
        scale = [1.0 / (255.0 * s) for s in TORCH_STD]
        offset = [-m / s for m, s in zip(TORCH_MEAN, TORCH_STD, strict=True)]
        return keras.layers.Rescaling(scale, offset=offset, name="preprocess")
    if mode == "caffe":
        kernel = np.zeros((1, 1, 3, 3), dtype="float32")
        for out_channel in range(3):
            kernel[0, 0, 2 - out_channel, out_channel] = 1.0  # output BGR from input RGB
        bias = -np.asarray(CAFFE_MEAN_BGR, dtype="float32")
        layer = keras.layers.Conv2D(
            3,
            1,
            name="preprocess",
            kernel_initializer=keras.initializers.Constant(kernel),
            bias_initializer=keras.initializers.Constant(bias),
            trainable=False,
        )
        return layer
    if mode == "none":
        return keras.layers.Identity(name="preprocess")
    raise ModelError(f"unknown preprocessing mode {mode!r}")


def build_classifier(
    config: TrainConfig, num_classes: int, *, base=None, progress=None, cancel=None
) -> keras.Model:
    """Build the whole trainable classifier for ``config``.

    Parameters
    ----------
    config : TrainConfig
    num_classes : int
        At least 2; the output is a softmax over them.
    base : keras.Model, optional
        A base from :func:`build_base` (built here when not given).

    Returns
    -------
    keras.Model
        ``Input "image"`` (S, S, 3) float32 raw RGB 0-255 -> ``"preprocess"`` -> ``"base"``
        (called with ``training=False``) -> ``"pool"`` -> ``"head"``. Not compiled.
    """
    import keras

    from tlstudio.core.models.head import build_head

    if num_classes < 2:
        raise ModelError("a classifier needs at least 2 classes")
    if base is None:
        base = build_base(config, progress=progress, cancel=cancel)
    base_shape = tuple(base.inputs[0].shape[1:3])
    if all(base_shape):
        if base_shape[0] != base_shape[1]:
            raise ModelError(
                f"the base takes {base_shape[0]}x{base_shape[1]} images; tlstudio needs square ones"
            )
        size = int(base_shape[0])
    else:
        size = input_size(config)
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = make_preprocess_layer(preprocess_mode(config))(inputs)
    x = base(x, training=False)
    if config.base_model_path or weights_choice(config) not in ("none", "random"):
        freeze_batchnorm(base)  # pre-trained statistics are kept; a random base's BatchNorm must train
    rank = len(base.outputs[0].shape)
    if rank == 4:
        pool = (
            keras.layers.GlobalMaxPooling2D(name="pool")
            if config.pooling == "max"
            else keras.layers.GlobalAveragePooling2D(name="pool")
        )
    elif rank == 2:
        pool = keras.layers.Identity(name="pool")
    else:
        raise ModelError(
            f"the base's output has {rank - 1} dimensions per image; 3 (a feature map) or 1 are needed"
        )
    x = pool(x)
    feature_dim = int(base.outputs[0].shape[-1])
    head = build_head(feature_dim, config, num_classes)
    outputs = head(x)
    model = keras.Model(inputs, outputs, name="classifier")
    return model


def freeze_batchnorm(model) -> None:
    """Freeze every BatchNormalization layer in ``model`` that holds learned statistics (nested models included).

    Keras 3 passes ``training=True`` from ``fit`` into nested models even when they were called
    with ``training=False``; a frozen BatchNormalization still normalises with its moving
    statistics, so freezing keeps the base's normalisation in inference mode while fine-tuning.
    """
    import keras

    from tlstudio.core.models.layer_nodes import has_learned_statistics

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            if has_learned_statistics(layer):
                layer.trainable = False
        elif isinstance(layer, keras.Model):
            freeze_batchnorm(layer)


def feature_model(classifier) -> keras.Model:
    """The part of a classifier from its input to the pooled features (what the head sees).

    Used to compute the cached embeddings for training the head alone.
    """
    import keras

    return keras.Model(classifier.inputs[0], classifier.get_layer("pool").output, name="features")


def feature_dim(classifier) -> int:
    """Length of the pooled feature vector of a classifier."""
    return int(classifier.get_layer("pool").output.shape[-1])
