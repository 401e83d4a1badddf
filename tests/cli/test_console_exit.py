"""``tlstudio`` as a process: the quick exit after a command still finishes what a normal exit would."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import atexit, sys, tempfile, threading, time
from pathlib import Path
from tlstudio.cli import exit_now

out = Path(sys.argv[1])
def late_write():
    time.sleep(0.3)
    (out / "thread.txt").write_text("written")
threading.Thread(target=late_write).start()  # not a daemon: a normal exit waits for it
atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
tmp = tempfile.TemporaryDirectory(dir=out)  # removed by its finalizer at exit
(out / "tmp.txt").write_text(tmp.name)
print("last line", end="")  # no newline: still flushed
exit_now(3)
"""


def test_exit_now_joins_threads_runs_exit_handlers_and_flushes(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "last line"
    assert (tmp_path / "thread.txt").read_text() == "written"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert not (tmp_path / (tmp_path / "tmp.txt").read_text()).exists()
