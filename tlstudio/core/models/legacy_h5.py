"""Keras 2 / tf.keras ``.h5`` model files (Teachable Machine included), opened without trusting them.

Keras's own ``.h5`` loader ignores ``safe_mode`` (CVE-2025-9905), so it is never called on a whole file.
Instead:

1. the ``model_config`` attribute is read with h5py and decoded as plain JSON;
2. :func:`tlstudio.core.models.safety.check_config` refuses Lambda layers, custom or unknown classes,
   modules outside Keras and code-carrying ``function`` fields;
3. the config is translated where Keras 3 rejects Keras 2 settings (``groups`` on DepthwiseConv2D,
   ``batch_input_shape``, dtype policy objects, list ``axis`` values, unknown keyword arguments, ...);
4. the model is built from that checked config, and its weights are read from the ``model_weights``
   group here, by layer name, with every shape checked.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.json_file import loads_json
from tlstudio.core.models.safety import ModelFileError, UnsafeModelError, check_config
from tlstudio.core.safe_files import NotRegularFileError, check_regular

_MODEL_CLASSES = ("Sequential", "Functional", "Model")
_IMAGE_POOLING = ("GlobalAveragePooling2D", "GlobalMaxPooling2D")


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _decode_hook(obj: dict[str, Any]) -> Any:
    """Plain-data forms of the few special objects tf.keras writes into h5 configs."""
    name = obj.get("class_name")
    if name == "__tuple__" and isinstance(obj.get("items"), list):
        return list(obj["items"])
    if name == "TensorShape" and "items" in obj:
        return obj["items"]
    if name in ("TypeSpec", "CompositeTensor"):
        raise UnsafeModelError(
            f"this model contains a TensorFlow {name} description that names arbitrary classes; "
            "tlstudio does not load such models."
        )
    return obj


def check_h5_storage(f: Any) -> None:
    """Refuse HDF5 links and datasets that pull data from other files (a way to read local files).

    Raises
    ------
    UnsafeModelError
        On an external or soft link, or a dataset stored externally or virtually.
    """
    import h5py

    # Visitors return a value to stop early; raising inside h5py's C iteration is not clean.
    def link(name: str, obj: Any) -> str | None:
        return name if isinstance(obj, (h5py.ExternalLink, h5py.SoftLink)) else None

    def dataset(name: str, obj: Any) -> str | None:
        return name if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual) else None

    linked = f.visititems_links(link)
    if linked:
        raise UnsafeModelError(
            f"this model file links to data elsewhere ('{linked}'), which could read other files on this "
            "computer; tlstudio does not load such models."
        )
    stored = f.visititems(dataset)
    if stored:
        raise UnsafeModelError(
            f"this model file stores weights in other files ('{stored}'), which could read other files on "
            "this computer; tlstudio does not load such models."
        )


def read_h5_config(file: Path) -> tuple[dict[str, Any], str]:
    """The decoded ``model_config`` of a legacy h5 file and the Keras version that wrote it.

    Raises
    ------
    ModelFileError
        When the file is not HDF5, holds weights only, or its config is not JSON.
    """
    import h5py

    try:
        check_regular(file)  # HDF5 opens by name: a FIFO would block it
        with h5py.File(file, "r") as f:
            check_h5_storage(f)
            raw = f.attrs.get("model_config")
            version = _text(f.attrs.get("keras_version", "unknown"))
            weights_only = raw is None and ("layer_names" in f.attrs or "model_weights" not in f)
    except NotRegularFileError as exc:
        raise ModelFileError(f"this .h5 file is {exc.reason}.") from None
    except OSError as exc:
        raise ModelFileError(f"this .h5 file is damaged or not an HDF5 model file ({exc}).") from exc
    if raw is None:
        if weights_only:
            raise ModelFileError(
                "this .h5 file holds only weights, not a whole model; save the full model "
                "(model.save('model.h5') or a .keras file) and open that."
            )
        raise ModelFileError("this .h5 file has no model description (model_config).")
    try:
        config = loads_json(_text(raw), source="model_config", object_hook=_decode_hook)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"the model description in this .h5 file is not valid JSON ({exc}).") from exc
    return config, version


# --------------------------------------------------------------------------------------------------
# Recognising Teachable Machine


def _body(entry: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = entry.get("config")
    layers = cfg.get("layers", []) if isinstance(cfg, dict) else cfg if isinstance(cfg, list) else []
    return [layer for layer in layers if isinstance(layer, dict) and layer.get("class_name") != "InputLayer"]


def _all_names(entry: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for layer in _body(entry):
        cfg = layer.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
            names.add(cfg["name"])
        if layer.get("class_name") in _MODEL_CLASSES:
            names |= _all_names(layer)
    return names


def is_teachable_machine(config: dict[str, Any]) -> bool:
    """A Teachable Machine image export: Sequential[features(MobileNet + global pooling), Sequential[Dense...]]."""
    if config.get("class_name") != "Sequential":
        return False
    body = _body(config)
    if len(body) != 2 or any(part.get("class_name") not in _MODEL_CLASSES for part in body):
        return False
    features, head = body
    feature_layers = _body(features)
    if not feature_layers or feature_layers[-1].get("class_name") not in _IMAGE_POOLING:
        return False
    if not any(layer.get("class_name") in _MODEL_CLASSES for layer in feature_layers):
        return False
    names = _all_names(features)
    mobilenet = {"Conv1", "bn_Conv1"} <= names or "conv_pw_13_relu" in names or "conv1" in names
    dense_head = all(layer.get("class_name") in ("Dense", "Dropout", "Activation") for layer in _body(head))
    return mobilenet and dense_head and bool(_body(head))


# --------------------------------------------------------------------------------------------------
# Translating Keras 2 configs


class _Translator:
    def __init__(self) -> None:
        self.dropped: dict[str, set[str]] = {}
        self.changed: set[str] = set()

    def notes(self) -> list[str]:
        out = []
        if self.dropped:
            parts = [f"{cls} {', '.join(sorted(keys))}" for cls, keys in sorted(self.dropped.items())]
            out.append("Settings Keras 3 does not know were dropped: " + "; ".join(parts) + ".")
        if self.changed:
            out.append("Converted: " + ", ".join(sorted(self.changed)) + ".")
        return out

    def model(self, entry: dict[str, Any]) -> None:
        cfg = entry.get("config")
        if isinstance(cfg, list):  # Keras 2.0-2.2 Sequential: a bare list of layers
            entry["config"] = cfg = {"name": "sequential", "layers": cfg}
            self.changed.add("old Sequential layout")
        if not isinstance(cfg, dict):
            raise ModelFileError("the model description in this file is incomplete.")
        # Keras 2 writes a single input/output as a one-element list; Keras 3 would then make the model
        # return a list, which breaks the next layer of an enclosing Sequential.
        for key in ("input_layers", "output_layers"):
            ends = cfg.get(key)
            if isinstance(ends, list) and len(ends) == 1 and isinstance(ends[0], list) and len(ends[0]) == 3:
                cfg[key] = ends[0]
        for layer in cfg.get("layers", []):
            # Without "module", Keras 3 takes its legacy path and looks the class up by name among its own
            # layers (tf.keras files name modules such as tf_keras.src.engine.functional).
            layer.pop("module", None)
            layer.pop("registered_name", None)
            if layer.get("class_name") in _MODEL_CLASSES:
                self.model(layer)
            else:
                self.layer(layer)

    def layer(self, entry: dict[str, Any]) -> None:
        import keras

        class_name = entry["class_name"]
        cfg = entry.get("config")
        if not isinstance(cfg, dict):
            return
        shape = cfg.pop("batch_input_shape", None)
        if class_name == "InputLayer":
            if shape is not None:
                cfg["batch_shape"] = shape
            if not cfg.get("ragged"):
                cfg.pop("ragged", None)
        elif shape is not None:
            cfg["input_shape"] = shape[1:]
        dtype = cfg.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") in ("Policy", "DTypePolicy", "PolicyV1"):
            name = (dtype.get("config") or {}).get("name", "float32")
            cfg["dtype"] = name
            self.changed.add("dtype policies")
        if class_name == "DepthwiseConv2D" and "groups" in cfg:
            cfg.pop("groups")
            self.changed.add("DepthwiseConv2D 'groups'")
        if class_name == "BatchNormalization" and isinstance(cfg.get("axis"), list) and len(cfg["axis"]) == 1:
            cfg["axis"] = int(cfg["axis"][0])
        for value in list(cfg.values()):
            if isinstance(value, dict) and "class_name" in value:
                _keras3_module(value)
                if value.get("class_name") == "VarianceScaling":
                    inner = value.get("config", {})
                    if inner.get("distribution") == "normal":
                        inner["distribution"] = "truncated_normal"
        cls = getattr(keras.layers, class_name, None)
        if isinstance(cls, type):
            accepted = _accepted_kwargs(cls)
            for key in list(cfg):
                if key not in accepted:
                    cfg.pop(key)
                    self.dropped.setdefault(class_name, set()).add(f"'{key}'")


def _keras3_module(entry: dict[str, Any]) -> None:
    """Point an object's module at Keras 3 (tf.keras names the same built-ins under other packages)."""
    module = entry.get("module")
    if isinstance(module, str):
        for prefix in ("tensorflow.python.keras", "tensorflow.keras", "tf_keras"):
            if module == prefix or module.startswith(prefix + "."):
                entry["module"] = "keras" + module[len(prefix) :]
                break
        if entry["module"].startswith("keras.src.") or entry["module"] == "keras.src":
            entry.pop("module")
            entry.pop("registered_name", None)


