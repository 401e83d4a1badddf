"""The catalogue of pre-trained base models and the one place a model for training is built.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.models import weights as _weights

if TYPE_CHECKING:  # pragma: no cover
    import keras

RANDOM_LABEL = "random (no pre-training)"

# ImageNet statistics used by the "caffe" and "torch" preprocessing modes (keras imagenet_utils).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


class ModelError(TlstudioError):
    """A base model, weights file or model configuration that cannot be used."""


@dataclass(frozen=True)
class BaseSpec:
    """One catalogue entry.

    Attributes
    ----------
    name : str
        The Keras application name (``keras.applications.<name>``).
    family : str
        Architecture family, used to group layers into blocks (``"mobilenet"``, ``"resnet"``, ...).
    default_size, min_size : int
        Default and smallest square input size.
    alphas : tuple of float
        Width multipliers with official ImageNet weights (empty when the base has none).
    default_alpha : float | None
        The width multiplier used when none is chosen.
    params : int
        Parameters of the feature extractor (no top) at ``default_alpha``.
    top1 : float | None
        ImageNet top-1 accuracy (%) documented by Keras, for width ``top1_alpha`` where it has one.
    speed : str
        Relative CPU speed: ``"fast"``, ``"medium"`` or ``"slow"``.
    preprocess : str
        Input scaling the base expects: ``"tf"`` (x / 127.5 - 1), ``"caffe"`` (BGR minus the ImageNet
        mean), ``"torch"`` (x / 255, minus mean, over std) or ``"none"`` (the base scales its input itself).
    description : str
        One line for people.
    module : str
        The ``keras.applications`` sub-module that holds its ``preprocess_input``.
    weight_sizes : tuple of int
        Input sizes with their own official weights file (MobileNet, MobileNetV2); others use one file.
    top1_alpha : float | None
        The width the documented top-1 refers to.
    """

    name: str
    family: str
    default_size: int
    min_size: int
    alphas: tuple[float, ...]
    default_alpha: float | None
    params: int
    top1: float | None
    speed: str
    preprocess: str
    description: str
    module: str = ""
    weight_sizes: tuple[int, ...] = ()
    top1_alpha: float | None = None
    ctor_kwargs: tuple[tuple[str, Any], ...] = ()


def _spec(*args: Any, **kwargs: Any) -> BaseSpec:
    return BaseSpec(*args, **kwargs)


# fmt: off
_SPECS = [
    _spec("MobileNet", "mobilenet", 224, 32, (0.25, 0.5, 0.75, 1.0), 0.25, 218_544, 70.4, "fast", "tf",
          "MobileNet v1: tiny and fast; alpha 0.25 ships with tlstudio and works offline.",
          module="mobilenet", weight_sizes=(128, 160, 192, 224), top1_alpha=1.0),
    _spec("MobileNetV2", "mobilenetv2", 224, 32, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), 1.0, 2_257_984, 71.3, "fast", "tf",
          "MobileNet v2: small and fast, a good first choice for phones and laptops.",
          module="mobilenet_v2", weight_sizes=(96, 128, 160, 192, 224), top1_alpha=1.0),
    _spec("MobileNetV3Small", "mobilenetv3", 224, 32, (0.75, 1.0), 1.0, 939_120, 68.1, "fast", "none",
          "MobileNet v3 small: the fastest here; scales its input itself.",
          module="mobilenet_v3", top1_alpha=1.0),
    _spec("MobileNetV3Large", "mobilenetv3", 224, 32, (0.75, 1.0), 1.0, 2_996_352, 75.6, "fast", "none",
          "MobileNet v3 large: fast and more accurate than v2; scales its input itself.",
          module="mobilenet_v3", top1_alpha=1.0),
    _spec("EfficientNetB0", "efficientnet", 224, 32, (), None, 4_049_571, 77.1, "fast", "none",
          "EfficientNet B0: accurate for its size; scales its input itself.", module="efficientnet"),
    _spec("EfficientNetB1", "efficientnet", 240, 32, (), None, 6_575_239, 79.1, "medium", "none",
          "EfficientNet B1.", module="efficientnet"),
    _spec("EfficientNetB2", "efficientnet", 260, 32, (), None, 7_768_569, 80.1, "medium", "none",
          "EfficientNet B2.", module="efficientnet"),
    _spec("EfficientNetB3", "efficientnet", 300, 32, (), None, 10_783_535, 81.6, "slow", "none",
          "EfficientNet B3: accurate, slower on a CPU.", module="efficientnet"),
    _spec("EfficientNetV2B0", "efficientnetv2", 224, 32, (), None, 5_919_312, 78.7, "fast", "none",
          "EfficientNet v2 B0: fast to train, accurate; scales its input itself.", module="efficientnet_v2"),
    _spec("EfficientNetV2B1", "efficientnetv2", 240, 32, (), None, 6_931_124, 79.8, "medium", "none",
          "EfficientNet v2 B1.", module="efficientnet_v2"),
    _spec("ResNet50", "resnet", 224, 32, (), None, 23_587_712, 74.9, "medium", "caffe",
          "ResNet-50: the classic residual network.", module="resnet"),
    _spec("ResNet50V2", "resnet", 224, 32, (), None, 23_564_800, 76.0, "medium", "tf",
          "ResNet-50 v2 (pre-activation).", module="resnet_v2"),
    _spec("VGG16", "vgg", 224, 32, (), None, 14_714_688, 71.3, "slow", "caffe",
          "VGG-16: simple and large; slow on a CPU.", module="vgg16"),
    _spec("InceptionV3", "inception", 299, 75, (), None, 21_802_784, 77.9, "medium", "tf",
          "Inception v3.", module="inception_v3"),
    _spec("Xception", "xception", 299, 71, (), None, 20_861_480, 79.0, "slow", "tf",
          "Xception: accurate, slow on a CPU.", module="xception"),
    _spec("DenseNet121", "densenet", 224, 32, (), None, 7_037_504, 75.0, "medium", "torch",
          "DenseNet-121: compact, densely connected.", module="densenet"),
    _spec("ConvNeXtTiny", "convnext", 224, 32, (), None, 27_820_128, 81.3, "slow", "none",
          "ConvNeXt tiny: modern and accurate; slow on a CPU; scales its input itself.", module="convnext"),
    _spec("NASNetMobile", "nasnet", 224, 32, (), None, 4_269_716, 74.4, "medium", "tf",
          "NASNet mobile: found by architecture search.", module="nasnet"),
]
# fmt: on

CATALOGUE: dict[str, BaseSpec] = {s.name: s for s in _SPECS}
_BY_LOWER = {name.lower(): spec for name, spec in CATALOGUE.items()}


def get_spec(name: str) -> BaseSpec:
    """Look up a catalogue entry by its Keras name, in any case.

    Raises
    ------
    ModelError
        For a name not in the catalogue.
    """
    spec = _BY_LOWER.get(str(name).strip().lower())
    if spec is None:
        raise ModelError(f"unknown base model {name!r}; choose one of: {', '.join(CATALOGUE)}")
    return spec


def resolve_alpha(spec: BaseSpec, alpha: float | None) -> float | None:
    """The width multiplier to build ``spec`` with (None for bases without one).

    ``None`` gives the base's default; a width the base does not have gives the nearest one it
    has (the larger of two equally near), so a MobileNet setting carried over to another base
    still builds. :func:`alpha_note` says when that happened.
    """
    if not spec.alphas:
        return None
    if alpha is None:
        return spec.default_alpha
    a = float(alpha)
    return min(spec.alphas, key=lambda allowed: (round(abs(allowed - a), 9), -allowed))


def alpha_note(spec: BaseSpec, alpha: float | None) -> str | None:
    """A line for people when ``alpha`` is not one of the base's widths (None otherwise)."""
    used = resolve_alpha(spec, alpha)
    if used is None or alpha is None or abs(float(alpha) - used) < 1e-9:
        return None
    return (
        f"alpha {float(alpha):g} is not available for {spec.name}; using {used:g} "
        f"(available: {', '.join(f'{x:g}' for x in spec.alphas)})"
    )


