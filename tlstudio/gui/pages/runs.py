"""The Runs view: every run of the project in a table, with their curves overlaid for comparison.

The table reads each run's summary (falling back to the project's record of it); selecting rows
draws their history curves in two plots (accuracy and loss), one colour per run, validation
solid and training dashed. Runs can be renamed, removed (optionally with their folder) and opened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core import run_folder
from tlstudio.core.errors import TlstudioError
from tlstudio.core.humanize import format_seconds
from tlstudio.core.json_file import read_json
from tlstudio.gui import file_dialogs

RUN_COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RUN_ROLE = Qt.ItemDataRole.UserRole + 2


class _SortableItem(QTableWidgetItem):
    """Sorts by a value kept in SORT_ROLE (numbers as numbers), not by the shown text."""

    def __lt__(self, other) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None:
            return (a is None) > (b is None) if (a is None) != (b is None) else self.text() < other.text()
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


def _read_json(path: Path):
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


class RunSummary:
    """What the table shows of one run: the project's record, completed from the run folder."""

    def __init__(self, record) -> None:
        self.record = record
        self.run_dir = Path(record.run_dir)
        try:
            info = run_folder.read_summary(self.run_dir).to_dict()
        except run_folder.RunError:
            info = {}
        try:
            history = run_folder.read_history(self.run_dir)
        except run_folder.RunError:
            history = {}
        self.exists = self.run_dir.is_dir()
        self.name = record.name or self.run_dir.name
        self.base = info.get("base") or record.base or ""
        alpha = info.get("alpha")
        own_model = bool(info.get("base_model_path")) or any(c in self.base for c in "/\\") or \
            self.base.endswith((".keras", ".h5", ".hdf5"))
        if own_model:
            self.base = Path(self.base).name  # a file name, not a full path that pushes the columns away
        elif alpha not in (None, "", 1, 1.0):
            self.base += f", width {alpha}"
        self.frozen = info.get("frozen_summary") or record.frozen_summary or ""
        self.epochs_list = [e for e in history.get("epochs") or [] if isinstance(e, dict)]
        self.epochs = info.get("epochs_run") or record.epochs_run or len(self.epochs_list)
        # The accuracy of the model the run kept (evaluated after training), not the best epoch's:
        # with early stopping they agree, but a cancelled or fine-tuned run may differ.
        val = info.get("val_accuracy", record.val_accuracy)
        if val is None:
            vals = [
                e.get("val_accuracy") for e in self.epochs_list if isinstance(e.get("val_accuracy"), int | float)
            ]
            val = max(vals) if vals else None
        self.val_acc = val
        self.test_acc = info.get("test_accuracy", record.test_accuracy)
        self.seconds = info.get("train_seconds") or record.train_seconds or 0.0
        self.status = info.get("status") or record.status or ("missing" if not self.exists else "")
        if not self.exists:
            self.status = "folder missing"
        self.created = info.get("created") or record.created or ""
        # Which data the run learned: runs of several datasets can share one project.
        self.classes = [str(c) for c in info.get("classes") or []]
        self.dataset = ""
        try:
            config, classes, _ = run_folder.read_run_config(self.run_dir)
            self.dataset, self.classes = config.data_dir, self.classes or classes
        except (TlstudioError, OSError, ValueError):  # an old or damaged run: the columns stay empty
            pass

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """x (run epoch, 1-based) and y of one history key, skipping epochs that lack it."""
        xs, ys = [], []
        for i, e in enumerate(self.epochs_list):
            y = e.get(key)
            if isinstance(y, int | float):
                xs.append(float(e.get("run_epoch") or i + 1))
                ys.append(float(y))
        return xs, ys


