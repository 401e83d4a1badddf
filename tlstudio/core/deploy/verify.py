"""Run an exported model with its own runtime, in a process of its own.

``python -m tlstudio.core.deploy.verify FORMAT MODEL INPUTS.npy OUTPUTS.npy`` loads ``MODEL`` the way a
user of that format would (Keras, TensorFlow SavedModel, the TFLite interpreter, onnxruntime),
runs it on the float32 batch in ``INPUTS.npy`` (raw RGB 0-255, already resized) and saves the raw
outputs. :func:`tlstudio.core.deploy.export.verify_export` starts it, so nothing of the exporting
process (its loaded model, its TensorFlow graph) can make a broken file look good.

This module imports nothing of tlstudio's, and only the runtime of the format checked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

RUNTIMES = {
    "keras": "keras",
    "savedmodel": "tensorflow",
    "tflite": "tflite",
    "tflite-f16": "tflite",
    "tflite-int8": "tflite",
    "onnx": "onnxruntime",
}


def _first(out: Any) -> np.ndarray:
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out)


def keras_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import keras

    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    return lambda x: _first(model.predict_on_batch(x))


def savedmodel_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)

    def run(x: np.ndarray) -> np.ndarray:
        # ``loaded`` must stay referenced: its variables die with it.
        fn = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        return _first(fn(tf.constant(x, dtype=tf.float32)))

    return run


def tflite_interpreter(path: str) -> Any:
    """The LiteRT interpreter when ``ai_edge_litert`` is installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)
    return Interpreter(model_path=path)


def tflite_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    interp = tflite_interpreter(path)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        rows = []
        for image in x:
            data = image[None]
            if inp["dtype"] in (np.int8, np.uint8):  # a fully quantised input
                scale, zero = inp["quantization"]
                data = np.clip(np.round(data / scale + zero), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
            interp.set_tensor(inp["index"], data.astype(inp["dtype"]))
            interp.invoke()
            y = interp.get_tensor(out["index"]).astype(np.float32)
            if out["dtype"] in (np.int8, np.uint8):
                scale, zero = out["quantization"]
                y = (y - zero) * scale
            rows.append(y.reshape(-1))
        return np.stack(rows)

    return run


def onnx_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: _first(session.run(None, {name: x.astype(np.float32)}))


RUNNERS: dict[str, Callable[[str], Callable[[np.ndarray], np.ndarray]]] = {
    "keras": keras_runner,
    "savedmodel": savedmodel_runner,
    "tflite": tflite_runner,
    "tflite-f16": tflite_runner,
    "tflite-int8": tflite_runner,
    "onnx": onnx_runner,
}


def run_exported(fmt: str, model_path: str, batch: np.ndarray) -> np.ndarray:
    """Outputs of the exported model ``model_path`` (format ``fmt``) for ``batch``."""
    runner = RUNNERS[fmt](model_path)
    return np.asarray(runner(np.asarray(batch, dtype=np.float32)), dtype=np.float32).reshape(len(batch), -1)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4 or args[0] not in RUNNERS:
        print("usage: python -m tlstudio.core.deploy.verify FORMAT MODEL INPUTS.npy OUTPUTS.npy", file=sys.stderr)
        return 2
    fmt, model_path, inputs, outputs = args
    try:
        result = run_exported(fmt, model_path, np.load(inputs))
    except Exception as exc:  # noqa: BLE001 - the parent reports the last line
        text = str(exc).strip().splitlines()
        print(f"{type(exc).__name__}: {text[0] if text else ''}", file=sys.stderr)
        return 1
    np.save(outputs, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
