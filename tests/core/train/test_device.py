"""The training device setup: Keras loads without pandas, which stays importable afterwards."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

PROBE = """
import sys
from tlstudio.core.train.device import load_keras
load_keras()
print("keras" in sys.modules, "pandas" in sys.modules)
from keras.src.trainers.data_adapters import array_slicing
print(array_slicing.pandas is None)
import pandas
print(pandas.DataFrame.__name__)
"""


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_keras_loads_without_pandas_which_stays_importable():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "True", "DataFrame"]

