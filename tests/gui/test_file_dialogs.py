"""File dialogs start where the person was last, else in Documents, never inside the installation."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from tlstudio.gui import file_dialogs, settings


@pytest.fixture
def asked(monkeypatch):
    """Records the start path each dialog was opened with and answers with a queued path."""
    calls: list[str] = []
    answers: list[str] = []

    def fake(_parent, _title, start, *_rest, **_kw):
        calls.append(start)
        return (answers.pop(0) if answers else "", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda p, t, start, *a, **k: fake(p, t, start)[0]))
    return calls, answers


def test_first_dialog_starts_in_documents_then_in_the_last_folder_used(asked, tmp_path, monkeypatch):
    calls, answers = asked
    docs = tmp_path / "Documents"
    docs.mkdir()
    monkeypatch.setattr(file_dialogs, "documents_folder", lambda: docs)
    chosen = tmp_path / "work" / "model.keras"
    chosen.parent.mkdir()
    chosen.write_bytes(b"x")
    answers.append(str(chosen))
    assert file_dialogs.open_file(None, "Open", file_dialogs.MODEL_FILTER) == str(chosen)
    assert calls[-1] == str(docs)
    file_dialogs.open_file(None, "Open", file_dialogs.MODEL_FILTER)
    assert calls[-1] == str(chosen.parent)
    assert settings.get("dialogs/last_dir") == str(chosen.parent)


def test_save_proposes_the_name_in_the_last_folder_never_the_installation(asked, tmp_path, monkeypatch):
    calls, _ = asked
    inside = file_dialogs.INSTALLATION / "resources"
    settings.put("dialogs/last_dir", str(inside))
    monkeypatch.setattr(file_dialogs, "documents_folder", lambda: tmp_path)
    file_dialogs.save_file(None, "Save project as", "Untitled.tlsproj", "*.tlsproj")
    assert calls[-1] == str(tmp_path / "Untitled.tlsproj")
    assert not Path(calls[-1]).resolve().is_relative_to(file_dialogs.INSTALLATION)
    # A preferred start inside the installation is refused too.
    file_dialogs.save_file(None, "Save", "x.csv", "*.csv", start=inside)
    assert calls[-1] == str(tmp_path / "x.csv")


def test_a_cancelled_dialog_changes_nothing(asked, tmp_path):
    settings.put("dialogs/last_dir", str(tmp_path))
    assert file_dialogs.open_folder(None, "Pick") == ""
    assert settings.get("dialogs/last_dir") == str(tmp_path)


def test_no_page_calls_qfiledialog_directly():
    gui = Path(file_dialogs.__file__).parent
    offenders = [p.name for p in gui.rglob("*.py") if p.name != "file_dialogs.py" and "QFileDialog" in p.read_text()]
    assert offenders == []
