"""The model chooser of the Test page and the Export dialog: the project's runs, opened files, "Other...".

One widget, so both places list the same models with the same words: runs newest first (a run whose
folder holds no model is listed but cannot be chosen, with the reason in its tooltip), then model files
the person opened, then "Other model file..." which asks for one.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from tlstudio.core import run_folder
from tlstudio.gui import file_dialogs

OTHER_MODEL = "__other__"


def run_has_model(run_dir: str | Path) -> bool:
    return run_folder.has_model(run_dir)


def display_name(state, source: str | Path) -> str:
    """A run's name (else its folder's name), or a model file's name."""
    run = state.find_run(source)
    return run.name if run is not None and run.name else Path(source).name


def describe_loaded_model(info, name: str) -> str:
    """One line about a loaded model (a predict worker's ``ModelInfo``): its classes and input size."""
    labels = list(info.labels)
    shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
    size = info.input_size
    if isinstance(size, int):
        size = (size, size)
    size_text = f", input {size[0]}×{size[1]} px" if isinstance(size, tuple | list) and len(size) == 2 else ""
    return f"Model ready: {name}: {len(labels)} classes ({shown}){size_text}."


class ModelSourceBox(QComboBox):
    """``ModelSourceBox(state)``; :meth:`source` is the chosen run folder or model file (None when none).

    ``source_changed(str)`` fires when the person picks another model (not when the list is refilled
    and the choice stays).
    """

    source_changed = Signal(str)

    def __init__(self, state, parent: QWidget | None = None, *, allow_other: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.allow_other = allow_other
        self.extra_files: list[str] = []
        self.setMinimumContentsLength(24)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.activated.connect(self._on_activated)
        self.refresh()

    # --- contents ------------------------------------------------------------------------------------
    def refresh(self, preferred: str | Path | None = None) -> None:
        """Refill the list, keeping the current choice (else ``preferred``, the current run, the opened model)."""
        previous = self.source()
        self.blockSignals(True)
        self.clear()
        model = self.model()
        for run in reversed(self.state.project.runs):
            run_dir = Path(run.run_dir)
            extra = [run.base] if run.base else []
            if run.val_accuracy is not None:
                extra.append(f"val {run.val_accuracy:.1%}")
            if run.status and run.status != "finished":
                extra.append(run.status)
            label = (run.name or f"Run {run_dir.name}") + (f"  ({', '.join(extra)})" if extra else "")
            self.addItem(label, str(run_dir))
            if not run_has_model(run_dir):
                row = self.count() - 1
                self.setItemData(row, "The run folder holds no model", Qt.ItemDataRole.ToolTipRole)
                if isinstance(model, QStandardItemModel):
                    model.item(row).setEnabled(False)
        opened = self.state.opened_model
        for path in [p for p in (opened, preferred, *self.extra_files) if p]:
            if self.findData(str(path)) < 0 and Path(path).exists():
                kind = "Run folder" if Path(path).is_dir() else "Model file"
                self.addItem(f"{kind} {Path(path).name}", str(path))
        if self.allow_other:
            self.addItem("Other model file…", OTHER_MODEL)
        for wanted in (previous, preferred, self.state.current_run, opened):
            idx = self.findData(str(wanted)) if wanted else -1
            if idx >= 0 and self._choosable(idx):
                self.setCurrentIndex(idx)
                break
        else:
            first = next((i for i in range(self.count()) if self._choosable(i)), -1)
            self.setCurrentIndex(first)
        self.blockSignals(False)

    def _choosable(self, index: int) -> bool:
        model = self.model()
        data = self.itemData(index)
        if data in (None, OTHER_MODEL):
            return False
        return not isinstance(model, QStandardItemModel) or model.item(index).isEnabled()

    def source(self) -> str | None:
        """The run folder or model file chosen, or None."""
        data = self.currentData()
        return None if data in (None, OTHER_MODEL) else str(data)

    def set_source(self, source: str | Path, *, notify: bool = True) -> None:
        """Choose ``source`` (added to the list when it is not there)."""
        source = str(source)
        before = self.source()
        if self.findData(source) < 0:
            self.extra_files.append(source)
            self.refresh(preferred=source)
        self.setCurrentIndex(self.findData(source))
        if notify and self.source() != before:
            self.source_changed.emit(source)

    def _on_activated(self, index: int) -> None:
        if self.itemData(index) == OTHER_MODEL:
            before = self.source()
            self.refresh()  # "Other..." is never the choice itself
            path = file_dialogs.open_file(self, "Open a model", file_dialogs.MODEL_FILTER)
            if path:
                self.set_source(path)
            elif before:
                self.setCurrentIndex(self.findData(before))
            return
        self.source_changed.emit(self.source() or "")