def top1_for(spec: BaseSpec, alpha: float | None = None) -> float | None:
    """The documented ImageNet top-1 for this width, or None where Keras documents none."""
    if spec.top1_alpha is None:
        return spec.top1
    a = resolve_alpha(spec, alpha)
    return spec.top1 if a is not None and abs(a - spec.top1_alpha) < 1e-9 else None


def input_size(config: TrainConfig) -> int:
    """The square input size (pixels) the model for ``config`` takes.

    ``config.input_size`` when set, else the base's default; for the user's own model, the size
    that model takes.
    """
    if config.base_model_path:
        return int(_own_model_size(config))
    spec = get_spec(config.base)
    size = int(config.input_size or spec.default_size)
    if size < spec.min_size:
        raise ModelError(f"{spec.name} needs images of at least {spec.min_size} pixels, not {size}")
    return size


def _weights_choice(config: TrainConfig) -> str:
    w = (config.weights or "none").strip()
    return w.lower() if w.lower() in ("imagenet", "none", "random") else w


# --------------------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightsStatus:
    """What :func:`build_base` will use for weights, worked out without building anything.

    Attributes
    ----------
    kind : str
        ``"bundled"`` (shipped with tlstudio), ``"cached"`` (in the Keras cache), ``"download"``
        (will be downloaded), ``"file"`` (a weights file the user chose), ``"none"`` (random
        initialisation) or ``"own-model"`` (the user's own model is the base).
    file_name : str | None
    path : Path | None
    message : str
        One line for people.
    ok : bool
        False when building will fail (a missing file, an unknown base, ...).
    """

    kind: str
    file_name: str | None
    path: Path | None
    message: str
    ok: bool = True


