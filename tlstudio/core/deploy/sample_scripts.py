"""The short ``predict_<format>.py`` written beside every export.

Each script needs only Pillow, numpy and the format's own runtime: it resizes an image the way
the run was trained (the model itself scales the pixels), runs the exported file and prints the
top classes with their probabilities, reading the class names from ``labels.txt`` beside it. Below the
run's "not sure" threshold it answers "not sure" before the ranked guesses, as the app does.
"""

from __future__ import annotations

from tlstudio.core.run_folder import LABELS_FILE

REQUIREMENTS = {
    "keras": "pip install keras tensorflow pillow numpy",
    "savedmodel": "pip install tensorflow pillow numpy",
    "tflite": "pip install ai-edge-litert pillow numpy   (or tensorflow, which has tf.lite.Interpreter)",
    "onnx": "pip install onnxruntime pillow numpy",
}

_HEADER = '''#!/usr/bin/env python3
"""Classify images with {file} ({title}), exported by tlstudio {version}.

Needs: {requirements}
Usage: python {script} IMAGE [IMAGE ...]
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
MODEL = HERE / "{file}"
SIZE = ({height}, {width})  # height, width of the model input
RESIZE = "{policy}"  # how training resized images: stretch, crop (centre) or pad (black borders)
THRESHOLD = {threshold}  # below this probability of the best class the answer is "not sure" (0: never)
LABELS = [line.strip() for line in (HERE / "{labels}").read_text(encoding="utf-8").splitlines() if line.strip()]


def load_image(path):
    """The image as a float32 batch of one, raw RGB 0-255: the model scales the values itself."""
    img = ImageOps.exif_transpose(Image.open(path))
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    img = img.convert("RGB")
    height, width = SIZE
    if RESIZE == "crop":
        img = ImageOps.fit(img, (width, height), Image.Resampling.BILINEAR)
    elif RESIZE == "pad":
        img = ImageOps.pad(img, (width, height), Image.Resampling.BILINEAR, color=(0, 0, 0))
    else:
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)[None]

'''

_RUNTIMES = {
    "keras": '''
def load_model():
    import keras

    model = keras.saving.load_model(MODEL, compile=False)
    return lambda x: model.predict_on_batch(x)
''',
    "savedmodel": '''
def load_model():
    import tensorflow as tf

    loaded = tf.saved_model.load(str(MODEL))
    return lambda x: loaded.serve(tf.constant(x)).numpy()
''',
    "tflite": '''
def load_model():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(MODEL))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]

    def predict(x):
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return predict
''',
    "onnx": '''
def load_model():
    import onnxruntime as ort

    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]
''',
}

_MAIN = '''

def main(paths):
    if not paths:
        print(__doc__.strip())
        return 2
    predict = load_model()
    for path in paths:
        probs = np.asarray(predict(load_image(path)), dtype=np.float64).reshape(-1)
        best = np.argsort(-probs)[:3]
        ranked = ", ".join(f"{LABELS[i] if i < len(LABELS) else i} {probs[i]:.1%}" for i in best)
        unsure = probs[best[0]] < THRESHOLD
        print(f"{path}: not sure (best guesses: {ranked})" if unsure else f"{path}: {ranked}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

TITLES = {
    "keras": "Keras 3 model",
    "savedmodel": "TensorFlow SavedModel",
    "tflite": "TensorFlow Lite, float32",
    "tflite-f16": "TensorFlow Lite, float16 weights",
    "tflite-int8": "TensorFlow Lite, int8 weights and activations, float input and output",
    "onnx": "ONNX",
    "web": "web page (ONNX Runtime Web)",
}


def runtime_of(fmt: str) -> str:
    """The runtime family of an export format (``tflite-f16`` -> ``tflite``)."""
    return "tflite" if fmt.startswith("tflite") else fmt


def script_name(fmt: str) -> str:
    """``predict_tflite_int8.py`` and so on."""
    return f"predict_{fmt.replace('-', '_')}.py"


def sample_script(
    fmt: str,
    file_name: str,
    input_size: tuple[int, int],
    resize_policy: str,
    version: str,
    threshold: float | None = None,
) -> str:
    """The text of the sample script for an export.

    Parameters
    ----------
    fmt
        One of the export formats.
    file_name
        The exported file's (or SavedModel folder's) name, beside the script.
    input_size
        (height, width) of the model input.
    resize_policy
        ``"stretch"``, ``"crop"`` or ``"pad"``.
    version
        The tlstudio version, for the docstring.
    threshold
        The run's "not sure" threshold; None or 0 writes a script that never answers "not sure".
    """
    runtime = runtime_of(fmt)
    header = _HEADER.format(
        file=file_name,
        title=TITLES.get(fmt, fmt),
        version=version,
        requirements=REQUIREMENTS[runtime],
        script=script_name(fmt),
        height=int(input_size[0]),
        width=int(input_size[1]),
        policy=resize_policy,
        labels=LABELS_FILE,
        threshold=round(float(threshold or 0.0), 4),
    )
    return header + _RUNTIMES[runtime] + _MAIN
