"""The Data step: scan a folder, show its classes, pictures, problems and warnings, and the split settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data.scan import LEAKAGE_PREFIX
from tlstudio.gui import file_dialogs, settings
from tlstudio.gui.curation_hooks import install_on_data_page
from tlstudio.gui.state import AppState
from tlstudio.gui.widgets.class_chart import SPLIT_LABELS, ClassBarChart
from tlstudio.gui.widgets.common import add_banners, button, heading, hint, icon, share_columns
from tlstudio.gui.widgets.fields import combo_box, set_quietly, spin_box
from tlstudio.gui.widgets.thumbnails import ThumbnailModel, ThumbnailView
from tlstudio.workers.base import WorkerHandle, create_worker, registry


class DatasetPage(QWidget):
    """``DatasetPage(state, parent)``: :meth:`open_folder` scans on a worker and fills the page."""

    scan_finished = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._handle: WorkerHandle | None = None
        self._folder: str | None = None
        self._filling = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)

        header = QHBoxLayout()
        self.title = heading("Dataset")
        header.addWidget(self.title)
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header.addWidget(self.folder_label, 1)
        self.change_button = QPushButton(icon("folder"), "Change folder...")
        self.change_button.clicked.connect(self.choose_folder)
        self.rescan_button = button("Rescan", self.rescan,
                                    "Scan the folder again (after adding or removing pictures)")
        header.addWidget(self.change_button)
        header.addWidget(self.rescan_button)
        outer.addLayout(header)

        self.busy, self.error_banner, self.warning_banner = add_banners(outer, self.cancel_scan, "error", "warning")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter, 1)

        # Left: summary, classes table, chart, split settings.
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 4, 0)
        self.summary = QLabel("No folder scanned yet.")
        self.summary.setWordWrap(True)
        lv.addWidget(self.summary)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.itemSelectionChanged.connect(self._class_selected)
        self.chart = ClassBarChart()
        lv.addWidget(self.chart)
        lv.addWidget(self.class_table)

        self.split_box = QGroupBox("Split for validation and testing")
        form = QFormLayout(self.split_box)
        self.val_spin = spin_box(4, 50)  # the minimum reads "Automatic": the share is chosen from the smallest class
        self.val_spin.setSuffix(" %")
        self.val_spin.setSpecialValueText("Automatic")
        self.val_spin.setToolTip("Share of each class kept aside to check the model during training. "
                                 "Automatic: 20-30 %, more when classes are small")
        self.test_spin = spin_box(0, 40)
        self.test_spin.setSuffix(" %")
        self.test_spin.setToolTip("Share of each class kept aside for a final, untouched test (0 = none)")
        self.seed_spin = spin_box(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed always gives the same split")
        form.addRow("Validation", self.val_spin)
        form.addRow("Test", self.test_spin)
        form.addRow("Seed", self.seed_spin)
        self.split_note = hint("")
        form.addRow(self.split_note)
        for spin in (self.val_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self._split_edited)
        self.presplit_note = hint("This folder is already split into train / validation / test folders: "
                                  "those splits are used as they are.")
        lv.addWidget(self.split_box)
        lv.addWidget(self.presplit_note)
        lv.addStretch(1)
        splitter.addWidget(left)

        # Right: pictures and problems.
        self.tabs = QTabWidget()
        images = QWidget()
        iv = QVBoxLayout(images)
        iv.setContentsMargins(4, 4, 4, 4)
        filter_row = QHBoxLayout()
        filter_row.addWidget(QLabel("Show"))
        self.class_combo = combo_box()
        self.class_combo.currentIndexChanged.connect(self._filter_images)
        filter_row.addWidget(self.class_combo)
        self.split_combo = combo_box()
        self.split_combo.currentIndexChanged.connect(self._filter_images)
        filter_row.addWidget(self.split_combo)
        self.image_count = hint("")
        filter_row.addWidget(self.image_count, 1)
        iv.addLayout(filter_row)
        size = settings.get("dataset/thumbnail_size")
        self.thumb_model = ThumbnailModel(size=max(48, min(256, size)), parent=self)
        self.thumb_view = ThumbnailView(self.thumb_model.size)
        self.thumb_view.setModel(self.thumb_model)
        self.thumb_view.doubleClicked.connect(self._open_image)
        iv.addWidget(self.thumb_view, 1)
        self.tabs.addTab(images, "Pictures")

        problems = QWidget()
        pv = QVBoxLayout(problems)
        pv.setContentsMargins(4, 4, 4, 4)
        self.problems_hint = hint("Files that look like images but cannot be used, and why. They are left out of "
                                  "training; fix or remove them and press Rescan.")
        pv.addWidget(self.problems_hint)
        self.problems = QTableWidget(0, 3)
        self.problems.setHorizontalHeaderLabels(["File", "Status", "Reason"])
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.problems.verticalHeader().setVisible(False)
        self.problems.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.problems.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.problems.horizontalHeader().setStretchLastSection(True)
        self.problems.setColumnWidth(0, 260)
        self.problems.doubleClicked.connect(self._problem_double_clicked)
        self.problems.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        reveal = QAction(icon("folder"), "Open containing folder", self.problems)
        reveal.triggered.connect(self.open_problem_folder)
        self.problems.addAction(reveal)
        pv.addWidget(self.problems, 1)
        prow = QHBoxLayout()
        self.open_folder_button = QPushButton(icon("folder"), "Open containing folder")
        self.open_folder_button.clicked.connect(self.open_problem_folder)
        prow.addWidget(self.open_folder_button)
        prow.addStretch(1)
        pv.addLayout(prow)
        self.tabs.addTab(problems, "Problems")
        splitter.addWidget(self.tabs)
        share_columns(splitter, (2, 3), (360, 640))

        state.dataset_changed.connect(self._refresh)
        state.project_changed.connect(self._project_changed)
        state.train_config_changed.connect(self._load_split_settings)
        self._load_split_settings()
        self._refresh()
        install_on_data_page(self)  # editing bar, thumbnail menu (move / exclude), drops and paste

    # --- scanning --------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = file_dialogs.open_folder(self, "Open a folder of images (one subfolder per class)", self._folder)
        if folder:
            settings.add_recent("recent/folders", folder)
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> None:
        """Scan ``folder`` on a worker; the page fills in when it is done."""
        folder = str(Path(folder).expanduser().resolve())
        self.cancel_scan(wait=True)
        self._folder = folder
        if self.state.project.train.data_dir != folder:
            self.state.update_train_config(data_dir=folder)
        if self.state.scan is not None and str(Path(self.state.scan.root).resolve()) != folder:
            self.state.set_scan(None)
        self.folder_label.setText(folder)
        self.folder_label.setToolTip(folder)
        self.error_banner.set_messages([])
        from tlstudio.core.data.scan import scan_dataset

        if self._handle is not None:
            self._handle.detach()
        self.busy.start(f"Scanning {Path(folder).name}...")
        self.rescan_button.setEnabled(False)
        self._handle = create_worker(scan_dataset, folder, _name="scan", _owner=self, _connect={
            "progress": self.busy.set_progress, "finished": self._scan_succeeded,
            "failed": self._scan_failed, "cancelled": self._scan_cancelled})
        self.state.message(f"Scanning {folder}...")

    def rescan(self) -> None:
        folder = self._folder or self.state.project.train.data_dir
        if folder:
            self.open_folder(folder)

    def is_scanning(self) -> bool:
        return self._handle is not None and self._handle.is_running()

    def cancel_scan(self, wait: bool = False) -> None:
        if self._handle is not None and self._handle.is_running():
            self._handle.cancel()
            self.busy.cancel_button.setEnabled(False)
            self.busy.set_text("Cancelling...")
            if wait:
                self._handle.wait()

    def shutdown(self) -> None:
        """Cancel and wait for the scan and the thumbnail worker (the page stays usable)."""
        registry.shutdown(owner=self)
        self.thumb_model.shutdown()

    def _scan_done(self) -> None:
        self.busy.stop()
        self.rescan_button.setEnabled(True)

    def _scan_succeeded(self, scan) -> None:
        self._scan_done()
        self.state.set_scan(scan)
        n = len(scan.usable())
        self.state.message(f"Scanned {Path(scan.root).name}: {n} images in {len(scan.classes)} classes")
        self.scan_finished.emit("finished")

    def _scan_failed(self, text: str) -> None:
        self._scan_done()
        self.error_banner.set_messages([text])
        self.state.message(text)
        self.scan_finished.emit("failed")

    def _scan_cancelled(self) -> None:
        self._scan_done()
        if self.state.scan is None:
            self.error_banner.set_messages(["The scan was cancelled. Press Rescan to scan the folder again."])
        self.state.message("Scan cancelled")
        self.scan_finished.emit("cancelled")

    # --- showing the scan ------------------------------------------------------------------------

    def _project_changed(self) -> None:
        self.cancel_scan(wait=True)
        self._folder = self.state.project.train.data_dir or None
        self._load_split_settings()
        self._refresh()

    def _refresh(self) -> None:
        scan = self.state.scan
        folder = self._folder or self.state.project.train.data_dir
        self.folder_label.setText(folder or "")
        self.rescan_button.setEnabled(bool(folder) and not self.is_scanning())
        if scan is None:
            self.summary.setText("Scanning..." if self.is_scanning() else "No folder scanned yet.")
            self.class_table.setRowCount(0)
            self._fit_class_table()
            self.chart.set_data([], [])
            self.warning_banner.set_messages([])
            self.problems.setRowCount(0)
            self.tabs.setTabText(1, "Problems")
            self.thumb_model.set_files(None, [])
            self.class_combo.clear()
            self.split_combo.clear()
            self.split_combo.hide()
            self.split_box.setVisible(True)
            self.presplit_note.hide()
            self.image_count.setText("")
            return
        self._folder = str(scan.root)
        self.folder_label.setText(str(scan.root))
        self.error_banner.set_messages([])
        usable = scan.usable()
        skipped = scan.skipped()
        ignored = scan.ignored()
        splits = scan.splits() if scan.presplit else []
        parts = [f"<b>{len(usable)}</b> usable images in <b>{len(scan.classes)}</b> classes"]
        if splits:
            parts.append("split into " + ", ".join(
                f"{SPLIT_LABELS[s].lower()} {len(scan.usable(s))}" for s in splits))
        if skipped:
            parts.append(f"<b>{len(skipped)}</b> skipped (see Problems)")
        if ignored:
            parts.append(f"{len(ignored)} other files ignored")
        self.summary.setText("; ".join(parts) + ".")
        warnings = list(scan.warnings)
        if len(scan.classes) < 2:
            warnings.insert(0, "At least two classes (subfolders with images) are needed to train a classifier.")
        # Leakage makes the validation numbers meaningless: shown in red, above the other warnings.
        self.error_banner.set_messages([w for w in warnings if w.startswith(LEAKAGE_PREFIX)])
        self.warning_banner.set_messages([w for w in warnings if not w.startswith(LEAKAGE_PREFIX)])

        # Classes table and chart.
        counts_total = scan.class_counts()
        per_split = {s: scan.class_counts(s) for s in splits}
        headers = ["Class", *[SPLIT_LABELS[s] for s in splits], "Images"]
        self.class_table.clear()
        self.class_table.setColumnCount(len(headers))
        self.class_table.setHorizontalHeaderLabels(headers)
        self.class_table.setRowCount(len(scan.classes))
        for r, name in enumerate(scan.classes):
            self.class_table.setItem(r, 0, QTableWidgetItem(name))
            values = [per_split[s].get(name, 0) for s in splits] + [counts_total.get(name, 0)]
            for c, v in enumerate(values, start=1):
                item = QTableWidgetItem(str(v))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if v == 0:
                    item.setIcon(icon("warning"))
                self.class_table.setItem(r, c, item)
        self._fit_class_table()
        header = self.class_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(headers)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        rows = [(name, [per_split[s].get(name, 0) for s in splits] if splits else [counts_total.get(name, 0)])
                for name in scan.classes]
        self.chart.set_data(rows, splits or ["all"])

        # Problems.
        problems = skipped + ignored
        self.problems.setRowCount(len(problems))
        for r, rec in enumerate(problems):
            name = QTableWidgetItem(rec.path)
            name.setData(Qt.ItemDataRole.UserRole, rec.path)
            name.setToolTip(rec.path)
            name.setIcon(icon("warning" if rec.status == "skipped" else "pending"))
            self.problems.setItem(r, 0, name)
            self.problems.setItem(r, 1, QTableWidgetItem(rec.status))
            reason = QTableWidgetItem(rec.reason or "")
            reason.setToolTip(rec.reason or "")
            self.problems.setItem(r, 2, reason)
        self.tabs.setTabText(1, f"Problems ({len(skipped)})" if skipped else "Problems")
        self.tabs.setTabIcon(1, icon("warning") if skipped else icon(""))
        self.open_folder_button.setEnabled(bool(problems))

        # Picture filters.
        self._filling = True
        self.class_combo.clear()
        self.class_combo.addItem(f"All classes ({len(usable)})", None)
        for name in scan.classes:
            self.class_combo.addItem(f"{name} ({counts_total.get(name, 0)})", name)
        self.split_combo.clear()
        if splits:
            self.split_combo.addItem("All splits", None)
            for s in splits:
                self.split_combo.addItem(SPLIT_LABELS[s], s)
        self.split_combo.setVisible(bool(splits))
        self._filling = False
        self.split_box.setVisible(not scan.presplit)
        self.presplit_note.setVisible(scan.presplit)
        self._update_split_note()
        self._filter_images()

    def _fit_class_table(self) -> None:
        """As tall as its rows (up to about a dozen), so the page has no empty table area."""
        table = self.class_table
        rows = min(table.rowCount(), 12)
        height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth() + 2
        height += sum(table.rowHeight(r) for r in range(rows)) if rows else table.verticalHeader().defaultSectionSize()
        table.setFixedHeight(height)

    def _class_selected(self) -> None:
        rows = {i.row() for i in self.class_table.selectedItems()}
        if len(rows) == 1 and self.state.scan is not None:
            row = rows.pop()
            self.class_combo.setCurrentIndex(row + 1)

    def _filter_images(self) -> None:
        if self._filling:
            return
        scan = self.state.scan
        if scan is None:
            self.thumb_model.set_files(None, [])
            return
        cls = self.class_combo.currentData()
        split = self.split_combo.currentData() if self.split_combo.isVisible() or scan.presplit else None
        records = [r for r in scan.usable(split) if cls is None or r.class_name == cls]
        self.thumb_model.set_files(scan.root, records)
        self.image_count.setText(f"{len(records)} pictures")

    def _open_image(self, index) -> None:
        path = self.thumb_model.path_of(index.row())
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _problem_double_clicked(self, _index) -> None:
        self.open_problem_folder()

    def selected_problem(self) -> Path | None:
        scan = self.state.scan
        if scan is None:
            return None
        rows = sorted({i.row() for i in self.problems.selectedItems()})
        if not rows:
            if self.problems.rowCount() == 0:
                return None
            rows = [0]
        rel = self.problems.item(rows[0], 0).data(Qt.ItemDataRole.UserRole)
        return Path(scan.root) / rel

    def open_problem_folder(self) -> bool:
        """Open the folder holding the selected problem file in the system's file manager."""
        path = self.selected_problem()
        if path is None:
            return False
        return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))))

    # --- split settings --------------------------------------------------------------------------

    def _load_split_settings(self) -> None:
        split = self.state.project.train.split
        self._filling = True
        try:  # a field being edited keeps what the person types
            auto = split.val_fraction is None
            set_quietly(self.val_spin, self.val_spin.minimum() if auto else round(split.val_fraction * 100))
            set_quietly(self.test_spin, round(split.test_fraction * 100))
            set_quietly(self.seed_spin, int(split.seed))
        finally:
            self._filling = False
        self._update_split_note()

    def _split_edited(self) -> None:
        if self._filling:
            return
        val = self._val_share()
        test = self.test_spin.value() / 100
        if val + test >= 0.9:
            test = max(0.0, round(0.85 - val, 2))
            self._filling = True
            self.test_spin.setValue(round(test * 100))
            self._filling = False
        auto = self.val_spin.value() == self.val_spin.minimum()
        self.state.update_train_config(split={"val_fraction": None if auto else val, "test_fraction": test,
                                              "seed": self.seed_spin.value()})
        self._update_split_note()

    def _val_share(self) -> float:
        """The validation share shown: the automatic choice for this folder when the field reads "Automatic"."""
        if self.val_spin.value() != self.val_spin.minimum():
            return self.val_spin.value() / 100
        from tlstudio.core.data.holdout import DEFAULT_VAL_FRACTION, auto_val_fraction

        scan = self.state.scan
        return auto_val_fraction(scan.class_counts(None).values()) if scan is not None else DEFAULT_VAL_FRACTION

    def _update_split_note(self) -> None:
        scan = self.state.scan
        if scan is None or scan.presplit:
            self.split_note.setText("")
            return
        n = len(scan.usable())
        val = self._val_share()
        test = self.test_spin.value() / 100
        n_val = round(n * val)
        n_test = round(n * test)
        auto = self.val_spin.value() == self.val_spin.minimum()
        self.split_note.setText((f"Automatic: {val:.0%} for validation. " if auto else "") + f"About {n - n_val - n_test} pictures for training, {n_val} for validation"
                                + (f", {n_test} for testing." if n_test else "."))