def weights_status(config: TrainConfig) -> WeightsStatus:
    """Say where the weights for ``config`` will come from, without building or downloading.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    WeightsStatus
    """
    if config.base_model_path:
        own = Path(config.base_model_path).expanduser()
        ok = own.is_file()
        msg = f"your own model {own.name} is the base" if ok else f"model file not found: {own}"
        return WeightsStatus("own-model", own.name, own, msg, ok)
    try:
        spec = get_spec(config.base)
        alpha = resolve_alpha(spec, config.alpha)
        size = input_size(config)
    except ModelError as exc:
        return WeightsStatus("none", None, None, str(exc), False)
    status = _weights_status(config, spec, alpha, size)
    note = alpha_note(spec, config.alpha)
    if note:
        status = WeightsStatus(
            status.kind, status.file_name, status.path, f"{note}. {status.message}", status.ok
        )
    return status


def _weights_status(config: TrainConfig, spec: BaseSpec, alpha: float | None, size: int) -> WeightsStatus:
    choice = _weights_choice(config)
    if choice in ("none", "random"):
        return WeightsStatus("none", None, None, RANDOM_LABEL)
    if choice == "imagenet":
        official = _weights.find_official(spec.name, alpha, size)
        if official is None:
            return WeightsStatus(
                "none", None, None, f"Keras has no ImageNet weights for {_describe(spec, alpha)}", False
            )
        kind, found = _weights.locate(official)
        if kind == "bundled":
            msg = f"ImageNet weights shipped with tlstudio ({official.file_name})"
        elif kind == "cached":
            msg = f"ImageNet weights from the Keras cache ({found})"
        else:
            folder = _weights.cached_path(official.file_name).parent
            msg = f"ImageNet weights will be downloaded once ({official.file_name}) into {folder}"
            if official.fallback is not None:
                fb_kind, _ = _weights.locate(official.fallback)
                if fb_kind != "download":
                    where = "shipped" if fb_kind == "bundled" else "cached"
                    msg += f"; without a network the {where} 224x224 weights are used instead"
        return WeightsStatus(kind, official.file_name, found, msg)
    chosen = Path(choice).expanduser()
    if not chosen.is_file():
        return WeightsStatus("file", chosen.name, chosen, f"weights file not found: {chosen}", False)
    return WeightsStatus("file", chosen.name, chosen, f"weights from {chosen}")


def _describe(spec: BaseSpec, alpha: float | None) -> str:
    return f"{spec.name} alpha {alpha:g}" if alpha is not None else spec.name


def weights_label(config: TrainConfig) -> str:
    """A short label for the weights of ``config`` (``"imagenet"``, ``RANDOM_LABEL``, a file name, ...)."""
    if config.base_model_path:
        return f"own model {Path(config.base_model_path).name}"
    choice = _weights_choice(config)
    if choice in ("none", "random"):
        return RANDOM_LABEL
    if choice == "imagenet":
        return "ImageNet"
    return Path(choice).name


# ------------------------------------------------------------------------------------ building


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
            f"the weights file {path.name} does not fit {_describe(spec, alpha)} without its top ({detail})"
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
    choice = _weights_choice(config)
    weights_path: Path | None = None
    if choice == "imagenet":
        official = _weights.find_official(spec.name, alpha, size)
        if official is None:
            raise ModelError(
                f"Keras has no ImageNet weights for {_describe(spec, alpha)}; choose another width"
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
        raise ModelError(f"cannot build {_describe(spec, alpha)} at {size}x{size}: {exc}") from None
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


def _own_model_size(config: TrainConfig) -> int:
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
    if config.base_model_path or _weights_choice(config) not in ("none", "random"):
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

    from tlstudio.core.models.layer_tree import has_learned_statistics

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
