"""Test modules that start Ray inside the test process run in a child pytest of their own.

After ``ray.shutdown()`` the Ray driver leaves native state in its process; later in the same
process, when an unrelated child process was killed (the engine-death test), that state ended the
whole pytest worker with exit code 1 and no traceback. A fresh interpreter per such module keeps
Ray's driver away from every other test. The child runs the module's tests as usual; this process
reports one item for it, failing with the child's report when any of its tests fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules whose tests open a Ray session in the test process.
RAY_IN_PROCESS = {"test_local_cluster.py"}
#: Set in the child, where the module is collected normally.
CHILD = "TLSTUDIO_RAY_TEST_CHILD"
#: Below pytest-timeout's limit for the item that waits for the child.
CHILD_TIMEOUT = 840


def pytest_pycollect_makemodule(module_path: Path, parent):
    if module_path.name in RAY_IN_PROCESS and not os.environ.get(CHILD):
        return RayModule.from_parent(parent, path=module_path)
    return None


class RayModule(pytest.File):
    def collect(self):
        item = RayChildRun.from_parent(self, name="tests_in_their_own_process")
        item.add_marker(pytest.mark.slow)
        yield item


class RayChildRun(pytest.Item):
    def runtest(self) -> None:
        pytest.importorskip("ray")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
        env[CHILD] = "1"
        cmd = [sys.executable, "-m", "pytest", str(self.path), "-p", "no:cacheprovider", "-p", "no:xdist",
               "-q", "-rfEs", "-m", ""]
        try:
            done = subprocess.run(cmd, cwd=self.config.rootpath, env=env, capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
            pytest.fail(f"the child pytest did not finish within {CHILD_TIMEOUT} s:\n{out[-4000:]}", pytrace=False)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        if done.returncode == 0 and re.search(r"\bpassed\b", summary) is None and "skipped" in summary:
            pytest.skip(f"{self.path.name}: {summary}")
        if done.returncode != 0:
            pytest.fail(f"{self.path.name} in a child pytest (exit {done.returncode}):\n"
                        f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}", pytrace=False)

    def reportinfo(self):
        return self.path, None, f"{self.path.name} in its own process"
