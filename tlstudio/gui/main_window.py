"""The main window: the workflow side bar, the pages, menus, projects, drag-and-drop.

Pages are imported lazily by module name the first time their step is shown, so the window opens
without importing anything heavy; a page module that is missing shows a placeholder instead.
A page may define ``shutdown()``: the window calls it on close to cancel and wait for its workers.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
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
from tlstudio.core.json_file import read_json as _read_json
from tlstudio.core.project import PROJECT_SCHEMA_VERSION, PROJECT_SUFFIX, Project, ProjectError
from tlstudio.gui import settings
from tlstudio.gui.pages.welcome import WelcomeWidget
from tlstudio.gui.state import AppState
from tlstudio.gui.widgets.common import PlaceholderPage, StepSidebar, WorkerHandles, app_icon, icon
from tlstudio.workers.base import WorkerHandle, start_worker

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
AUTOSAVE_INTERVAL_MS = 120_000
PROJECT_FILTER = f"tlstudio project (*{PROJECT_SUFFIX});;All files (*)"
MODEL_FILTER = "Keras model (*.keras *.h5 *.hdf5);;All files (*)"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    module: str
    cls: str


STEPS: tuple[Step, ...] = (
    Step("data", "Data", "tlstudio.gui.pages.data", "DatasetPage"),
    Step("model", "Model", "tlstudio.gui.pages.model", "ModelPage"),
    Step("train", "Train", "tlstudio.gui.pages.train", "TrainPage"),
    Step("evaluate", "Evaluate", "tlstudio.gui.pages.evaluate", "EvaluatePage"),
    Step("test", "Test & Export", "tlstudio.gui.pages.test_export", "TestPage"),
    Step("runs", "Runs", "tlstudio.gui.pages.runs", "RunsView"),
)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class MainWindow(QMainWindow):
    """The application window. ``MainWindow(state=None)``: a fresh :class:`AppState` when none is given."""

    def __init__(self, state: AppState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state if state is not None else AppState(self)
        self.pages: dict[str, QWidget] = {}
        self._holders: dict[str, QWidget] = {}
        self._handles = WorkerHandles()
        self._tf_handle: WorkerHandle | None = None
        self._tf_worker = None
        self._open_model_handle: WorkerHandle | None = None
        self._closing = False

        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1200, 800)
        self.setMinimumSize(820, 560)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.sidebar = StepSidebar([(s.key, s.title) for s in STEPS])
        self.stack = QStackedWidget()
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        for step in STEPS:
            holder = QWidget()
            holder.setObjectName(f"step-{step.key}")
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self._holders[step.key] = holder
            self.stack.addWidget(holder)

        # The Data step shows the welcome screen until a folder is open.
        self.data_stack = QStackedWidget()
        self.welcome = WelcomeWidget()
        self.data_stack.addWidget(self.welcome)
        self._holders["data"].layout().addWidget(self.data_stack)
        self.welcome.open_folder_requested.connect(self.choose_dataset_folder)
        self.welcome.open_project_requested.connect(self.open_project_dialog)
        self.welcome.folder_requested.connect(self.open_dataset)
        self.welcome.project_requested.connect(self.open_project)

        self._make_menus()
        self._make_status_bar()

        self.sidebar.step_selected.connect(self._show_step)
        s = self.state
        for signal in (s.project_changed, s.dataset_changed, s.model_changed, s.runs_changed,
                       s.train_config_changed):
            signal.connect(self._refresh_steps)
        s.current_run_changed.connect(self._refresh_steps)
        s.opened_model_changed.connect(self._refresh_steps)
        s.training_changed.connect(self._refresh_steps)
        s.tf_ready_changed.connect(self._on_tf_ready)
        s.dirty_changed.connect(self._update_title)
        s.project_changed.connect(self._update_title)
        s.status_message.connect(self._show_message)

        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

        geometry = settings.get("window/geometry")
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        self.sidebar.select("data")
        self._refresh_steps()
        self._update_title()
        self._on_tf_ready(self.state.tf_ready)

    # --- pages -----------------------------------------------------------------------------------

    def page(self, key: str) -> QWidget:
        """The page of step ``key``, created on first use (a placeholder when its module is missing)."""
        if key in self.pages:
            return self.pages[key]
        step = next(s for s in STEPS if s.key == key)
        widget = self._create_page(step)
        self.pages[key] = widget
        if key == "data":
            self.data_stack.addWidget(widget)
        else:
            self._holders[key].layout().addWidget(widget)
        return widget

    def _create_page(self, step: Step) -> QWidget:
        try:
            module = importlib.import_module(step.module)
        except ModuleNotFoundError as exc:
            if exc.name == step.module:
                return PlaceholderPage(step.title, "This page is not available in this build.")
            log.error("cannot import %s:\n%s", step.module, traceback.format_exc())
            return PlaceholderPage(step.title, f"This page could not be loaded: {exc}")
        except Exception as exc:  # a broken page must not take the whole window down
            log.error("cannot import %s:\n%s", step.module, traceback.format_exc())
            return PlaceholderPage(step.title, f"This page could not be loaded: {type(exc).__name__}: {exc}")
        try:
            return getattr(module, step.cls)(self.state, None)
        except Exception as exc:
            log.error("cannot create %s:\n%s", step.cls, traceback.format_exc())
            return PlaceholderPage(step.title, f"This page could not be created: {type(exc).__name__}: {exc}")

    def go_to(self, key: str) -> QWidget:
        """Show step ``key`` and return its page."""
        self.sidebar.select(key)
        return self._show_step(key)

    def current_step(self) -> str | None:
        return self.sidebar.current_key()

    def _show_step(self, key: str) -> QWidget:
        if key == "data":
            self.stack.setCurrentWidget(self._holders["data"])
            self._update_data_view()
            return self.pages.get("data") or self.welcome
        page = self.page(key)
        self.stack.setCurrentWidget(self._holders[key])
        return page

    def _data_is_open(self) -> bool:
        return bool(self.state.project.train.data_dir) or self.state.scan is not None

    def _update_data_view(self) -> None:
        if self._data_is_open():
            self.data_stack.setCurrentWidget(self.page("data"))
        else:
            self.welcome.refresh_recent()
            self.data_stack.setCurrentWidget(self.welcome)

    def showing_welcome(self) -> bool:
        """True while the empty first screen is what the Data step shows."""
        return self.data_stack.currentWidget() is self.welcome

    # --- steps -----------------------------------------------------------------------------------

    def _refresh_steps(self, *_args) -> None:
        s = self.state
        scan = s.scan
        data_ready = False
        if scan is None:
            if s.project.train.data_dir:
                self.sidebar.set_status("data", "pending", "Not scanned yet")
            else:
                self.sidebar.set_status("data", "pending", "Open a folder")
        else:
            n = len(scan.usable())
            k = sum(1 for count in scan.class_counts().values() if count > 0)
            data_ready = k >= 2
            if data_ready:
                self.sidebar.set_status("data", "warning" if scan.warnings else "done",
                                        f"{n} images, {k} classes")
            else:
                self.sidebar.set_status("data", "error", "Needs 2 or more classes")
        cfg = s.project.train
        if cfg.base_model_path:
            base = Path(cfg.base_model_path).name
        else:
            base = cfg.base + (f" {cfg.alpha:g}" if cfg.alpha and cfg.base.lower().startswith("mobilenet") else "")
        if s.layer_tree is not None:
            self.sidebar.set_status("model", "done", base)
        else:
            self.sidebar.set_status("model", "ready" if data_ready else "pending", base)
        runs = len(s.project.runs)
        if s.training:
            self.sidebar.set_status("train", "busy", "Training...")
        elif runs:
            self.sidebar.set_status("train", "done", f"{runs} run{'s' if runs != 1 else ''}")
        elif data_ready:
            self.sidebar.set_status("train", "ready", "Ready" if s.tf_ready else "Waiting for TensorFlow")
        else:
            self.sidebar.set_status("train", "pending", "Needs a dataset")
        run = s.find_run(s.current_run) if s.current_run else None
        run_name = (run.name if run and run.name else Path(s.current_run).name) if s.current_run else ""
        if s.current_run:
            self.sidebar.set_status("evaluate", "ready", run_name)
        else:
            self.sidebar.set_status("evaluate", "pending", "After training")
        if s.opened_model:
            self.sidebar.set_status("test", "ready", Path(s.opened_model).name)
        elif s.current_run:
            self.sidebar.set_status("test", "ready", run_name)
        else:
            self.sidebar.set_status("test", "pending", "After training")
        self.sidebar.set_status("runs", "done" if runs else "pending", f"{runs} run{'s' if runs != 1 else ''}")
        if self.current_step() == "data":
            self._update_data_view()

    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.state.project_title()}[*] - tlstudio")
        self.setWindowModified(self.state.dirty)

    # --- menus and status bar --------------------------------------------------------------------

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
        self.new_action = self._action("&New Project", self.new_project, QKeySequence.StandardKey.New)
        self.open_action = self._action("&Open Project...", self.open_project_dialog, QKeySequence.StandardKey.Open)
        self.open_folder_action = self._action("Open &Folder...", self.choose_dataset_folder, "Ctrl+Shift+O",
                                               "Open a folder of images (one subfolder per class)")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.open_model_action = self._action("Open &Model...", self.open_model_dialog, "Ctrl+M",
                                              "Open a .keras or .h5 model (Teachable Machine, Keras 2 or 3) to test it")
        self.save_action = self._action("&Save", self.save_project, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As...", self.save_project_as, QKeySequence.StandardKey.SaveAs)
        self.export_action = self._action("&Export...", self.open_export_dialog, "Ctrl+E",
                                          "Export the current run's model (Keras, SavedModel, TFLite, ONNX)")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        file_menu.insertAction(self.recent_menu.menuAction(), self.new_action)
        file_menu.insertAction(self.recent_menu.menuAction(), self.open_action)
        file_menu.insertAction(self.recent_menu.menuAction(), self.open_folder_action)
        file_menu.addAction(self.open_model_action)
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        view_menu = bar.addMenu("&View")
        for i, step in enumerate(STEPS):
            act = self._action(step.title, lambda _checked=False, k=step.key: self.go_to(k), f"Ctrl+{i + 1}")
            view_menu.addAction(act)

        help_menu = bar.addMenu("&Help")
        self.about_action = self._action("&About tlstudio", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self.about_action)
        help_menu.addAction(self._action("Show &Data Folder", self._open_data_home,
                                         tip="Open the folder where tlstudio keeps its cache and runs"))

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        projects = settings.get("recent/projects")
        folders = settings.get("recent/folders")
        for p in projects:
            menu.addAction(icon("image"), p).triggered.connect(lambda _c=False, p=p: self.open_project(p))
        if projects and folders:
            menu.addSeparator()
        for f in folders:
            menu.addAction(icon("folder"), f).triggered.connect(lambda _c=False, f=f: self.open_dataset(f))
        if not projects and not folders:
            act = menu.addAction("No recent files")
            act.setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Recent").triggered.connect(self._clear_recent)

    def _clear_recent(self) -> None:
        settings.put("recent/projects", [])
        settings.put("recent/folders", [])
        self.welcome.refresh_recent()

    def _make_status_bar(self) -> None:
        bar = self.statusBar()
        self.tf_icon = QLabel()
        self.tf_label = QLabel()
        bar.addPermanentWidget(self.tf_icon)
        bar.addPermanentWidget(self.tf_label)

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)

    def _on_tf_ready(self, ready: bool) -> None:
        if ready:
            self.tf_icon.setPixmap(icon("ready").pixmap(14, 14))
            self.tf_label.setText("TensorFlow ready")
        elif self._tf_handle is not None:
            self.tf_icon.setPixmap(icon("busy").pixmap(14, 14))
            self.tf_label.setText("Loading TensorFlow...")
        else:
            self.tf_icon.setPixmap(icon("pending").pixmap(14, 14))
            self.tf_label.setText("TensorFlow not loaded")
        self._refresh_steps()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About tlstudio",
            f"<h3>tlstudio {tlstudio.__version__}</h3>"
            "<p>Point-and-click transfer learning for image classification.</p>"
            "<p>Licensed under the Apache License 2.0.</p>"
            f"<p>Data, cache and runs: {paths.data_home()}</p>",
        )

    def _open_data_home(self) -> None:
        home = paths.data_home()
        home.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(home)))

    # --- TensorFlow in the background ------------------------------------------------------------

    def start_background_loading(self) -> None:
        """Import TensorFlow on a worker thread; ``state.tf_ready`` flips when it is done."""
        from tlstudio.workers.tf_loader import TFLoader, tensorflow_loaded

        if self.state.tf_ready or self._tf_handle is not None:
            return
        if tensorflow_loaded():
            self.state.set_tf_ready(True)
            return
        worker = TFLoader()
        worker.succeeded.connect(self._tf_loaded)
        worker.failed.connect(self._tf_failed)
        self._tf_worker = worker
        self._tf_handle = self._handles.add(start_worker(worker, name="tf-loader"))
        self._on_tf_ready(False)

    def _tf_loaded(self, text: str) -> None:
        self.state.set_tf_ready(True)
        self.state.message(str(text))

    def _tf_failed(self, text: str) -> None:
        self.tf_icon.setPixmap(icon("error").pixmap(14, 14))
        self.tf_label.setText("TensorFlow failed to load")
        self.tf_label.setToolTip(text)
        QMessageBox.critical(self, "TensorFlow", f"TensorFlow could not be loaded: {text}")

    # --- dataset ---------------------------------------------------------------------------------

    def choose_dataset_folder(self) -> None:
        start = settings.get("dialogs/last_dir") or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images (one subfolder per class)", start)
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
        settings.put("dialogs/last_dir", str(Path(folder).parent))
        page = self.page("data")
        if hasattr(page, "open_folder"):
            page.open_folder(folder)
        elif self.state.project.train.data_dir != str(Path(folder).resolve()):
            self.state.set_scan(None)
            self.state.update_train_config(data_dir=str(Path(folder).resolve()))
        self.go_to("data")

    # --- projects --------------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the user cancelled what they were doing."""
        if not self.state.dirty:
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"The project \u201c{self.state.project_title()}\u201d has unsaved changes. Save them?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        if answer == QMessageBox.StandardButton.Discard:
            self._remove_autosave()
            return True
        return False

    def new_project(self) -> None:
        if self.state.training:
            QMessageBox.information(self, "New project", "Please stop the training first.")
            return
        if not self.maybe_save():
            return
        self._shutdown_pages()
        self.state.set_project(Project())
        self.go_to("data")

    def open_project_dialog(self) -> None:
        start = settings.get("dialogs/last_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a project file; a damaged or newer file gives a message and changes nothing."""
        path = Path(path)
        if self.state.training:
            QMessageBox.information(self, "Open project", "Please stop the training first.")
            return False
        if not self.maybe_save():
            return False
        try:
            project = Project.load(path)
        except ProjectError as exc:
            if not path.exists():
                settings.remove_recent("recent/projects", str(path))
            QMessageBox.critical(self, "Cannot open the project", str(exc))
            return False
        recovered = False
        recovery = autosave_path(path)
        if recovery.is_file() and recovery.stat().st_mtime > path.stat().st_mtime:
            answer = QMessageBox.question(
                self,
                "Recover unsaved changes",
                "A recovery copy of this project with changes that were never saved exists. Open it instead?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.Yes,
            )
            if answer == QMessageBox.StandardButton.Yes:
                try:
                    project = Project.from_dict(_read_json(recovery), path)
                    recovered = True
                except (ProjectError, OSError, ValueError) as exc:
                    QMessageBox.warning(self, "Recovery copy", f"The recovery copy cannot be read: {exc}")
        self._shutdown_pages()
        self.state.set_project(project, path)
        if recovered:
            self.state.mark_dirty()
        settings.add_recent("recent/projects", path)
        settings.put("dialogs/last_dir", str(path.parent))
        self.state.message(f"Opened {path.name}")
        data_dir = project.train.data_dir
        if data_dir and Path(data_dir).is_dir():
            page = self.page("data")
            self.go_to("data")
            if hasattr(page, "open_folder"):
                page.open_folder(data_dir)
        elif data_dir:
            self.go_to("data")
            QMessageBox.warning(self, "Dataset folder missing",
                                f"The project's dataset folder {data_dir} cannot be found. Open it again from "
                                "the Data page.")
        else:
            self.go_to("data")
        return True

    def save_project(self) -> bool:
        if self.state.project_path is None:
            return self.save_project_as()
        return self._write_project(self.state.project_path)

    def save_project_as(self) -> bool:
        start = str(self.state.project_path or Path(settings.get("dialogs/last_dir") or Path.home()) /
                    f"{self.state.project.name or 'Untitled'}{PROJECT_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", start, PROJECT_FILTER)
        if not path:
            return False
        path = Path(path)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return self._write_project(path)

    def _sync_project(self) -> Project:
        """Fill in what lives in the pages (the layer tree's frozen state) before writing."""
        project = self.state.project
        if self.state.layer_tree is not None:
            project.train.layer_state = self.state.layer_tree.state()
        if self.state.project_path is None and project.name == "Untitled" and project.train.data_dir:
            project.name = Path(project.train.data_dir).name
        return project

    def _write_project(self, path: Path) -> bool:
        project = self._sync_project()
        old_path = self.state.project_path
        try:
            if path.exists():
                _check_overwritable(path)
            project.save(path)
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot save the project", str(exc))
            return False
        if old_path is None:
            _remove_quietly(autosave_path(None))
        elif old_path != path:
            _remove_quietly(autosave_path(old_path))
        _remove_quietly(autosave_path(path))
        self.state.mark_saved(path)
        settings.add_recent("recent/projects", path)
        settings.put("dialogs/last_dir", str(path.parent))
        self.state.message(f"Saved {path}")
        return True

    def autosave(self) -> Path | None:
        """Write a recovery copy when there are unsaved changes; the project file itself is untouched."""
        if not self.state.dirty:
            return None
        target = autosave_path(self.state.project_path)
        try:
            project = self._sync_project()
            from tlstudio.core.atomic import write_json

            target.parent.mkdir(parents=True, exist_ok=True)
            write_json(target, project.to_dict(self.state.project_path or target))
        except (OSError, ProjectError) as exc:
            log.warning("autosave to %s failed: %s", target, exc)
            return None
        return target

    def _remove_autosave(self) -> None:
        _remove_quietly(autosave_path(self.state.project_path))

    def offer_recovery(self) -> bool:
        """At start-up: offer the recovery copy of an untitled project left by a crash."""
        path = autosave_path(None)
        if not path.is_file():
            return False
        answer = QMessageBox.question(
            self,
            "Recover unsaved work",
            "tlstudio closed without saving an untitled project last time. Open the recovery copy?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        if answer != QMessageBox.StandardButton.Yes:
            _remove_quietly(path)
            return False
        try:
            project = Project.from_dict(_read_json(path), path)
        except (ProjectError, OSError, ValueError) as exc:
            QMessageBox.warning(self, "Recovery copy", f"The recovery copy cannot be read: {exc}")
            return False
        self.state.set_project(project, None)
        self.state.mark_dirty()
        if project.train.data_dir and Path(project.train.data_dir).is_dir():
            self.open_dataset(project.train.data_dir)
        return True

    # --- models and export -----------------------------------------------------------------------

    def open_model_dialog(self) -> None:
        start = settings.get("dialogs/last_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str | os.PathLike) -> None:
        """Load a model file on a worker; then show where it comes from and offer to test it."""
        from tlstudio.workers.model_worker import OpenModelWorker

        if self._open_model_handle is not None and self._open_model_handle.is_running():
            self.state.message("A model is already being opened")
            return
        path = str(path)
        settings.add_recent("recent/models", path)
        settings.put("dialogs/last_dir", str(Path(path).parent))
        worker = OpenModelWorker(path)
        worker.succeeded.connect(self._model_opened)
        worker.failed.connect(self._model_open_failed)
        worker.message.connect(self._show_message)
        self._open_model_worker = worker
        self._open_model_handle = self._handles.add(start_worker(worker, name="open-model"))
        waiting = "" if self.state.tf_ready else " (waiting for TensorFlow to load)"
        self.state.message(f"Opening {Path(path).name}...{waiting}")

    def _model_opened(self, info) -> None:
        self.last_model_info = info
        self.state.message(f"Opened {Path(info.path).name}: {info.source_label}")
        choice = self.ask_model_action(info)
        if choice == "test":
            self.state.set_opened_model(info.path)
            self.go_to("test")
        elif choice == "base":
            self.state.update_train_config(base_model_path=info.path, cut_layer=None, weights="imagenet")
            self.go_to("model")

    def ask_model_action(self, info) -> str:
        """Show the model's facts; return "test", "base" or "" (closed)."""
        labels = ", ".join(info.labels[:12]) + (" ..." if info.labels and len(info.labels) > 12 else "") \
            if info.labels else "none found"
        notes = "".join(f"<li>{n}</li>" for n in info.notes)
        box = QMessageBox(self)
        box.setWindowTitle("Model opened")
        box.setIcon(QMessageBox.Icon.Information)
        box.setText(f"<b>{Path(info.path).name}</b>")
        box.setInformativeText(
            f"Made with: <b>{info.source_label}</b><br>"
            f"Input: {info.input_size[0]} x {info.input_size[1]} pixels<br>"
            f"Classes: {info.num_outputs if info.num_outputs is not None else '?'} "
            f"(labels: {labels})<br>"
            f"Parameters: {info.params:,}"
            + (f"<ul>{notes}</ul>" if notes else "")
        )
        test = box.addButton("Test it", QMessageBox.ButtonRole.AcceptRole)
        base = box.addButton("Train on top of it", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        box.exec()
        clicked = box.clickedButton()
        return "test" if clicked is test else "base" if clicked is base else ""

    def _model_open_failed(self, text: str) -> None:
        QMessageBox.critical(self, "Cannot open the model", text)

    def open_export_dialog(self) -> None:
        if not _module_exists("tlstudio.gui.dialogs.export"):
            QMessageBox.information(self, "Export", "Exporting is not available in this build.")
            return
        if not self.state.current_run and not self.state.opened_model:
            QMessageBox.information(self, "Export", "Train a model first (or open one with File > Open Model).")
            return
        from tlstudio.gui.dialogs.export import ExportDialog

        dialog = ExportDialog(self.state, self, run_dir=self.state.current_run)
        dialog.exec()

    # --- drag and drop ---------------------------------------------------------------------------

    @staticmethod
    def _dropped_paths(mime) -> list[Path]:
        if mime is None or not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:
        paths_ = self._dropped_paths(event.mimeData())
        if paths_ and (paths_[0].is_dir() or paths_[0].suffix.lower() in (*MODEL_SUFFIXES, PROJECT_SUFFIX)):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths_ = self._dropped_paths(event.mimeData())
        if not paths_:
            event.ignore()
            return
        target = paths_[0]
        if target.is_dir():
            self.open_dataset(target)
        elif target.suffix.lower() in MODEL_SUFFIXES:
            self.open_model(target)
        elif target.suffix.lower() == PROJECT_SUFFIX:
            self.open_project(target)
        else:
            self.state.message(f"{target.name} is neither a folder, a model nor a project")
            event.ignore()
            return
        event.acceptProposedAction()

    # --- closing ---------------------------------------------------------------------------------

    def _shutdown_pages(self) -> None:
        for page in list(self.pages.values()):
            stop = getattr(page, "shutdown", None)
            if callable(stop):
                try:
                    stop()
                except Exception:
                    log.error("page shutdown failed:\n%s", traceback.format_exc())

    def shutdown(self) -> None:
        """Cancel and wait for every worker of the window and its pages."""
        self._autosave_timer.stop()
        self._shutdown_pages()
        self._handles.cancel_all()
        self._handles.wait_all()

    def closeEvent(self, event) -> None:
        if not self._closing:
            if self.state.training:
                answer = QMessageBox.question(
                    self, "Training in progress", "A model is training. Stop the training and quit?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
            if not self.maybe_save():
                event.ignore()
                return
            self._closing = True
        settings.put("window/geometry", self.saveGeometry())
        key = self.current_step()
        if key:
            settings.put("window/step", key)
        self.shutdown()
        event.accept()


def autosave_path(project_path: Path | None) -> Path:
    """Where the recovery copy of a project goes: beside the file, or in the data home when untitled."""
    if project_path is not None:
        return Path(str(project_path) + ".autosave")
    return paths.data_home() / "autosave" / f"untitled{PROJECT_SUFFIX}"


def _check_overwritable(path: Path) -> None:
    """Refuse to overwrite a project written by a newer tlstudio (it may hold settings this one would drop)."""
    try:
        data = _read_json(path)
    except (OSError, ValueError):
        return
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > PROJECT_SCHEMA_VERSION:
        raise ProjectError(f"{path.name} was saved by a newer tlstudio; save under another name to keep it intact")


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass

