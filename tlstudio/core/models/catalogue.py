"""The catalogue of pre-trained base models: what each base is, its sizes, and where its weights come from.

Plain data and look-ups, no TensorFlow: the GUI's table, ``tlstudio models`` and the model card
read it. Building a model from a catalogue entry is :mod:`tlstudio.core.models.builder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import TlstudioError
from tlstudio.core.models import weights as _weights

if TYPE_CHECKING:  # pragma: no cover
    pass

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
        from tlstudio.core.models.builder import own_model_size

        return int(own_model_size(config))
    spec = get_spec(config.base)
    size = int(config.input_size or spec.default_size)
    if size < spec.min_size:
        raise ModelError(f"{spec.name} needs images of at least {spec.min_size} pixels, not {size}")
    return size


def weights_choice(config: TrainConfig) -> str:
    """``"imagenet"``, ``"none"``, ``"random"`` or the path of a weights file."""
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
    choice = weights_choice(config)
    if choice in ("none", "random"):
        return WeightsStatus("none", None, None, RANDOM_LABEL)
    if choice == "imagenet":
        official = _weights.find_official(spec.name, alpha, size)
        if official is None:
            return WeightsStatus(
                "none", None, None, f"Keras has no ImageNet weights for {describe_base(spec, alpha)}", False
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


def describe_base(spec: BaseSpec, alpha: float | None) -> str:
    """``"MobileNet alpha 0.25"``, or the bare name for a base without widths."""
    return f"{spec.name} alpha {alpha:g}" if alpha is not None else spec.name


def weights_label(config: TrainConfig) -> str:
    """A short label for the weights of ``config`` (``"imagenet"``, ``RANDOM_LABEL``, a file name, ...)."""
    if config.base_model_path:
        return f"own model {Path(config.base_model_path).name}"
    choice = weights_choice(config)
    if choice in ("none", "random"):
        return RANDOM_LABEL
    if choice == "imagenet":
        return "ImageNet"
    return Path(choice).name


# Building moved to ``builder``; these names keep working from here until every caller imports it.
_BUILDER_NAMES = frozenset(
    {
        "build_base",
        "build_own_base",
        "build_classifier",
        "preprocess_mode",
        "make_preprocess_layer",
        "freeze_batchnorm",
        "feature_model",
        "feature_dim",
    }
)


def __getattr__(name: str) -> Any:
    if name in _BUILDER_NAMES:
        from tlstudio.core.models import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
