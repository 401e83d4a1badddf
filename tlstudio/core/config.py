"""Training configuration: one dataclass that says everything needed to reproduce a run.

Serialised as JSON with a ``schema_version``. Unknown keys from a newer tlstudio are refused
with a clear message rather than silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import read_json

SCHEMA_VERSION = 1

RESIZE_POLICIES = ("stretch", "crop", "pad")
OPTIMIZERS = ("adam", "sgd", "adamw")
POOLINGS = ("avg", "max")


#: Epoch cap of a head trained to convergence on cached features (early stopping ends it sooner).
AUTO_HEAD_EPOCH_CAP = 300
#: Patience of that head phase: an epoch on cached features costs milliseconds.
AUTO_HEAD_PATIENCE = 10
#: ...and it stops when its validation loss has not improved by this share within the patience.
AUTO_HEAD_RELATIVE_DELTA = 0.01
#: Fine-tuning epochs when blocks are unfrozen but no fine-tuning budget was given.
DEFAULT_FINE_TUNE_EPOCHS = 10
#: Automatic fine-tuning learning rate: this share of the head's.
FINE_TUNE_LR_FACTOR = 0.01


#: The automatic settings and the field each one decides.
_AUTO_FIELDS = {"head_lr": "head_lr", "dropout": "dropout", "epochs": "head_epochs",
                "fine_tune_lr": "fine_tune_lr", "threshold": "threshold"}


class ConfigError(TlstudioError):
    """A configuration file or value that cannot be used."""


@dataclass
class SplitConfig:
    """How a folder that is not pre-split is divided (deterministic, stratified)."""

    val_fraction: float | None = None  # None: chosen from the smallest class (data.holdout.auto_val_fraction)
    test_fraction: float = 0.0
    seed: int = 1337


@dataclass
class AugmentConfig:
    """Keras preprocessing-layer augmentation, applied to training batches only.

    Factors follow the Keras layers (``RandomRotation(factor)`` etc.); 0 switches one off.
    """

    enabled: bool = False
    flip: bool = True
    rotation: float = 0.1
    zoom: float = 0.1
    translation: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.1


@dataclass
class TrainConfig:
    """Everything a training run needs besides the images themselves."""

    data_dir: str = ""
    # Base model
    base: str = "MobileNet"
    alpha: float | None = 0.25  # width multiplier, for bases that have one; None = the base's default
    input_size: int | None = None  # None = the base's default size
    weights: str = "imagenet"  # "imagenet" | "none" | path to a weights file (.h5 / .weights.h5)
    base_model_path: str | None = None  # the user's own model file used as the base instead of `base`
    cut_layer: str | None = None  # where to cut the user's own model (None = below its classifier)
    # Head
    pooling: str = "avg"
    dropout: float = 0.2
    hidden_units: int = 0
    # Data
    resize_policy: str = "stretch"
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Freezing: the layer tree's saved state wins; otherwise `unfreeze_top` blocks for fine-tuning
    layer_state: dict[str, Any] | None = None
    unfreeze_top: int = 2
    # Optimisation. Each "auto_<name>" switch lets the trainer choose the value beside it (and record
    # its choice in run.json): True always, False never, None (the default) while the value is left
    # at its default -- so a value a person sets (CLI flag, app field) is the value used.
    head_epochs: int = 10  # end-to-end head phase; automatic: a head on cached features runs to convergence
    fine_tune_epochs: int = 0  # 0 = no fine-tuning, unless blocks are unfrozen (then DEFAULT_FINE_TUNE_EPOCHS)
    batch_size: int = 32
    head_lr: float = 1e-3
    fine_tune_lr: float = 1e-5
    threshold: float = 0.0  # below this confidence an answer is "not sure"
    auto_head_lr: bool | None = None  # searched on the cached features, scored on validation
    auto_dropout: bool | None = None  # searched with the learning rate
    auto_epochs: bool | None = None  # up to AUTO_HEAD_EPOCH_CAP epochs, early stopping on validation
    auto_fine_tune_lr: bool | None = None  # FINE_TUNE_LR_FACTOR x the head's learning rate
    auto_threshold: bool | None = None  # chosen on the validation images
    optimizer: str = "adam"
    label_smoothing: float = 0.0
    class_weights: str = "auto"  # "auto" (balanced when classes are imbalanced) | "none"
    early_stopping: bool = True
    patience: int = 3
    seed: int = 1337
    use_cache: bool = True  # the embedding cache for frozen-base training
    schema_version: int = SCHEMA_VERSION

    def validate(self) -> None:
        """Raise :class:`ConfigError` with a readable message for a value that cannot work."""
        if self.resize_policy not in RESIZE_POLICIES:
            raise ConfigError(f"resize policy must be one of {', '.join(RESIZE_POLICIES)}, not {self.resize_policy!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        if self.head_epochs < 0 or self.fine_tune_epochs < 0 or self.head_epochs + self.fine_tune_epochs < 1:
            raise ConfigError("at least one epoch of training is needed")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout must be between 0 and 1")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("the 'not sure' threshold must be between 0 and 1")
        if self.head_lr <= 0 or self.fine_tune_lr <= 0:
            raise ConfigError("learning rates must be positive")
        s = self.split
        val = 0.3 if s.val_fraction is None else s.val_fraction  # automatic: at most 0.3
        if not (0.0 < val < 1.0) or not (0.0 <= s.test_fraction < 1.0) or val + s.test_fraction >= 1.0:
            raise ConfigError("validation and test fractions must be between 0 and 1 and leave images for training")

    def is_auto(self, name: str) -> bool:
        """Whether the trainer chooses ``name`` ("head_lr", "dropout", "epochs", "fine_tune_lr", "threshold")."""
        switch = getattr(self, f"auto_{name}")
        if switch is not None:
            return bool(switch)
        field_name = _AUTO_FIELDS[name]
        default = next(f.default for f in fields(self) if f.name == field_name)
        return bool(getattr(self, field_name) == default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError("a training configuration must be a JSON object")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ConfigError(
                f"this configuration was written by a newer tlstudio (schema {version}); please update tlstudio"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        values = dict(data)
        try:
            if isinstance(values.get("split"), dict):
                values["split"] = SplitConfig(**values["split"])
            if isinstance(values.get("augment"), dict):
                values["augment"] = AugmentConfig(**values["augment"])
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_config_file(path))


def read_config_file(path: str | Path) -> Any:
    """The JSON content of a configuration file.

    Parameters
    ----------
    path : str or Path
        The file (``config.json`` of a run, or one a person wrote).

    Raises
    ------
    ConfigError
        When the file is missing or is not readable JSON (a one-line message).
    """
    path = Path(path)
    try:
        return read_json(path)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
