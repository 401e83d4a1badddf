"""A feature cache that cannot be written is bypassed, and the user is told once (promise 4 of issue 18).

The warning is a ``LogMessage(level="warning")`` of the run: the CLI prints it, the app's training log
shows it. Faults injected for real: the cache folder's place is taken by a file (it cannot be created,
even by root), or the cache folder is read-only (skipped where permissions do not bind, as for root).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tlstudio.core import events as ev
from tlstudio.core import paths
from tlstudio.core.config import TrainConfig
from tlstudio.core.train.trainer import train

TINY = ["--base", "MobileNet", "--alpha", "0.25", "--weights", "none", "--input-size", "32", "--batch-size", "4"]


def _cache_in_place_of_a_file(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "cache").write_text("a file where the cache folder would go")


def _read_only_cache(home):
    cache = home / "cache"
    cache.mkdir(parents=True)
    cache.chmod(0o500)
    if os.access(cache, os.W_OK):
        cache.chmod(0o700)
        pytest.skip("permissions do not bind here (running as root)")


@pytest.mark.parametrize("fault", [_cache_in_place_of_a_file, _read_only_cache])
def test_a_bypassed_cache_is_one_warning_in_the_runs_log_and_the_run_finishes(fault, image_folder, tmp_path,
                                                                              monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TLSTUDIO_HOME", str(home))
    fault(home)
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    config = TrainConfig(data_dir=str(data), base="MobileNet", alpha=0.25, weights="none", input_size=32,
                         head_epochs=2, fine_tune_epochs=0, batch_size=4, auto_epochs=False)
    events: list[ev.Event] = []
    try:
        result = train(config, tmp_path / "run", emit=events.append)
    finally:
        (home / "cache").chmod(0o700) if (home / "cache").is_dir() else None
    warnings = [e for e in events if isinstance(e, ev.LogMessage) and "it is bypassed" in e.text]
    assert len(warnings) == 1 and warnings[0].level == "warning"
    assert str(paths.cache_dir()) in warnings[0].text  # says where
    assert result.status == "finished" and result.cache_computed > 0 and result.cache_hits == 0
    assert any("it is bypassed" in w for w in result.warnings)


def test_the_cli_prints_the_bypass_warning_once(image_folder, tmp_path):
    home = tmp_path / "home"
    _cache_in_place_of_a_file(home)
    data = image_folder({"cats": 6, "dogs": 6}, size=(32, 32))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="3", TLSTUDIO_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "tlstudio", "train", str(data), *TINY, "--epochs", "2",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = " ".join(proc.stderr.split())  # the terminal display wraps long lines
    assert said.count("it is bypassed") == 1 and said.count("cannot be written") == 1, proc.stderr
    assert "the feature cache in" in said and "Traceback" not in proc.stderr