def _accepted_kwargs(cls: type) -> set[str]:
    names = {"input_shape", "input_dim"}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or not (klass.__module__ or "").startswith("keras"):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names.discard("self")
    return names


# --------------------------------------------------------------------------------------------------
# Building and loading weights


def build_from_config(config: dict[str, Any]) -> Any:
    """Build an uncompiled Keras 3 model from a checked, translated Keras 2 config."""
    try:
        from keras.src.legacy.saving import saving_options, saving_utils
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError as exc:  # pragma: no cover - depends on the Keras version
        raise ModelFileError(f"this Keras version cannot read Keras 2 model descriptions ({exc}).") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras 2 layouts (input_shape on a layer) are expected here
            with saving_options.keras_option_scope(use_legacy_config=True), SafeModeScope(True):
                return saving_utils.model_from_config(config)
    except (UnsafeModelError, ModelFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - any build failure becomes one clear line
        text = str(exc).strip().splitlines()
        raise ModelFileError(
            f"this Keras 2 model could not be rebuilt in Keras 3: {text[0][:300] if text else type(exc).__name__}"
        ) from exc


def _short(weight_name: str) -> str:
    return weight_name.split("/")[-1].split(":")[0]


def _owner(weight_name: str) -> str | None:
    parts = weight_name.split("/")
    return parts[-2] if len(parts) >= 2 else None


def _leaves(layer: Any) -> list[Any]:
    import keras

    if isinstance(layer, keras.Model):
        out = []
        for sub in layer.layers:
            out.extend(_leaves(sub))
        return out
    return [layer] if layer.weights else []


def _assign(variables: list[Any], values: list[np.ndarray], where: str) -> None:
    if len(variables) != len(values):
        raise ModelFileError(
            f"layer '{where}' has {len(variables)} weights but the file holds {len(values)}."
        )
    for var, value in zip(variables, values, strict=True):
        if tuple(var.shape) != tuple(value.shape):
            raise ModelFileError(
                f"weight '{var.path}' of layer '{where}' has shape {tuple(var.shape)} but the file holds "
                f"{tuple(value.shape)}."
            )
    for var, value in zip(variables, values, strict=True):
        var.assign(value.astype(var.dtype))


def _assign_leaf(layer: Any, names: list[str], values: list[np.ndarray]) -> None:
    variables = list(layer.weights)
    by_name = {v.name: v for v in variables}
    shorts = [_short(n) for n in names]
    if len(by_name) == len(variables) == len(names) and set(shorts) == set(by_name):
        _assign([by_name[s] for s in shorts], values, layer.name)
    else:
        _assign(variables, values, layer.name)


def _assign_layer(layer: Any, names: list[str], values: list[np.ndarray]) -> None:
    import keras

    if not isinstance(layer, keras.Model):
        _assign_leaf(layer, names, values)
        return
    groups: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for name, value in zip(names, values, strict=True):
        owner = _owner(name) or ""
        groups.setdefault(owner, ([], []))
        groups[owner][0].append(name)
        groups[owner][1].append(value)
    leaves = _leaves(layer)
    if {leaf.name for leaf in leaves} == set(groups) and len(leaves) == len(groups):
        for leaf in leaves:
            _assign_leaf(leaf, *groups[leaf.name])
        return
    # Names do not line up (renamed variables): fall back to Keras 2's own order, trainable first.
    _assign(list(layer.trainable_weights) + list(layer.non_trainable_weights), values, layer.name)


def load_h5_weights(file: Path, model: Any) -> None:
    """Read a legacy ``model_weights`` group into ``model`` by top-level layer name, checking every shape.

    Raises
    ------
    ModelFileError
        When layers or weights of the file and the model do not correspond.
    """
    import h5py

    top = {layer.name: layer for layer in model.layers}
    filled: set[str] = set()
    try:
        check_regular(file)  # the file may have been swapped for a FIFO since its config was read
    except OSError as exc:
        raise ModelFileError(f"cannot read the weights: {exc}") from None
    with h5py.File(file, "r") as f:
        if "model_weights" not in f:
            raise ModelFileError("this .h5 file holds a model description but no weights.")
        group = f["model_weights"]
        for raw_name in group.attrs.get("layer_names", []):
            name = _text(raw_name)
            layer_group = group[name]
            weight_names = [_text(n) for n in layer_group.attrs.get("weight_names", [])]
            if not weight_names:
                continue
            if name not in top:
                raise ModelFileError(
                    f"the file holds weights for a layer '{name}' that the model does not have."
                )
            values = [np.asarray(layer_group[n]) for n in weight_names]
            _assign_layer(top[name], weight_names, values)
            filled.add(name)
    missing = [name for name, layer in top.items() if layer.weights and name not in filled]
    if missing:
        raise ModelFileError(f"the file holds no weights for layer(s) {', '.join(missing)}.")


def _wrap_teachable_machine(model: Any, size: tuple[int, int]) -> Any:
    """Put Teachable Machine's [-1, 1] scaling in front, as a standard Rescaling layer."""
    import keras

    inp = keras.Input((size[0], size[1], 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inp)
    return keras.Model(inp, model(x), name="teachable_machine")


def load_legacy_h5(file: Path) -> Any:
    """Open a Keras 2 / tf.keras / Teachable Machine ``.h5`` full model safely.

    Parameters
    ----------
    file : Path
        The ``.h5`` file.

    Returns
    -------
    tlstudio.core.models.open_model.LoadedModel
        With ``source`` ``"teachable-machine"`` or ``"keras2"`` (``"keras3"`` for an h5 saved by Keras 3);
        labels are attached by the caller.

    Raises
    ------
    UnsafeModelError
        When the config holds anything that could run code.
    ModelFileError
        When the file cannot be read, translated, built or filled with its weights.
    """
    from tlstudio.core.models.open_model import LoadedModel, model_input_size

    config, version = read_h5_config(file)
    check_config(config, keras3=False)
    teachable = is_teachable_machine(config)
    if config.get("class_name") not in _MODEL_CLASSES:
        raise ModelFileError(f"this .h5 file holds a '{config.get('class_name')}', not a model.")
    translator = _Translator()
    translator.model(config)
    # The translation renamed modules (tf_keras -> keras): check again what Keras 3 will actually resolve.
    check_config(config, keras3=True)
    model = build_from_config(config)
    load_h5_weights(file, model)

    notes: list[str] = []
    keras3_file = version.startswith("3.")
    if not keras3_file:
        notes.append(f"Keras 2 model (saved by Keras {version}) converted to Keras 3.")
    notes.extend(translator.notes())
    size = model_input_size(model, notes)
    if teachable:
        model = _wrap_teachable_machine(model, size)
        notes.append("Teachable Machine export: preprocessing added (scale to [-1, 1]).")
        source = "teachable-machine"
    else:
        notes.append("Its input is taken to be raw RGB 0-255 (the model's own preprocessing is kept).")
        source = "keras3" if keras3_file else "keras2"
    return LoadedModel(model=model, source=source, labels=None, input_size=size, notes=notes, path=file)
