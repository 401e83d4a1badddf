"""AppState: the one object the pages share.

Every page is constructed as ``Page(state, parent)``; it reads the project, the scan and the layer
tree from here and listens to the signals to refresh itself. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlstudio.core import paths
from tlstudio.core.config import AugmentConfig, SplitConfig, TrainConfig
from tlstudio.core.project import Project, RunRecord

_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


class AppState(QObject):
    """Shared state of the main window and its pages.

    Attributes
    ----------
    project : Project
        The open project (an untitled one at start).
    project_path : Path | None
        Where the project was last saved or opened from; None while untitled.
    dirty : bool
        True when the project has changes not yet saved.
    scan : DatasetScan | None
        The last dataset scan of ``project.train.data_dir``.
    layer_tree : LayerTree | None
        The pure layer tree of the model built on the Model page.
    tf_ready : bool
        True once TensorFlow has been imported in the background.
    current_run : str | None
        The run folder shown on the Evaluate and Test pages.
    training : bool
        True while a training run is in progress.
    opened_model : str | None
        A model file opened through File > Open model... (or dropped), to test on the Test page.
    tested_model : str | None
        The run folder or model file the Test page predicts with now (what its side-bar step names).
    """

    project_changed = Signal()
    dataset_changed = Signal()
    model_changed = Signal()
    train_config_changed = Signal()
    runs_changed = Signal()
    current_run_changed = Signal(str)
    tf_ready_changed = Signal(bool)
    dirty_changed = Signal(bool)
    training_changed = Signal(bool)
    status_message = Signal(str)
    opened_model_changed = Signal(str)
    tested_model_changed = Signal(str)
    title_changed = Signal()  # the project's name changed (it follows the dataset while unsaved)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project = Project()
        self.project_path: Path | None = None
        self.dirty: bool = False
        self.scan = None  # DatasetScan | None
        self.layer_tree = None  # LayerTree | None
        self.tf_ready: bool = False
        self.current_run: str | None = None
        self.training: bool = False
        self.opened_model: str | None = None
        self.tested_model: str | None = None
        self._reserved_runs: list[Path] = []  # folders made by new_run_dir(), removed again while empty

    # --- project ---------------------------------------------------------------------------------

    def set_project(self, project: Project, path: str | Path | None = None) -> None:
        """Replace the whole project (New / Open); clears the scan and the layer tree."""
        self.project = project
        self.project_path = Path(path) if path is not None else None
        self.scan = None
        self.layer_tree = None
        runs = project.runs
        self.current_run = runs[-1].run_dir if runs else None
        self._set_dirty(False)
        self.project_changed.emit()
        self.dataset_changed.emit()
        self.model_changed.emit()
        self.train_config_changed.emit()
        self.runs_changed.emit()
        self.current_run_changed.emit(self.current_run or "")

    def mark_saved(self, path: str | Path) -> None:
        """Record that the project was written to ``path``."""
        self.project_path = Path(path)
        self._set_dirty(False)
        self.project_changed.emit()

    def mark_dirty(self) -> None:
        self._set_dirty(True)

    def _set_dirty(self, value: bool) -> None:
        if self.dirty != value:
            self.dirty = value
            self.dirty_changed.emit(value)

    def project_title(self) -> str:
        """The name shown in the title bar: the file name, else the project's name."""
        if self.project_path is not None:
            return self.project_path.stem
        return self.project.name or "Untitled"

    def _name_after_dataset(self) -> None:
        # An unsaved project is called after the dataset chosen last (a saved one by its file name).
        if self.project_path is None and self.project.train.data_dir:
            self.project.name = Path(self.project.train.data_dir).name
            self.title_changed.emit()

    # --- training configuration ------------------------------------------------------------------

    def train_config(self) -> TrainConfig:
        """A copy of ``project.train`` with ``data_dir`` filled in.

        ``layer_state`` is the person's own choice of trainable layers (set when they edit the layer tree),
        never the tree shown after "Build model": looking at the layers does not change what trains.
        """
        config = copy.deepcopy(self.project.train)
        if self.scan is not None and not config.data_dir:
            config.data_dir = str(self.scan.root)
        return config

    def update_train_config(self, **changes: Any) -> None:
        """Set fields of ``project.train``, mark the project dirty and emit ``train_config_changed``.

        ``split`` and ``augment`` accept a dataclass or a dict of the fields to change.
        Unknown field names raise ``KeyError`` (a programming error, not a user one).
        """
        unknown = sorted(set(changes) - _TRAIN_FIELDS)
        if unknown:
            raise KeyError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        train = self.project.train
        changed = False
        for name, value in changes.items():
            if name == "split" and isinstance(value, dict):
                value = replace(train.split, **value)
            elif name == "augment" and isinstance(value, dict):
                value = replace(train.augment, **value)
            elif name == "split" and not isinstance(value, SplitConfig):
                raise TypeError("split must be a SplitConfig or a dict")
            elif name == "augment" and not isinstance(value, AugmentConfig):
                raise TypeError("augment must be an AugmentConfig or a dict")
            if getattr(train, name) != value:
                setattr(train, name, copy.deepcopy(value))
                changed = True
                if name == "data_dir":
                    self._name_after_dataset()
        if changed:
            self._set_dirty(True)
            self.train_config_changed.emit()

    # --- dataset and model -----------------------------------------------------------------------

    def set_scan(self, scan) -> None:
        """Store a finished scan (or None) and emit ``dataset_changed``."""
        self.scan = scan
        if scan is not None:
            root = str(Path(scan.root))
            if self.project.train.data_dir != root:
                previous = self.project.train.data_dir
                self.project.train.data_dir = root
                self._name_after_dataset()
                self._set_dirty(True)
                self.train_config_changed.emit()
                if previous:
                    self._forget_shown_run()
        self.dataset_changed.emit()

    def _forget_shown_run(self) -> None:
        """Another dataset: the Train, Evaluate and Test pages stop showing the previous dataset's run."""
        tested = self.tested_model
        if tested is not None and (self.find_run(tested) is not None or Path(tested).parent.as_posix() in
                                   {Path(r.run_dir).as_posix() for r in self.project.runs}):
            self.set_tested_model(None)
        self.set_current_run(None)

    def set_layer_tree(self, tree) -> None:
        """Store the layer tree of a freshly built model (or None) and emit ``model_changed``."""
        self.layer_tree = tree
        self.model_changed.emit()

    def set_tf_ready(self, ready: bool = True) -> None:
        if self.tf_ready != ready:
            self.tf_ready = ready
            self.tf_ready_changed.emit(ready)

    def set_opened_model(self, path: str | Path | None) -> None:
        """Remember a model file the user opened to test; emits ``opened_model_changed``."""
        value = str(path) if path else None
        self.opened_model = value
        self.opened_model_changed.emit(value or "")

    def set_tested_model(self, source: str | Path | None) -> None:
        """The Test page's choice changed; emits ``tested_model_changed``."""
        value = str(source) if source else None
        if value != self.tested_model:
            self.tested_model = value
            self.tested_model_changed.emit(value or "")

    def message(self, text: str) -> None:
        """Show ``text`` in the main window's status bar."""
        self.status_message.emit(text)

    # --- runs ------------------------------------------------------------------------------------

    def add_run(self, record: RunRecord, current: bool = True) -> None:
        """Append a run (replacing the entry of the same folder: a resumed run), make it current unless told
        not to, mark dirty; emits ``runs_changed`` and ``current_run_changed``."""
        earlier = self.find_run(record.run_dir)
        if earlier is not None:
            self.project.runs.remove(earlier)
        self.project.runs.append(record)
        self._set_dirty(True)
        self.runs_changed.emit()
        if current:
            self.set_current_run(record.run_dir)

    def find_run(self, run_dir: str | Path) -> RunRecord | None:
        key = _norm(run_dir)
        for run in self.project.runs:
            if _norm(run.run_dir) == key:
                return run
        return None

    def remove_run(self, run_dir: str | Path) -> None:
        """Drop a run from the project (its folder on disk is left alone)."""
        key = _norm(run_dir)
        before = len(self.project.runs)
        self.project.runs = [r for r in self.project.runs if _norm(r.run_dir) != key]
        if len(self.project.runs) == before:
            return
        self._set_dirty(True)
        self.runs_changed.emit()
        if self.current_run is not None and _norm(self.current_run) == key:
            runs = self.project.runs
            self.set_current_run(runs[-1].run_dir if runs else None)

    def rename_run(self, run_dir: str | Path, name: str) -> None:
        run = self.find_run(run_dir)
        if run is None or run.name == name:
            return
        run.name = name
        self._set_dirty(True)
        self.runs_changed.emit()

    def relocate_run(self, run_dir: str | Path, new_dir: str | Path) -> None:
        """A run's folder was moved: point its record at ``new_dir`` (the current run follows)."""
        run = self.find_run(run_dir)
        if run is None:
            return
        was_current = self.current_run is not None and _norm(self.current_run) == _norm(run_dir)
        run.run_dir = str(Path(new_dir))
        self._set_dirty(True)
        self.runs_changed.emit()
        if was_current:
            self.current_run = None
            self.set_current_run(run.run_dir)

    def set_current_run(self, run_dir: str | Path | None) -> None:
        value = str(run_dir) if run_dir else None
        if value == self.current_run:
            return
        self.current_run = value
        self.current_run_changed.emit(value or "")

    def set_training(self, training: bool) -> None:
        if self.training != training:
            self.training = training
            if not training:
                self._drop_empty_run_dirs()
            self.training_changed.emit(training)

    def _drop_empty_run_dirs(self) -> None:
        # A run that failed before its first epoch leaves its folder empty: leave none behind.
        # rmdir removes only an empty folder, so nothing a run (or a person) put there is lost.
        for folder in self._reserved_runs:
            try:
                folder.rmdir()
            except OSError:
                pass
        self._reserved_runs = []

    def runs_root(self) -> Path:
        """Parent folder of new runs: ``<project>-runs/`` beside the project file, else ``paths.runs_dir()``."""
        if self.project_path is not None:
            return self.project_path.parent / f"{self.project_path.stem}-runs"
        return paths.runs_dir()

    def new_run_dir(self) -> Path:
        """Create and return a fresh, empty folder for the next run, named by date and time."""
        root = self.runs_root()
        root.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        candidate = root / stamp
        n = 2
        while True:
            try:
                candidate.mkdir()
                self._reserved_runs.append(candidate)
                return candidate
            except FileExistsError:
                candidate = root / f"{stamp}-{n}"
                n += 1


def _norm(p: str | Path) -> str:
    try:
        return str(Path(p).resolve())
    except OSError:
        return str(p)
