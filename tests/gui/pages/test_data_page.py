"""The Dataset page: drop a folder, scan on a worker, classes, thumbnails, problems, warnings, split settings."""

from __future__ import annotations

import threading

from PySide6.QtCore import QUrl
from support.qt_events import accepted_as_copy, drop


def wait_scanned(qtbot, page):
    qtbot.waitUntil(lambda: not page.is_scanning() and page.state.scan is not None, timeout=15000)


def test_dropping_a_folder_scans_it_and_fills_the_page(qtbot, main_window, image_folder, make_image):
    root = image_folder({"cats": 6, "dogs": 5})
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "cats" / "notes.txt").write_text("hello")
    event = drop(main_window, root)
    assert accepted_as_copy(event)
    page = main_window.page("data")
    wait_scanned(qtbot, page)
    assert not main_window.showing_welcome()
    state = main_window.state
    assert state.project.train.data_dir == str(root.resolve())
    assert [page.class_table.item(r, 0).text() for r in range(page.class_table.rowCount())] == ["cats", "dogs"]
    assert [page.class_table.item(r, 1).text() for r in range(2)] == ["6", "5"]
    assert page.chart.rows == [("cats", [6]), ("dogs", [5])]
    # Every skipped file is listed with its reason.
    listed = {page.problems.item(r, 0).text(): page.problems.item(r, 2).text() for r in range(page.problems.rowCount())}
    assert "dogs/empty.jpg" in listed and "empty" in listed["dogs/empty.jpg"]
    assert "Problems (1)" == page.tabs.tabText(1)
    assert main_window.sidebar.status["data"] == ("done", "11 images, 2 classes")
    # Thumbnails arrive from the worker.
    page.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: page.thumb_model.loaded_count() == 11, timeout=15000)
    page.class_combo.setCurrentIndex(2)  # dogs only
    assert page.thumb_model.rowCount() == 5
    assert {r.class_name for r in page.thumb_model.records} == {"dogs"}


def test_open_containing_folder_of_a_problem(qtbot, main_window, image_folder, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    root = image_folder({"a": 2, "b": 2})
    (root / "b" / "sub").mkdir()
    (root / "b" / "sub" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    main_window.open_dataset(root)
    page = main_window.page("data")
    wait_scanned(qtbot, page)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    page.problems.selectRow(0)
    assert page.open_problem_folder()
    assert opened == [QUrl.fromLocalFile(str(root / "b" / "sub"))]


def test_cancel_stops_the_scan(qtbot, main_window, image_folder, monkeypatch):
    from tlstudio.core.data import scan as dataset
    root = image_folder({"a": 2, "b": 2})
    real = dataset.scan_dataset
    started = threading.Event()

    def held_scan(path, *, progress=None, cancel=None):
        started.set()
        cancel.wait(10)
        return real(path, progress=progress, cancel=cancel)

    monkeypatch.setattr(dataset, "scan_dataset", held_scan)
    page = main_window.page("data")
    with qtbot.waitSignal(page.scan_finished, timeout=15000) as blocker:
        main_window.open_dataset(root)
        assert page.busy.isVisible() and page.is_scanning()
        assert started.wait(10)
        page.busy.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert main_window.state.scan is None
    assert not page.busy.isVisible()
    assert "cancelled" in page.error_banner.messages[0]
    assert page.rescan_button.isEnabled()


def test_warnings_and_presplit_columns(qtbot, main_window, image_folder):
    root = image_folder({"big": 12, "small": 2}, splits=("train", "val"))
    main_window.open_dataset(root)
    page = main_window.page("data")
    wait_scanned(qtbot, page)
    scan = main_window.state.scan
    assert scan.presplit and scan.warnings
    # The generated splits hold byte-identical pictures: leakage is shown in red, the rest as warnings.
    leakage = [w for w in scan.warnings if w.startswith("DATA LEAKAGE")]
    assert leakage and page.error_banner.isVisibleTo(page) and page.error_banner.messages == leakage
    assert page.warning_banner.isVisibleTo(page)
    assert page.warning_banner.messages == [w for w in scan.warnings if w not in leakage]
    headers = [page.class_table.horizontalHeaderItem(c).text() for c in range(page.class_table.columnCount())]
    assert headers == ["Class", "Train", "Validation", "Images"]
    assert page.class_table.item(0, 1).text() == "12" and page.class_table.item(0, 3).text() == "24"
    assert not page.split_box.isVisibleTo(page) and page.presplit_note.isVisibleTo(page)
    assert page.chart.series == ["train", "val"]


def test_split_settings_go_into_the_project(qtbot, main_window, image_folder):
    root = image_folder({"a": 5, "b": 5})
    main_window.open_dataset(root)
    page = main_window.page("data")
    wait_scanned(qtbot, page)
    assert page.split_box.isVisibleTo(page)
    page.val_spin.setValue(30)
    page.test_spin.setValue(10)
    page.seed_spin.setValue(42)
    split = main_window.state.project.train.split
    assert (split.val_fraction, split.test_fraction, split.seed) == (0.3, 0.1, 42)
    assert main_window.state.dirty
    assert "3 for validation" in page.split_note.text()


def test_only_visible_thumbnails_are_requested(qtbot, tmp_path):
    from tlstudio.core.data.scan import FileRecord
    from tlstudio.gui.widgets.thumbnails import ThumbnailModel, ThumbnailView

    records = [FileRecord(f"c/img_{i:05d}.jpg", "c", None, "usable", None, 100, 0, 10, 10) for i in range(10_000)]
    model = ThumbnailModel(size=64)
    view = ThumbnailView(64)
    view.setModel(model)
    view.resize(500, 400)
    qtbot.addWidget(view)
    model.set_files(tmp_path, records)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: model.requests > 0, timeout=5000)
    first = model.requests
    assert first < 200  # a screenful, not ten thousand
    view.scrollToBottom()
    qtbot.waitUntil(lambda: model.requests > first, timeout=5000)
    assert model.requests < 400
    # Missing files come back as failures with a reason, without stopping the worker.
    qtbot.waitUntil(lambda: len(model._failed) > 0, timeout=10000)
    model.shutdown()


def test_the_validation_share_is_automatic_by_default_and_shows_the_chosen_share(qtbot, main_window, image_folder):
    import os

    from tlstudio.core.data.holdout import auto_val_fraction

    root = image_folder({"a": 12, "b": 16})
    main_window.open_dataset(root)
    page = main_window.page("data")
    wait_scanned(qtbot, page)
    assert main_window.state.project.train.split.val_fraction is None
    assert page.val_spin.text() == "Automatic"
    chosen = auto_val_fraction([12, 16])
    assert page.split_note.text().startswith(f"Automatic: {chosen:.0%} for validation.")
    assert f"{round(28 * chosen)} for validation" in page.split_note.text()
    if os.environ.get("TLSTUDIO_SCREENSHOTS"):
        page.grab().save(os.path.join(os.environ["TLSTUDIO_SCREENSHOTS"], "data_page_split.png"))
    page.val_spin.setValue(30)
    assert main_window.state.project.train.split.val_fraction == 0.3
    page.val_spin.setValue(page.val_spin.minimum())  # back to "Automatic"
    assert main_window.state.project.train.split.val_fraction is None
