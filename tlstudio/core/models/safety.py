"""Checks that a model file holds only standard Keras layers before any Keras loader sees it.

A Keras model file is a description of objects to build. Some of those objects run code that travels
inside the file (a ``Lambda`` layer carries marshalled Python bytecode), and some name classes or
functions that Keras would look up in arbitrary Python modules. Keras's own ``safe_mode`` guards
``.keras`` files but is ignored for legacy ``.h5`` files, so tlstudio reads every config itself first
and refuses anything that is not a plain, registered Keras layer, initializer, regularizer, constraint,
activation or dtype policy.

Everything here works on plain JSON (dicts and lists); Keras is imported only to look names up in its
own registry of built-in objects.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from tlstudio.core.archive import ArchiveError, check_archive
from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import JsonError, loads_json
from tlstudio.core.safe_files import open_regular


class ModelFileError(TlstudioError):
    """A model file cannot be opened: missing, damaged, of an unknown kind, or not a classifier."""


class UnsafeModelError(ModelFileError):
    """A model file was refused because loading it could run code hidden in it."""


REFUSAL_TAIL = "tlstudio does not load such models."

# Built-in Keras layers that run code or load files that are not part of the model's own config.
DANGEROUS_LAYERS = {
    "Lambda": "a Lambda layer, which can run arbitrary code",
    "TFOpLambda": "a TensorFlow-operation layer (TFOpLambda), which calls functions named in the file",
    "SlicingOpLambda": "a TensorFlow-operation layer (SlicingOpLambda), which calls functions named in the file",
    "TensorFlowOpLayer": "a TensorFlow-operation layer, which runs operations described in the file",
    "TFSMLayer": "a TFSMLayer, which loads and runs a separate SavedModel from disk",
    "TorchModuleWrapper": "a TorchModuleWrapper layer, which unpickles a PyTorch module (arbitrary code)",
    "JaxLayer": "a JaxLayer, which wraps an arbitrary Python function",
    "FlaxLayer": "a FlaxLayer, which wraps an arbitrary Python module",
}

# Special entries of the Keras 3 serialization format that hold plain data, not code.
DATA_ENTRIES = {
    "__tensor__",
    "__numpy__",
    "__bytes__",
    "__ellipsis__",
    "__slice__",
    "__keras_tensor__",
    "__tuple__",
}

# Module prefixes a Keras 2 / tf.keras file may name for its own built-in classes.
LEGACY_KERAS_MODULES = ("keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras")

# Files in a .keras archive that carry executable code or pickles.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pkl", ".pickle", ".joblib", ".dill", ".so", ".dll", ".dylib")

# A model description is a few MB at most; a far larger one is a damaged or hostile file.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
#: The model description inside a .keras archive (a Keras name, not one of tlstudio's files).
KERAS_CONFIG = "config.json"

# Public Keras namespaces whose classes and functions may appear in a model config.
_NAMESPACES = (
    "layers",
    "models",
    "initializers",
    "regularizers",
    "constraints",
    "activations",
    "dtype_policies",
    "optimizers",
    "optimizers.schedules",
    "losses",
    "metrics",
    "quantizers",
    "mixed_precision",
)


def refuse(what: str, where: str | None = None) -> UnsafeModelError:
    """An :class:`UnsafeModelError` whose message explains the refusal in plain words."""
    place = f" ({where})" if where else ""
    return UnsafeModelError(f"this model contains {what}{place}; {REFUSAL_TAIL}")


# Namespaces whose plain functions a config may name (activations, losses, metrics), minus helpers.
_FUNCTION_NAMESPACES = ("activations", "losses", "metrics")
_NOT_MODEL_FUNCTIONS = {"get", "serialize", "deserialize"}


@lru_cache(maxsize=1)
def _keras_names() -> tuple[dict[str, Any], set[str]]:
    """Keras's own built-in classes by name, and the names of built-in functions (activations etc.)."""
    import importlib

    import keras

    classes: dict[str, Any] = {"Model": keras.Model, "Sequential": keras.Sequential}
    functions: set[str] = set()
    for ns in _NAMESPACES:
        try:
            mod = importlib.import_module(f"keras.{ns}")
        except ImportError:  # pragma: no cover - depends on the Keras version
            continue
        for name, obj in vars(mod).items():
            if name.startswith("_"):
                continue
            if isinstance(obj, type):
                classes.setdefault(name, obj)
            elif callable(obj) and ns in _FUNCTION_NAMESPACES and name not in _NOT_MODEL_FUNCTIONS:
                functions.add(name)
    try:
        from keras.src.models.functional import Functional

        classes["Functional"] = Functional
    except ImportError:  # pragma: no cover
        pass
    for name in DANGEROUS_LAYERS:
        classes.pop(name, None)
    return classes, functions


def _is_keras_module(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in allowed)


def _registry_class(module: str, class_name: str) -> Any:
    """The object Keras itself would resolve ``module.class_name`` to through its export registry."""
    try:
        from keras.src.api_export import get_symbol_from_name
    except ImportError:  # pragma: no cover
        return None
    return get_symbol_from_name(f"{module}.{class_name}")


def _walk(node: Any, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every dict with a ``class_name`` in a JSON tree, with a readable location (layer name)."""
    if isinstance(node, dict):
        if "class_name" in node:
            cfg = node.get("config")
            name = cfg.get("name") if isinstance(cfg, dict) else None
            here = f"layer '{name}'" if isinstance(name, str) and name else where
            yield node, here
            where = here
        for value in node.values():
            yield from _walk(value, where)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, where)


def _check_function_entry(entry: dict[str, Any], where: str, modules: tuple[str, ...]) -> None:
    module = entry.get("module")
    name = entry.get("config") if isinstance(entry.get("config"), str) else entry.get("registered_name")
    if module not in (None, "builtins") and not _is_keras_module(str(module), modules):
        raise refuse(f"a reference to the Python module '{module}', outside Keras", where)
    _, functions = _keras_names()
    if not isinstance(name, str) or name.split(">")[-1] not in functions or ">" in name:
        raise refuse(f"a custom function '{name}' that is not part of Keras", where)
    # With a Keras module, Keras looks "module.name" up in its export registry: it must be one of the
    # activations, losses or metrics, not some other exported function that happens to share the name.
    if isinstance(module, str) and module != "builtins":
        found = _registry_class(module, name)
        if found is None or id(found) not in _function_ids():
            raise refuse(f"a function '{module}.{name}' that is not an activation, loss or metric", where)


@lru_cache(maxsize=1)
def _function_ids() -> frozenset[int]:
    import importlib

    ids = set()
    for ns in _FUNCTION_NAMESPACES:
        mod = importlib.import_module(f"keras.{ns}")
        ids |= {id(obj) for name, obj in vars(mod).items() if callable(obj) and not isinstance(obj, type)}
    return frozenset(ids)


def _check_class_entry(entry: dict[str, Any], where: str, modules: tuple[str, ...], keras3: bool) -> None:
    class_name = entry.get("class_name")
    if not isinstance(class_name, str):
        raise refuse("an entry without a proper class name", where)
    if class_name in DANGEROUS_LAYERS:
        raise refuse(DANGEROUS_LAYERS[class_name], where)
    registered = entry.get("registered_name")
    if registered not in (None, class_name):
        raise refuse(f"a custom class registered as '{registered}', which is not part of Keras", where)
    module = entry.get("module")
    if keras3 and "module" in entry and module is None:
        raise refuse(f"a custom class '{class_name}' defined outside Keras", where)
    if module is not None and (not isinstance(module, str) or not _is_keras_module(module, modules)):
        raise refuse(f"a reference to the Python module '{module}', outside Keras", where)
    classes, _ = _keras_names()
    obj = classes.get(class_name)
    if obj is None:
        raise refuse(f"a layer or object of type '{class_name}', which is not a standard Keras class", where)
    if not (getattr(obj, "__module__", "") or "").startswith("keras"):
        raise refuse(f"a class '{class_name}' that is not part of Keras", where)
    # Keras 3 resolves module + class name itself: make sure that lands on this very built-in class.
    if (
        keras3
        and isinstance(module, str)
        and module != obj.__module__
        and _registry_class(module, class_name) is not obj
    ):
        raise refuse(f"a class '{class_name}' named through the unexpected module path '{module}'", where)


def check_config(config: Any, *, keras3: bool) -> None:
    """Refuse a model config holding anything but standard Keras objects.

    Parameters
    ----------
    config : dict
        The decoded JSON model config (``config.json`` of a ``.keras`` file, or the ``model_config``
        attribute of a legacy ``.h5`` file).
    keras3 : bool
        True for the Keras 3 format (``module`` must be a ``keras`` module), False for Keras 2 / tf.keras
        (``tf_keras`` and ``tensorflow.keras`` modules are accepted too, as they name the same built-ins).

    Raises
    ------
    UnsafeModelError
        On a Lambda (or other code-running) layer, a custom or unknown class, a custom function, a module
        path outside Keras, or marshalled code in a ``function`` field.
    """
    modules = ("keras",) if keras3 else LEGACY_KERAS_MODULES
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError("the model description in this file is not a Keras model config.")
    # With compile=False Keras ignores the top-level training set-up, so a custom loss there is harmless.
    body = {k: v for k, v in config.items() if k != "compile_config"}
    for entry, where in _walk(body, "the model"):
        class_name = entry.get("class_name")
        if class_name == "__lambda__":
            raise refuse("a Lambda function (marshalled Python code), which can run arbitrary code", where)
        if class_name == "__typespec__":
            raise refuse("a TensorFlow type specification that names arbitrary classes", where)
        if class_name in DATA_ENTRIES:
            continue
        if class_name == "function":
            _check_function_entry(entry, where, modules)
            continue
        _check_class_entry(entry, where, modules, keras3)
        inner = entry.get("config")
        if isinstance(inner, dict):
            _check_code_fields(inner, where)
            _check_activation(inner, where)


def _check_code_fields(cfg: dict[str, Any], where: str) -> None:
    """Keras 2 stores a function as ``[base64 bytecode, defaults, closure]`` with a ``*_type`` field."""
    for key, value in cfg.items():
        if key.endswith("_type") and value in ("lambda", "function"):
            raise refuse("a Python function stored as code, which can run arbitrary code", where)
        if key in ("function", "output_shape") and isinstance(value, (list, dict)) and value:
            raise refuse("a Python function stored as code, which can run arbitrary code", where)


def _check_activation(cfg: dict[str, Any], where: str) -> None:
    act = cfg.get("activation")
    if isinstance(act, str):
        _, functions = _keras_names()
        if act not in functions and act not in ("linear", "softmax_v2"):
            raise refuse(f"a custom activation '{act}' that is not part of Keras", where)


def read_keras_archive(path: Path) -> dict[str, Any]:
    """Open a ``.keras`` zip, refuse embedded code, and return its checked ``config.json``.

    Raises
    ------
    ModelFileError
        When the file is not a readable ``.keras`` archive.
    UnsafeModelError
        When it holds code or pickles, or its config names anything but standard Keras objects.
    """
    # Sizes, member names and links first, from the directory alone: nothing is decompressed
    # before the archive is known not to be a bomb; a FIFO or device is refused without blocking.
    try:
        check_archive(path)
    except ArchiveError as exc:
        if exc.unsafe:
            raise UnsafeModelError(f"{exc}; {REFUSAL_TAIL}") from None
        raise ModelFileError(f"this .keras file cannot be read: {exc}.") from None
    try:
        with open_regular(path) as fh, zipfile.ZipFile(fh) as zf:
            names = zf.namelist()
            for name in names:
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                    raise UnsafeModelError(
                        f"this model file holds a member named '{name}' that points outside the archive; "
                        f"{REFUSAL_TAIL}"
                    )
                lower = name.lower()
                if lower.endswith(CODE_SUFFIXES) or "__pycache__" in lower:
                    raise UnsafeModelError(
                        f"this model file contains embedded Python code or pickled data ('{name}'); {REFUSAL_TAIL}"
                    )
            if KERAS_CONFIG not in names:
                raise ModelFileError("this .keras file has no config.json: it is not a Keras 3 model file.")
            if zf.getinfo(KERAS_CONFIG).file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(
                    "this .keras file's model description is implausibly large; it is damaged."
                )
            raw = zf.read(KERAS_CONFIG)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"this .keras file is damaged or not a Keras 3 model file ({exc}).") from exc
    try:
        config = loads_json(raw, source="config.json")
    except JsonError as exc:
        raise ModelFileError(f"the model description (config.json) is not valid JSON ({exc}).") from exc
    check_config(config, keras3=True)
    return config
