"""Cluster addresses, the one-line install hint without Ray, what workers are given. Fast: no cluster starts."""

from __future__ import annotations

import os
import sys

import pytest

from tlstudio.cli import main
from tlstudio.cluster import INSTALL_HINT, ClusterError, require_ray
from tlstudio.cluster.session import parse_address, runtime_env


@pytest.mark.parametrize(
    ("text", "local"),
    [("local:2", 2), ("local:16", 16), ("auto", 0), ("ray://head.example:10001", 0), ("10.0.0.5:6379", 0)],
)
def test_addresses_ray_understands_are_accepted(text, local):
    address = parse_address(text)
    assert address.local_workers == local and address.is_local == (local > 0) and address.text == text


@pytest.mark.parametrize("text", ["", "local:0", "local:x", "http://head:8265", "ray://nohost", "my cluster"])
def test_bad_addresses_get_one_line(text):
    with pytest.raises(ClusterError) as info:
        parse_address(text)
    assert "\n" not in str(info.value)


def test_without_ray_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ClusterError, match=r'pip install "tlstudio\[cluster\]"'):
        require_ray()


def test_the_cli_without_ray_prints_the_install_line_and_trains_nothing(monkeypatch, image_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    data = image_folder({"a": 3, "b": 3})
    code = main(["train", str(data), "--weights", "none", "--cluster", "local:2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].endswith(INSTALL_HINT)
    assert not (tmp_path / "run").exists()


def test_workers_get_keras_3_and_tlstudio(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    local = runtime_env(parse_address("local:2"))
    assert local["env_vars"]["TF_USE_LEGACY_KERAS"] == "0"  # Ray Train would ask for Keras 2
    assert local["env_vars"]["TF_ENABLE_ONEDNN_OPTS"] == "0"  # same kernels as the driver: same features
    assert "PYTHONPATH" in local["env_vars"] and "py_modules" not in local
    remote = runtime_env(parse_address("ray://head:10001"))
    assert remote["py_modules"][0].endswith("tlstudio")  # the driver's own version runs on the workers
    monkeypatch.setenv("TLSTUDIO_RAY_SHIP_CODE", "0")
    assert "py_modules" not in runtime_env(parse_address("auto"))


def test_processes_ray_starts_for_a_local_cluster_lead_their_own_process_group():
    """Ray's pre-exec hook, as its process starter calls it in the child: inside the block the child
    leads a group of its own (and still fate-shares with us); outside it, Ray's hook is untouched."""
    import subprocess

    pytest.importorskip("ray")
    from ray._private import utils as ray_utils

    from tlstudio.cluster.session import _own_process_groups

    original = ray_utils.set_kill_on_parent_death_linux
    with _own_process_groups():
        child = subprocess.Popen(["sleep", "30"], preexec_fn=lambda: ray_utils.set_kill_on_parent_death_linux())
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgrp()
        assert ray_utils.set_kill_on_parent_death_linux is original
    finally:
        child.kill()  # our own child, by its id
        child.wait()
