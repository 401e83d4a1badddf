"""Builds the desktop bundle and smoke-tests it. Minutes of work: run with ``pytest -m packaging``."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.packaging
@pytest.mark.timeout(3600)  # a cold build with TensorFlow takes many minutes on a busy machine
def test_bundle_builds_and_starts():
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run packaging/build.sh")
    result = subprocess.run(["bash", "packaging/build.sh"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "smoke test passed" in result.stdout
    share = REPO / "dist" / "tlstudio" / "share"
    assert (share / "applications" / "tlstudio.desktop").is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "tlstudio.svg").is_file()
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / "tlstudio.png").is_file()
    # the bundle carries tlstudio's sources, so tf.data functions are converted, not run as-is
    assert "AutoGraph could not transform" not in result.stdout + result.stderr
