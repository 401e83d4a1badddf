"""Machine check: the window's process never loads TensorFlow, however the app is used; the engine does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("engine_app_driver.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_build_train_evaluate_predict_and_export_without_tensorflow_in_the_window(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    proc = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=1500, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # Every step really ran, in the engine...
    assert report["layers"] > 50 and report["train_status"] == "finished"
    assert sum(map(sum, report["confusion"])) > 0
    assert report["predictions"] == ["red", "blue"]
    assert report["export"] == "finished" and report["exported"]
    # ...and none of it loaded TensorFlow here.
    assert report["tensorflow"] is False and report["keras"] is False
    assert report["libtensorflow"] is False
    assert report["engine_left_running"] is False
