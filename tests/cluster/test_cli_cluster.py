"""``tlstudio train --cluster local:2`` as a user runs it: its own process, its own cluster, nothing left behind.

Runs under pytest-xdist too: the local cluster's processes lead process groups of their own (Ray
signals whole groups when it cleans up, and this test's runner must never be in one of them), and
only this CLI's own cluster is looked for afterwards (another test may run a local cluster meanwhile).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _processes_naming(folder: str) -> dict[int, int]:
    """``{pid: process group}`` of the live processes whose command line names ``folder``."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                if folder.encode() in cmd:
                    found[int(entry)] = os.getpgid(int(entry))
            except OSError:  # gone meanwhile
                continue
    return found


@pytest.fixture
def short_tmp():
    """A private temporary folder, short enough for Ray's socket paths: the CLI's cluster lives under it."""
    folder = tempfile.mkdtemp(prefix="tlcli-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_cli_trains_on_a_local_cluster_and_stops_it(image_folder, tmp_path, short_tmp):
    data = image_folder({"a": 6, "b": 6})
    env = {**os.environ, "PYTHONPATH": str(REPO), "TLSTUDIO_HOME": str(tmp_path / "home"), "TMPDIR": short_tmp}
    cmd = [sys.executable, "-m", "tlstudio", "train", str(data), "--base", "MobileNet", "--alpha", "0.25",
           "--weights", "none", "--input-size", "32", "--batch-size", "8", "--epochs", "1",
           "--cluster", "local:2", "--out", str(tmp_path / "run"), "--json"]
    seen: dict[int, int] = {}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as child:
        try:
            deadline = time.monotonic() + 900
            while child.poll() is None and time.monotonic() < deadline:
                seen.update(_processes_naming(short_tmp + "/tlray-"))  # the cluster's processes while it runs
                time.sleep(0.5)
            out, err = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if child.poll() is None:  # only our own child, by its id
                child.kill()
                child.communicate()
    assert child.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "finished"
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["features"] == {"engine": "ray", "computed": 12, "from_cache": 0}
    assert "small job for a cluster" in err  # 12 photos: allowed, but warned about
    # The cluster ran (raylet and GCS at least), none of its processes in this process's group.
    assert len(seen) >= 2, seen
    assert os.getpgrp() not in set(seen.values()), "the local cluster shared the test runner's process group"
    # And it is gone: its workers notice the raylet's end within moments.
    deadline = time.monotonic() + 20
    while _processes_naming(short_tmp + "/tlray-") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_naming(short_tmp + "/tlray-") == {}, "the CLI's local cluster left processes behind"
