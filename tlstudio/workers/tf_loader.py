"""Import TensorFlow and Keras on a worker thread, so the window is on screen before they load."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def tensorflow_loaded() -> bool:
    """True when TensorFlow and Keras are already imported in this process."""
    return "tensorflow" in sys.modules and "keras" in sys.modules


def load_tensorflow(*, message: Callable[[str], None] | None = None) -> str:
    """Import ``tensorflow`` and ``keras``; return a short description such as ``"TensorFlow 2.21 ready (4.1 s)"``.

    Run it with :func:`~tlstudio.workers.base.create_worker`. Importing cannot be interrupted, so a window
    that closes meanwhile waits for the import to end (a few seconds at most).
    """
    start = time.perf_counter()
    if message is not None:
        message("Loading TensorFlow...")
    import keras  # noqa: F401
    import tensorflow as tf

    return f"TensorFlow {tf.__version__} ready ({time.perf_counter() - start:.1f} s)"
