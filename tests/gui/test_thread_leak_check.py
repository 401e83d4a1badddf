"""The QThread leak check of tests/conftest.py fails a leaking test and says where the thread was started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def test_a_leaked_thread_fails_the_test_naming_where_it_started(tmp_path):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            """
            import time

            from PySide6.QtCore import QThread


            class Sleeper(QThread):
                def __init__(self, seconds):
                    super().__init__()
                    self.seconds = seconds

                def run(self):
                    time.sleep(self.seconds)


            def start_helper(seconds):
                thread = Sleeper(seconds)
                thread.setObjectName("sleeper")
                thread.start()
                return thread


            def test_leaks(qtbot):
                test_leaks.thread = start_helper(6)  # outlives the check's 5 s wait, then ends


            def test_clean(qtbot):
                thread = start_helper(0.1)
                thread.wait()
            """
        ),
        encoding="utf-8",
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 QThread(s) still running after the test, started at:" in out
    assert "sleeper:" in out
    assert "test_leak.py:19 in start_helper" in out and "test_leak.py:24 in test_leaks" in out
    assert "_pytest" not in out.split("started at:")[1].split("=====")[0]  # only the test's own frames
    assert "ERROR at teardown of test_leaks" in out and "2 passed, 1 error" in out  # only it fails
