"""Import TensorFlow and Keras on a worker thread, so the window is on screen before they load."""

from __future__ import annotations

import sys
import time

from tlstudio.workers.base import Worker


def tensorflow_loaded() -> bool:
    """True when TensorFlow and Keras are already imported in this process."""
    return "tensorflow" in sys.modules and "keras" in sys.modules


class TFLoader(Worker):
    """Imports ``tensorflow`` and ``keras``; succeeds with a short description such as ``"TensorFlow 2.21"``.

    Importing cannot be interrupted, so cancelling only means the result is ignored; a window that
    closes meanwhile waits for the import to end (a few seconds at most).
    """

    def work(self) -> str:
        start = time.perf_counter()
        self.message.emit("Loading TensorFlow...")
        import keras  # noqa: F401
        import tensorflow as tf

        seconds = time.perf_counter() - start
        return f"TensorFlow {tf.__version__} ready ({seconds:.1f} s)"

