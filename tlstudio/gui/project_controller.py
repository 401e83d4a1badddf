"""New, Open, Save, Save As, autosave and recovery: the questions around the project file.

The file work itself is :mod:`tlstudio.core.project`; this module asks the person (unsaved changes,
a recovery copy) and tells the window what to show.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from tlstudio.core import project as core_project
from tlstudio.core.project import PROJECT_SUFFIX, Project, ProjectError
from tlstudio.gui import file_dialogs, settings

log = logging.getLogger(__name__)

AUTOSAVE_INTERVAL_MS = 120_000
PROJECT_FILTER = f"tlstudio project (*{PROJECT_SUFFIX});;All files (*)"


class ProjectController(QObject):
    """``ProjectController(window)``: the window provides ``state``, ``pages``, ``go_to`` and ``open_dataset``."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.state = window.state
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def _busy_training(self, title: str) -> bool:
        if self.state.training:
            QMessageBox.information(self.window, title, "Please stop the training first.")
        return self.state.training

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the person cancelled what they were doing."""
        if not self.state.dirty:
            return True
        answer = QMessageBox.question(
            self.window, "Unsaved changes",
            f"The project \u201c{self.state.project_title()}\u201d has unsaved changes. Save them?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        if answer == QMessageBox.StandardButton.Discard:
            core_project.discard_autosave(self.state.project_path)
            return True
        return False

    def new(self) -> None:
        if self._busy_training("New project") or not self.maybe_save():
            return
        self.window.shutdown_pages()
        self.state.set_project(Project())
        self.window.go_to("data")

    def open_dialog(self) -> None:
        path = file_dialogs.open_file(self.window, "Open project", PROJECT_FILTER)
        if path:
            self.open(path)

    def open(self, path: str | os.PathLike) -> bool:
        """Open a project file; a damaged or newer file gives a message and changes nothing."""
        path = Path(path)
        if self._busy_training("Open project") or not self.maybe_save():
            return False
        try:
            project = Project.load(path)
        except ProjectError as exc:
            if not path.exists():
                settings.remove_recent("recent/projects", str(path))
            QMessageBox.critical(self.window, "Cannot open the project", str(exc))
            return False
        recovered = False
        copy = core_project.recovery_for(path)
        if copy is not None:
            recovered_project = self.ask_recovery(copy, path, f"A recovery copy of {path.name} holds changes that "
                                                  "were never saved.")
            if recovered_project is not None:
                project, recovered = recovered_project, True
        self.window.shutdown_pages()
        self.state.set_project(project, path)
        if recovered:
            self.state.mark_dirty()
        settings.add_recent("recent/projects", path)
        file_dialogs.remember(path)
        self.state.message(f"Opened {path.name}")
        self.window.show_project_dataset()
        if project.repairs:  # a hand-edited file: say what was set back, the page shows the rest
            shown = project.repairs[:12] + ([f"... and {len(project.repairs) - 12} more"] if len(project.repairs) > 12 else [])
            QMessageBox.warning(self.window, "Project repaired",
                                f"Some values in {path.name} were not valid and were repaired:\n- " + "\n- ".join(shown))
            self.state.mark_dirty()
        return True

    def ask_recovery(self, copy: Path, project_path: Path | None, why: str) -> Project | None:
        """Offer a recovery copy; the project it holds, or None (declined: the copy is deleted, as said)."""
        answer = QMessageBox.question(
            self.window, "Recover unsaved changes",
            f"{why} Open it?\n\nIf you choose No, the recovery copy is deleted.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            core_project.discard_autosave(project_path)
            return None
        try:
            return core_project.load_recovery(copy, project_path)
        except ProjectError as exc:
            QMessageBox.warning(self.window, "Recovery copy", str(exc))
            return None

    def save(self) -> bool:
        if self.state.project_path is None:
            return self.save_as()
        return self.write(self.state.project_path)

    def save_as(self) -> bool:
        name = self.state.project_path.name if self.state.project_path else \
            f"{self.state.project.name or 'Untitled'}{PROJECT_SUFFIX}"
        start = self.state.project_path.parent if self.state.project_path else None
        path = file_dialogs.save_file(self.window, "Save project as", name, PROJECT_FILTER, start=start)
        if not path:
            return False
        path = Path(path)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return self.write(path)

    def sync(self) -> Project:
        """The project to write (the chosen trainable layers are already in it: the Model page records edits)."""
        return self.state.project

    def write(self, path: Path) -> bool:
        try:
            core_project.save_project(self.sync(), path, self.state.project_path)
        except ProjectError as exc:
            QMessageBox.critical(self.window, "Cannot save the project", str(exc))
            return False
        self.state.mark_saved(path)
        settings.add_recent("recent/projects", path)
        file_dialogs.remember(path)
        self.state.message(f"Saved {path}")
        return True

    def autosave(self) -> Path | None:
        """Write a recovery copy when there are unsaved changes; the project file itself is untouched."""
        if not self.state.dirty:
            return None
        try:
            return core_project.write_autosave(self.sync(), self.state.project_path)
        except ProjectError as exc:
            log.warning("autosave failed: %s", exc)
            return None

    def offer_recovery(self) -> bool:
        """At start-up: offer a recovery copy left by a crash, of an untitled project or a recent one."""
        candidates: list[tuple[Path, Path | None]] = []
        copy = core_project.recovery_for(None)
        if copy is not None:
            candidates.append((copy, None))
        for recent in settings.get("recent/projects"):
            copy = core_project.recovery_for(recent)
            if copy is not None:
                candidates.append((copy, Path(recent)))
        if not candidates:
            return False
        copy, project_path = candidates[0]
        what = f"the project {project_path.name}" if project_path else "an untitled project"
        project = self.ask_recovery(copy, project_path,
                                    f"tlstudio closed without saving {what} last time; a recovery copy exists.")
        if project is None:
            return False
        self.state.set_project(project, project_path)
        self.state.mark_dirty()
        self.window.show_project_dataset()
        return True
