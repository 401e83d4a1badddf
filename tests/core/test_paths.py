"""Where tlstudio keeps things: environment variables win, platform folders otherwise."""

from __future__ import annotations

from pathlib import Path

from tlstudio.core import paths


def test_tlstudio_home_holds_cache_and_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    assert paths.data_home() == tmp_path / "home"
    assert paths.cache_dir() == tmp_path / "home" / "cache"
    assert paths.runs_dir() == tmp_path / "home" / "runs"


def test_tilde_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_HOME", "~/tl")
    monkeypatch.setenv("KERAS_HOME", "~/k")
    assert paths.data_home() == tmp_path / "tl"
    assert paths.keras_home() == tmp_path / "k"


def test_linux_default_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TLSTUDIO_HOME", raising=False)
    monkeypatch.setattr(paths.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.data_home() == tmp_path / "xdg" / "tlstudio"


def test_platform_defaults_without_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TLSTUDIO_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.setattr(paths.sys, "platform", "darwin")
    assert paths.data_home() == tmp_path / "Library" / "Application Support" / "tlstudio"
    monkeypatch.setattr(paths.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert paths.data_home() == tmp_path / "Local" / "tlstudio"
    monkeypatch.setattr(paths.sys, "platform", "linux")
    assert paths.data_home() == tmp_path / ".local" / "share" / "tlstudio"
    assert paths.keras_home() == tmp_path / ".keras"
