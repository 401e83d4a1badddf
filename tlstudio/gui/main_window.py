"""The main window, a shell: the workflow side bar, the page stack, menus, status bar and drag-and-drop.

Pages are created the first time their step is shown, so the window opens without importing anything
heavy. Project files are :class:`~tlstudio.gui.project_controller.ProjectController`'s; what the side
bar says is :func:`~tlstudio.gui.step_status.step_statuses`'. Closing the window cancels and waits for
every worker (:data:`tlstudio.workers.base.registry`).
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import tlstudio
from tlstudio.core import paths
from tlstudio.core.project import PROJECT_SUFFIX
from tlstudio.gui import file_dialogs, settings
from tlstudio.gui.curation_hooks import install_undo
from tlstudio.gui.dialogs.model_opened import ask_model_action
from tlstudio.gui.pages.welcome import WelcomeWidget
from tlstudio.gui.project_controller import ProjectController
from tlstudio.gui.recent_menu import fill_recent_menu, menu_text  # noqa: F401 - menu_text: re-exported
from tlstudio.gui.state import AppState
from tlstudio.gui.step_status import STEP_TITLES, step_statuses
from tlstudio.gui.widgets.common import StepSidebar, app_icon, icon
from tlstudio.gui.widgets.drops import accept_copy, local_paths
from tlstudio.workers.base import registry

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
#: step key -> (module, class) of its page
PAGES = {
    "data": ("tlstudio.gui.pages.data", "DatasetPage"),
    "model": ("tlstudio.gui.pages.model", "ModelPage"),
    "train": ("tlstudio.gui.pages.train", "TrainPage"),
    "evaluate": ("tlstudio.gui.pages.evaluate", "EvaluatePage"),
    "test": ("tlstudio.gui.pages.test_export", "TestPage"),
    "runs": ("tlstudio.gui.pages.runs", "RunsView"),
}


FOCUS_STYLE = (
    "QPushButton:focus, QToolButton:focus, QCheckBox:focus, QRadioButton:focus, QComboBox:focus,"
    " QAbstractSpinBox:focus, QLineEdit:focus, QAbstractItemView:focus"
    " { outline: none; border: 2px solid palette(highlight); border-radius: 3px; }"
)


class MainWindow(QMainWindow):
    """The application window. ``MainWindow(state=None)``: a fresh :class:`AppState` when none is given."""

    def __init__(self, state: AppState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state if state is not None else AppState(self)
        self.pages: dict[str, QWidget] = {}
        self._holders: dict[str, QWidget] = {}
        self._closing = False
        self._engine_status = None  # set when this window starts the engine
        self.engine_state = "stopped"
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1200, 800)
        self.setMinimumSize(1024, 700)
        # Where the keyboard is, at a glance: a clear outline around the focused control.
        self.setStyleSheet(FOCUS_STYLE)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.sidebar = StepSidebar(list(STEP_TITLES))
        self.stack = QStackedWidget()
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        for key, _title in STEP_TITLES:
            holder = QWidget()
            holder.setObjectName(f"step-{key}")
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self._holders[key] = holder
            self.stack.addWidget(holder)

        # The Data step shows the welcome screen until a folder is open.
        self.data_stack = QStackedWidget()
        self.welcome = WelcomeWidget()
        self.data_stack.addWidget(self.welcome)
        self._holders["data"].layout().addWidget(self.data_stack)
        self.projects = ProjectController(self)
        self.welcome.open_folder_requested.connect(self.choose_dataset_folder)
        self.welcome.open_project_requested.connect(self.projects.open_dialog)
        self.welcome.folder_requested.connect(self.open_dataset)
        self.welcome.project_requested.connect(self.open_project)

        self._make_menus()
        install_undo(self, self.state)  # Edit > Undo (Ctrl+Z) for dataset edits
        self.tf_icon, self.tf_label = QLabel(), QLabel()
        self.statusBar().addPermanentWidget(self.tf_icon)
        self.statusBar().addPermanentWidget(self.tf_label)

        self.sidebar.step_selected.connect(self._show_step)
        s = self.state
        for signal in (s.project_changed, s.dataset_changed, s.model_changed, s.runs_changed, s.train_config_changed,
                       s.current_run_changed, s.opened_model_changed, s.tested_model_changed, s.training_changed):
            signal.connect(self._refresh_steps)
        s.tf_ready_changed.connect(self._on_tf_ready)
        s.dirty_changed.connect(self._update_title)
        s.project_changed.connect(self._update_title)
        s.title_changed.connect(self._update_title)
        s.status_message.connect(lambda text: self.statusBar().showMessage(text, 10000))

        geometry = settings.get("window/geometry")
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        self.sidebar.select("data")
        self._update_title()
        self._on_tf_ready(self.state.tf_ready)

    # --- pages -----------------------------------------------------------------------------------
    def page(self, key: str) -> QWidget:
        """The page of step ``key``, created on first use."""
        if key not in self.pages:
            module, cls = PAGES[key]
            widget = getattr(importlib.import_module(module), cls)(self.state, None)
            self.pages[key] = widget
            (self.data_stack if key == "data" else self._holders[key].layout()).addWidget(widget)
        return self.pages[key]

    def go_to(self, key: str) -> QWidget:
        """Show step ``key`` and return its page."""
        self.sidebar.select(key)
        return self._show_step(key)

    def current_step(self) -> str | None:
        return self.sidebar.current_key()

    def _show_step(self, key: str) -> QWidget:
        if key == "data":
            self.stack.setCurrentWidget(self._holders[key])
            self._update_data_view()
            return self.pages.get("data") or self.welcome
        page = self.page(key)  # first: a page added to a shown holder would only appear later
        self.stack.setCurrentWidget(self._holders[key])
        return page

    def _update_data_view(self) -> None:
        if self.state.project.train.data_dir or self.state.scan is not None:
            self.data_stack.setCurrentWidget(self.page("data"))
        else:
            self.welcome.refresh_recent()
            self.data_stack.setCurrentWidget(self.welcome)

    def showing_welcome(self) -> bool:
        """True while the empty first screen is what the Data step shows."""
        return self.data_stack.currentWidget() is self.welcome

    def _refresh_steps(self, *_args) -> None:
        for key, (status, detail) in step_statuses(self.state).items():
            self.sidebar.set_status(key, status, detail)
        if self.current_step() == "data":
            self._update_data_view()

    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.state.project_title()}[*] - tlstudio")
        self.setWindowModified(self.state.dirty)

    # --- menus -----------------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        p = self.projects
        self.new_action = self._action("&New Project", p.new, QKeySequence.StandardKey.New)
        self.open_action = self._action("&Open Project...", p.open_dialog, QKeySequence.StandardKey.Open)
        self.open_folder_action = self._action("Open &Folder...", self.choose_dataset_folder, "Ctrl+Shift+O",
                                               "Open a folder of images (one subfolder per class)")
        file_menu.addActions([self.new_action, self.open_action, self.open_folder_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.open_model_action = self._action("Open &Model...", self.open_model_dialog, "Ctrl+M",
                                              "Open a .keras or .h5 model (Teachable Machine, Keras 2 or 3) to test it")
        self.save_action = self._action("&Save", p.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As...", p.save_as, QKeySequence.StandardKey.SaveAs)
        self.export_action = self._action("&Export...", self.open_export_dialog, "Ctrl+E",
                                          "Export the current run's model (Keras, SavedModel, TFLite, ONNX)")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        for action in (self.open_model_action, None, self.save_action, self.save_as_action, None,
                       self.export_action, None, self.quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)

        view_menu = bar.addMenu("&View")
        for i, (key, title) in enumerate(STEP_TITLES):
            view_menu.addAction(self._action(menu_text(title), lambda _c=False, k=key: self.go_to(k), f"Ctrl+{i + 1}"))

        train_menu = bar.addMenu("&Training")
        self.start_training_action = self._action("&Start Training", self.start_training, "Ctrl+Return",
                                                  "Train a model with the settings of the Train page")
        self.cancel_training_action = self._action("&Cancel Training", self.cancel_training, "Esc",
                                                   "Stop after the current batch; the best weights are kept")
        self.cancel_training_action.setEnabled(False)
        train_menu.addActions([self.start_training_action, self.cancel_training_action])
        self.state.training_changed.connect(self.cancel_training_action.setEnabled)

        help_menu = bar.addMenu("&Help")
        self.guide_action = self._action("&User Guide", self.open_user_guide, QKeySequence.StandardKey.HelpContents)
        self.about_action = self._action("&About tlstudio", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self.guide_action)
        help_menu.addAction(self._action("Show &Data Folder", self._open_data_home,
                                         tip="Open the folder where tlstudio keeps its cache and runs"))
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _fill_recent_menu(self) -> None:
        fill_recent_menu(self.recent_menu, self.open_project, self.open_dataset, self.welcome.refresh_recent)

    def show_about(self) -> None:
        QMessageBox.about(self, "About tlstudio",
                          f"<h3>tlstudio {tlstudio.__version__}</h3>"
                          "<p>Point-and-click transfer learning for image classification.</p>"
                          "<p>Licensed under the Apache License 2.0.</p>"
                          f"<p>Data, cache and runs: {paths.data_home()}</p>")

    def user_guide_url(self) -> QUrl:
        """The user guide beside the sources (docs/user-guide.md), else the project's online copy."""
        local = Path(tlstudio.__file__).resolve().parents[1] / "docs" / "user-guide.md"
        if local.is_file():
            return QUrl.fromLocalFile(str(local))
        return QUrl("https://github.com/tlstudio/tlstudio/blob/main/docs/user-guide.md")

    def open_user_guide(self) -> None:
        QDesktopServices.openUrl(self.user_guide_url())

    def _open_data_home(self) -> None:
        home = paths.data_home()
        home.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(home)))

    def start_training(self) -> bool:
        """Show the Train page and start a run there (it says why when it cannot)."""
        return self.go_to("train").start_training()

    def cancel_training(self) -> None:
        if self.state.training:
            self.page("train").cancel()

    # --- the engine: the process that owns TensorFlow ----------------------------------------------
    ENGINE_STATES = {  # engine state -> (icon, status bar text)
        "starting": ("busy", "Engine starting (loading TensorFlow)..."),
        "ready": ("ready", "Engine ready"),
        "busy": ("busy", "Engine busy"),
        "restarting": ("busy", "Engine restarting..."),
        "failed": ("error", "Engine stopped"),
        "stopped": ("pending", "Engine not running"),
    }

    def _on_tf_ready(self, ready: bool) -> None:
        if self._engine_status is None:
            self.tf_icon.setPixmap(icon("pending").pixmap(14, 14))
            self.tf_label.setText("Engine not started")
        self._refresh_steps()

    def start_background_loading(self) -> None:
        """Start the engine process off the GUI thread; it loads TensorFlow, and ``state.tf_ready`` flips
        when it is ready. The window's own process never imports TensorFlow."""
        from tlstudio.workers import engine_calls

        if self._engine_status is not None:
            return
        self._engine_status = engine_calls.engine_status()
        self._engine_status.state_changed.connect(self._on_engine_state)
        client = engine_calls.start_engine()
        self._on_engine_state(client.state, client.detail)

    def _on_engine_state(self, state: str, detail: str) -> None:
        name, text = self.ENGINE_STATES.get(state, ("pending", state))
        self.tf_icon.setPixmap(icon(name).pixmap(14, 14))
        self.tf_label.setText(text)
        self.tf_label.setToolTip(detail)
        self.engine_state = state
        self.state.set_tf_ready(state in ("ready", "busy"))
        if state in ("restarting", "failed") and detail:
            self._engine_stopped(detail)

    def _engine_stopped(self, detail: str) -> None:
        """Say so in plain words; the project, the finished runs and the other pages are untouched."""
        self.state.message(detail)
        box = QMessageBox(QMessageBox.Icon.Warning, "The engine stopped", detail, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("engine-stopped")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not modal to the work in progress: the fresh engine starts meanwhile

    def _stop_engine(self) -> None:
        from tlstudio.workers import engine_calls

        if self._engine_status is None:
            return
        status, self._engine_status = self._engine_status, None
        status.state_changed.disconnect(self._on_engine_state)
        engine_calls.stop_engine()

    # --- dataset, projects, models ---------------------------------------------------------------
    def choose_dataset_folder(self) -> None:
        folder = file_dialogs.open_folder(self, "Open a folder of images (one subfolder per class)")
        if folder:
            self.open_dataset(folder)

    def open_dataset(self, folder: str | os.PathLike) -> None:
        """Open ``folder`` as the dataset: show the Data page and scan it."""
        folder = str(folder)
        if not Path(folder).is_dir():
            QMessageBox.warning(self, "Open folder", f"The folder {folder} does not exist.")
            settings.remove_recent("recent/folders", folder)
            return
        settings.add_recent("recent/folders", folder)
        file_dialogs.remember(Path(folder).parent)
        self.page("data").open_folder(folder)
        self.go_to("data")

    def show_project_dataset(self) -> None:
        """After a project was opened or recovered: scan its dataset, or say that the folder is gone."""
        data_dir = self.state.project.train.data_dir
        self.go_to("data")
        if data_dir and Path(data_dir).is_dir():
            self.page("data").open_folder(data_dir)
        elif data_dir:
            QMessageBox.warning(self, "Dataset folder missing",
                                f"The project's dataset folder {data_dir} cannot be found. Open it again from "
                                "the Data page.")

    def open_project(self, path: str | os.PathLike) -> bool:
        return self.projects.open(path)

    def save_project(self) -> bool:
        return self.projects.save()

    def save_project_as(self) -> bool:
        return self.projects.save_as()

    def autosave(self) -> Path | None:
        return self.projects.autosave()

    def offer_recovery(self) -> bool:
        return self.projects.offer_recovery()

    def open_model_dialog(self) -> None:
        path = file_dialogs.open_file(self, "Open a model", file_dialogs.MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str | os.PathLike) -> None:
        """Load a model file on a worker; then show where it comes from and offer to test it."""
        from tlstudio.workers.base import create_worker
        from tlstudio.workers.model_worker import open_model_file

        if registry.running(owner=self, name="open-model"):
            self.state.message("A model is already being opened")
            return
        settings.add_recent("recent/models", str(path))
        create_worker(open_model_file, str(path), _name="open-model", _owner=self, _connect={
            "finished": self._model_opened, "message": self.state.message,
            "failed": lambda text: QMessageBox.critical(self, "Cannot open the model", text)})
        waiting = "" if self.state.tf_ready else " (waiting for the engine to start)"
        self.state.message(f"Opening {Path(path).name}...{waiting}")

    def ask_model_action(self, info) -> str:
        return ask_model_action(self, info)

    def _model_opened(self, info) -> None:
        self.state.message(f"Opened {Path(info.path).name}: {info.source_label}")
        choice = self.ask_model_action(info)
        if choice == "test":
            self.state.set_opened_model(info.path)
            self.go_to("test")
        elif choice == "base":
            self.state.update_train_config(base_model_path=info.path, cut_layer=None, weights="imagenet")
            self.go_to("model")

    def open_export_dialog(self) -> None:
        if not self.state.current_run and not self.state.opened_model:
            QMessageBox.information(self, "Export", "Train a model first (or open one with File > Open Model).")
            return
        from tlstudio.gui.dialogs.export import ExportDialog

        ExportDialog(self.state, self, run_dir=self.state.current_run).exec()

    # --- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        found = local_paths(event.mimeData())
        if found and (found[0].is_dir() or found[0].suffix.lower() in (*MODEL_SUFFIXES, PROJECT_SUFFIX)):
            accept_copy(event)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        found = local_paths(event.mimeData())
        target = found[0] if found else None
        if target is None:
            event.ignore()
        elif target.is_dir():
            accept_copy(event)
            self.drop_folder(target)
        elif target.suffix.lower() in MODEL_SUFFIXES:
            accept_copy(event)
            self.open_model(target)
        elif target.suffix.lower() == PROJECT_SUFFIX:
            accept_copy(event)
            self.open_project(target)
        else:
            self.state.message(f"{target.name} is neither a folder, a model nor a project")
            event.ignore()

    def drop_folder(self, folder: Path) -> None:
        """A folder dropped on the window becomes the dataset; with runs in the project, after asking."""
        current = self.state.project.train.data_dir
        if self.state.project.runs and current and Path(current).resolve() != folder.resolve():
            answer = QMessageBox.question(
                self, "Replace the dataset?",
                f"This project has {len(self.state.project.runs)} run(s) trained on {Path(current).name}. "
                f"Use {folder.name} as the dataset instead? The runs are kept.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.open_dataset(folder)

    # --- closing ---------------------------------------------------------------------------------
    def shutdown_pages(self) -> None:
        """Ask every page to stop its work (before the project is replaced)."""
        for page in list(self.pages.values()):
            page.shutdown()

    def shutdown(self) -> None:
        """Cancel and wait for every worker of the window and its pages."""
        self.projects.timer.stop()
        self.shutdown_pages()
        registry.shutdown()
        self._stop_engine()  # and every process it started

    def stop_training_to_quit(self) -> None:
        """Stop a running training at once, leaving it "interrupted" (resumable), not "cancelled"."""
        from tlstudio.core.events import STOP_QUIT

        for handle in registry.running(name="training"):
            try:
                handle.worker.request_stop(STOP_QUIT)
            except (AttributeError, RuntimeError):  # not a training worker, or it has just ended
                handle.cancel()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closing:
            if self.state.training:
                answer = QMessageBox.question(
                    self, "Training in progress", "A model is training. Stop the training and quit?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
                if "train" in self.pages:  # listed before the save question, so a saved project offers Resume
                    self.pages["train"].record_interrupted()
            if not self.projects.maybe_save():
                event.ignore()
                return
            self._closing = True
            self.stop_training_to_quit()
        settings.put("window/geometry", self.saveGeometry())
        if self.current_step():
            settings.put("window/step", self.current_step())
        self.shutdown()
        event.accept()
