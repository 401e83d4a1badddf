"""Builds the desktop bundle and smoke-tests it. Minutes of work: run with ``pytest -m packaging``."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.packaging
def test_bundle_builds_and_starts():
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run packaging/build.sh")
    result = subprocess.run(["bash", "packaging/build.sh"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "smoke test passed" in result.stdout
    assert (REPO / "dist" / "tlstudio" / "share" / "applications" / "tlstudio.desktop").is_file()