class RunsView(QWidget):
    """Every run of the project: compare, rename, delete, open."""

    export_requested = Signal(str)  # a run folder the user wants to export

    # Name, accuracy and status first: they stay in view at any width; the wide Base and Frozen columns last.
    COLUMNS = ("Name", "Val accuracy", "Status", "Test acc", "Epochs", "Time", "Created", "Base", "Trainable part",
               "Dataset", "Classes")

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.summaries: dict[str, RunSummary] = {}
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {}
        self._colour_of: dict[str, tuple[int, int, int]] = {}
        self._refreshing = False

        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.info_label = QLabel()
        buttons.addWidget(self.info_label, 1)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_selected)
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self.open_selected_folder)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self.export_selected)
        self.locate_button = QPushButton("Locate folder…")
        self.locate_button.setToolTip("The run's folder was moved or deleted: point to where it is now")
        self.locate_button.clicked.connect(self.locate_selected)
        self.delete_button.setToolTip("Remove the selected runs from the project (Delete)")
        for b in (self.rename_button, self.delete_button, self.locate_button, self.open_button, self.export_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSortIndicator(self.COLUMNS.index("Created"), Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setMaximumSectionSize(320)
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        delete.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        delete.activated.connect(self.delete_selected)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.table.doubleClicked.connect(lambda _index: self.rename_selected())
        splitter.addWidget(self.table)

        plots = QWidget()
        plots_layout = QHBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        self.acc_plot = self._make_plot(
            "Accuracy  (validation solid, training dashed)", "accuracy", (-10, -10)
        )
        self.loss_plot = self._make_plot("Loss  (validation solid, training dashed)", "loss", (-10, 10))
        plots_layout.addWidget(self.acc_plot)
        plots_layout.addWidget(self.loss_plot)
        splitter.addWidget(plots)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)
        self.hint = QLabel(
            "Select one or more runs to overlay their curves (validation solid, training dashed)."
        )
        self.hint.setStyleSheet("color: palette(mid);")
        layout.addWidget(self.hint)

        state.runs_changed.connect(self.refresh)
        state.project_changed.connect(self.refresh)
        state.current_run_changed.connect(self._on_current_run_changed)
        self.refresh()

    def shutdown(self) -> None:
        """Nothing runs in the background here; part of every page's contract with the window."""

    def _make_plot(self, title: str, ylabel: str, legend_offset) -> pg.PlotWidget:
        plot = pg.PlotWidget()
        plot.setBackground("w")
        plot.setTitle(title, color="#333", size="10pt")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("bottom", "epoch")
        plot.setLabel("left", ylabel)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).enableAutoSIPrefix(False)
            plot.getAxis(axis).setTextPen("#333")
        plot.addLegend(offset=legend_offset, brush=pg.mkBrush(255, 255, 255, 200), labelTextColor="#222")
        return plot

    # --- the table --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every run of the project and keep the selection where possible."""
        selected = set(self.selected_runs())
        self._refreshing = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        self.summaries = {}
        runs = list(self.state.project.runs)
        for i, record in enumerate(runs):
            summary = RunSummary(record)
            key = str(summary.run_dir)
            self.summaries[key] = summary
            self._colour_of[key] = RUN_COLOURS[i % len(RUN_COLOURS)]
            self._add_row(summary)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        if not selected and self.state.current_run:
            selected = {str(Path(self.state.current_run))}
        self._select(selected)
        self._refreshing = False
        self.info_label.setText(
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} in this project"
            if runs
            else "No runs yet: train a model on the Train page."
        )
        self._update_buttons()
        self._redraw()

    def _add_row(self, s: RunSummary) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        key = str(s.run_dir)
        values = [
            (s.name, s.name.lower()),
            ("" if s.val_acc is None else f"{s.val_acc:.1%}", s.val_acc),
            (s.status, s.status),
            ("" if s.test_acc is None else f"{s.test_acc:.1%}", s.test_acc),
            (str(s.epochs or ""), float(s.epochs or 0)),
            (format_seconds(s.seconds), float(s.seconds or 0)),
            (s.created.replace("T", " ")[:16], s.created),
            (s.base, s.base.lower()),
            (s.frozen, s.frozen.lower()),
            (Path(s.dataset).name if s.dataset else "", s.dataset.lower()),
            (f"{len(s.classes)}: {', '.join(s.classes)}" if s.classes else "", len(s.classes)),
        ]
        for col, (text, sort_value) in enumerate(values):
            item = _SortableItem(text)
            item.setData(SORT_ROLE, sort_value)
            item.setData(RUN_ROLE, key)
            item.setToolTip(str(s.run_dir) if col == 0 else s.dataset if col == 9 else text)
            if col in (1, 3, 4, 5):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if col == 0:
                item.setForeground(QBrush(QColor(*self._colour_of[key])))
            if col == 2 and s.status not in ("finished", ""):
                item.setForeground(QBrush(QColor("#c0392b")))
            if not s.exists:  # a run whose folder is gone: greyed, and said so
                item.setToolTip(f"The folder {s.run_dir} cannot be found: locate it, or remove the run.")
                if col != 2:
                    item.setForeground(QBrush(QColor("#888888")))
            self.table.setItem(row, col, item)

    def _select(self, run_dirs: set[str]) -> None:
        self.table.clearSelection()
        model = self.table.selectionModel()
        from PySide6.QtCore import QItemSelectionModel

        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(RUN_ROLE) in run_dirs:
                model.select(
                    self.table.model().index(row, 0),
                    QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
                )

    def select_runs(self, run_dirs) -> None:
        """Select (and overlay) these runs."""
        self._select({str(Path(r)) for r in run_dirs})

    def selected_runs(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(RUN_ROLE) for r in rows]

    def _on_selection_changed(self) -> None:
        if self._refreshing:
            return
        self._update_buttons()
        self._redraw()
        runs = self.selected_runs()
        current = self.table.currentRow()
        if current >= 0 and self.table.item(current, 0) is not None:
            key = self.table.item(current, 0).data(RUN_ROLE)
            if key in runs:
                self.state.set_current_run(key)
                return
        if runs:
            self.state.set_current_run(runs[-1])

    def _on_current_run_changed(self, run_dir: str) -> None:
        if run_dir and not self.selected_runs() and str(Path(run_dir)) in self.summaries:
            self.select_runs([run_dir])

    def _update_buttons(self) -> None:
        runs = self.selected_runs()
        self.rename_button.setEnabled(len(runs) == 1)
        self.delete_button.setEnabled(bool(runs))
        missing = len(runs) == 1 and not self.summaries[runs[0]].exists
        self.locate_button.setVisible(missing)
        self.open_button.setEnabled(len(runs) == 1)
        self.export_button.setEnabled(len(runs) == 1 and run_folder.has_model(runs[0]))

    # --- the plots --------------------------------------------------------------------------------

    def _redraw(self) -> None:
        for plot in (self.acc_plot, self.loss_plot):
            plot.clear()
            legend = plot.plotItem.legend
            if legend is not None:
                legend.clear()
        self.curves = {}
        for key in self.selected_runs():
            summary = self.summaries.get(key)
            if summary is None:
                continue
            colour = self._colour_of.get(key, RUN_COLOURS[0])
            items = {}
            for plot, metric in ((self.acc_plot, "accuracy"), (self.loss_plot, "loss")):
                for prefix, style in (("val_", Qt.PenStyle.SolidLine), ("", Qt.PenStyle.DashLine)):
                    xs, ys = summary.series(prefix + metric)
                    if not xs:
                        continue
                    name = summary.name if prefix else None  # one legend entry per run
                    pen = pg.mkPen(colour, width=2.2 if prefix else 1.4, style=style)
                    item = plot.plot(
                        xs,
                        ys,
                        pen=pen,
                        name=name,
                        symbol="o" if prefix else None,
                        symbolSize=5,
                        symbolBrush=colour,
                        symbolPen=None,
                    )
                    items[prefix + metric] = item
            self.curves[key] = items
        self.hint.setVisible(not self.curves)
        self._fit_axes()

    def _fit_axes(self) -> None:
        """Sensible ranges: accuracy 0-1, loss from 0, whole epochs (a flat curve is not blown up to noise)."""
        epochs, losses = 0.0, []
        for items in self.curves.values():
            for key, item in items.items():
                xs, ys = item.getData()
                if xs is not None and len(xs):
                    epochs = max(epochs, float(max(xs)))
                if key.endswith("loss") and ys is not None and len(ys):
                    losses.extend(float(y) for y in ys if y == y and abs(y) != float("inf"))
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        if losses:
            self.loss_plot.setYRange(min(0.0, min(losses)), max(losses) * 1.05 or 1.0, padding=0.02)
        for plot in (self.acc_plot, self.loss_plot):
            axis = plot.getAxis("bottom")
            if 0 < epochs <= 20:
                axis.setTickSpacing(major=1 if epochs <= 10 else 2, minor=1)
                plot.setXRange(1, max(2.0, epochs), padding=0.03)
            else:
                axis.setTickSpacing()
                plot.enableAutoRange(axis="x")

    # --- actions ------------------------------------------------------------------------------------

    def rename_selected(self) -> None:
        runs = self.selected_runs()
        if len(runs) != 1:
            return
        summary = self.summaries[runs[0]]
        name, ok = QInputDialog.getText(self, "Rename run", "Name of the run:", text=summary.name)
        name = (name or "").strip()
        if ok and name:
            self.state.rename_run(runs[0], name)

    def delete_selected(self) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        choice = ask_delete(self, [self.summaries[r].name for r in runs])
        if choice is None:
            return
        failed = []
        for run_dir in runs:
            self.state.remove_run(run_dir)
            if choice == "delete-folder":
                path = Path(run_dir)
                if path.is_dir():
                    try:
                        shutil.rmtree(path)
                    except OSError as exc:
                        failed.append(f"{path}: {exc.strerror or exc}")
        if failed:
            QMessageBox.warning(
                self, "Delete runs", "Some folders could not be deleted:\n" + "\n".join(failed)
            )

    def locate_selected(self) -> bool:
        """Ask where a missing run's folder is now; True when the run points there afterwards."""
        runs = self.selected_runs()
        if len(runs) != 1:
            return False
        folder = file_dialogs.open_folder(self, f"Where is the folder of {self.summaries[runs[0]].name}?")
        if not folder:
            return False
        if not any((Path(folder) / name).is_file() for name in (run_folder.RUN_FILE, run_folder.MODEL_FILE)):
            QMessageBox.warning(self, "Locate folder", f"{folder} does not look like a run folder (no {run_folder.RUN_FILE}).")
            return False
        self.state.relocate_run(runs[0], folder)
        return True

    def open_selected_folder(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            QDesktopServices.openUrl(QUrl.fromLocalFile(runs[0]))

    def export_selected(self) -> None:
        runs = self.selected_runs()
        if len(runs) != 1:
            return
        self.export_requested.emit(runs[0])
        from tlstudio.gui.dialogs.export import ExportDialog

        dialog = ExportDialog(self.state, self, run_dir=runs[0])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()


def ask_delete(parent: QWidget, names: list[str]) -> str | None:
    """Ask how to delete runs: ``"remove"`` (keep the folders), ``"delete-folder"``, or None (cancel)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Delete runs")
    listed = "\n".join(f"• {n}" for n in names[:10]) + (
        f"\n… and {len(names) - 10} more" if len(names) > 10 else ""
    )
    box.setText(f"Remove {len(names)} run{'s' if len(names) != 1 else ''} from the project?\n\n{listed}")
    box.setInformativeText("You can keep the run folders on disk, or delete them with their models.")
    remove = box.addButton("Remove from project", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton("Remove and delete folders", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(remove)
    box.exec()
    clicked = box.clickedButton()
    if clicked is remove:
        return "remove"
    if clicked is delete:
        return "delete-folder"
    return None
