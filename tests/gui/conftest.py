"""GUI fixtures: fresh settings per test, modal dialogs that never block, a main window that closes cleanly."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path, qapp):
    """QSettings (INI, user scope) in a per-test folder, so tests never see each other's recent files."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


class DialogRecorder:
    """Stands in for QMessageBox / QFileDialog statics: records each call and returns queued answers."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []  # (kind, title, text)
        self.answers: list = []  # QMessageBox.StandardButton values returned by question(), in order
        self.files: list[str] = []  # paths returned by the file dialogs, in order

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def texts(self, kind: str | None = None) -> list[str]:
        return [c[2] for c in self.calls if kind is None or c[0] == kind]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch, qapp):
    """Every message box and file dialog is answered without showing anything (offscreen modals would hang)."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    rec = DialogRecorder()

    def make(kind):
        def fake(parent, title, text, *args, **kwargs):
            rec.calls.append((kind, str(title), str(text)))
            if kind == "question":
                if rec.answers:
                    return rec.answers.pop(0)
                return QMessageBox.StandardButton.Discard
            return QMessageBox.StandardButton.Ok

        return staticmethod(fake)

    for kind in ("question", "critical", "warning", "information"):
        monkeypatch.setattr(QMessageBox, kind, make(kind))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda parent, title, text: rec.calls.append(("about", title, text))))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: rec.calls.append(("exec", self.windowTitle(), self.text())) or 0)

    def file_answer(*args, **kwargs):
        return (rec.files.pop(0) if rec.files else "", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(file_answer))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(file_answer))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: rec.files.pop(0) if rec.files else ""))
    return rec


@pytest.fixture
def main_window(qtbot):
    """A shown MainWindow; closed at the end without prompts, its workers cancelled and waited for."""
    from tlstudio.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.state.dirty = False
    window.state.training = False
    window.close()
    window.shutdown()


TINY = dict(base="MobileNet", alpha=0.25, weights="none", input_size=32)


@pytest.fixture
def tiny_settings():
    """TrainConfig fields of the tiny model the GUI tests build (MobileNet alpha 0.25, random weights, 32 px)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def _tiny_trees():
    """One real tiny classifier (MobileNet alpha 0.25, random weights, 32 px), built once per session."""
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.models import catalogue as base_models
    from tlstudio.core.models.layer_tree import LayerTree

    model = base_models.build_classifier(TrainConfig(**TINY), 2)
    return {
        "plain": LayerTree.from_model(model, family="mobilenet"),
        "bn_locked": LayerTree.from_model(model, family="mobilenet", lock_batchnorm=True),
    }


@pytest.fixture
def tiny_tree(_tiny_trees):
    """Factory of fresh copies of the tiny model's layer tree: ``tiny_tree()`` or ``tiny_tree("bn_locked")``."""
    import copy

    return lambda kind="plain": copy.deepcopy(_tiny_trees[kind])
