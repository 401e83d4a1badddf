"""Fixing data where it is shown: the Data page's menu, drops and editing bar, gallery menus, Edit > Undo."""

from __future__ import annotations

from unittest import mock

from PySide6.QtCore import QEvent, QMimeData, QUrl
from PySide6.QtWidgets import QMainWindow
from support.qt_events import accepted_as_copy

from tlstudio.core.data import curate
from tlstudio.gui import curation_hooks
from tlstudio.gui.curation import editor_for


def _page(qtbot, root):
    from tlstudio.gui.pages.data import DatasetPage
    from tlstudio.gui.state import AppState

    state = AppState()
    page = DatasetPage(state)
    qtbot.addWidget(page)
    tools = page.dataset_tools  # the page installs the hooks itself
    page.show()
    page.open_folder(root)
    qtbot.waitUntil(lambda: not page.is_scanning() and state.scan is not None, timeout=15000)
    return page, tools


def _rescanned(qtbot, page, counts):
    qtbot.waitUntil(lambda: not page.is_scanning() and page.state.scan is not None
                    and page.state.scan.class_counts() == counts, timeout=15000)


def _menu_action(menu, *texts):
    actions = menu.actions()
    for text in texts:
        action = next(a for a in actions if a.text() == text)
        actions = action.menu().actions() if action.menu() else []
    return action


def test_data_page_thumbnail_menu_moves_and_excludes(qtbot, image_folder):
    root = image_folder({"cats": 3, "dogs": 3})
    page, tools = _page(qtbot, root)
    assert tools.audit_button.isEnabled()
    page.class_combo.setCurrentIndex(1)  # cats only
    assert curation_hooks.selected_class(page) == "cats"
    view = page.thumb_view
    model = page.thumb_model
    view.selectionModel().select(model.index(0), view.selectionModel().SelectionFlag.Select)
    view.selectionModel().select(model.index(1), view.selectionModel().SelectionFlag.Select)
    paths = curation_hooks.selected_paths(page)
    assert len(paths) == 2
    menu = curation_hooks.file_menu(page, paths, tools.editor)
    assert [a.text() for a in menu.actions() if a.text()][:2] == ["Open file location", "Open image"]
    _menu_action(menu, "Move 2 images to class", "dogs").trigger()
    _rescanned(qtbot, page, {"cats": 1, "dogs": 5})
    page.class_combo.setCurrentIndex(0)
    one = [str(root / "dogs" / sorted(p.name for p in (root / "dogs").iterdir())[0])]
    _menu_action(curation_hooks.file_menu(page, one, tools.editor), "Exclude image from the dataset").trigger()
    _rescanned(qtbot, page, {"cats": 1, "dogs": 4})
    tools.editor.undo()
    tools.editor.undo()
    _rescanned(qtbot, page, {"cats": 3, "dogs": 3})
    page.shutdown()


def test_pictures_dropped_on_the_grid_go_into_the_class_shown(qtbot, image_folder, tmp_path, make_image):
    root = image_folder({"cats": 2, "dogs": 2})
    page, tools = _page(qtbot, root)
    page.class_combo.setCurrentIndex(2)  # dogs
    new = [make_image(tmp_path / "new" / f"n{i}.png", pattern=i + 5) for i in range(3)]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in new])
    event = mock.MagicMock()
    event.type.return_value = QEvent.Type.Drop
    event.mimeData.return_value = mime
    assert page._drop_filter.eventFilter(page.thumb_view.viewport(), event) is True
    assert accepted_as_copy(event)  # never Move: the dropped pictures stay where they were
    _rescanned(qtbot, page, {"cats": 2, "dogs": 5})
    assert {p.name for p in (root / "dogs").iterdir()} >= {"n0.png", "n1.png", "n2.png"}
    page.shutdown()


def test_gallery_menu_offers_moves_only_for_pictures_of_the_open_dataset(qtbot, tmp_path, make_image):
    from tlstudio.gui.state import AppState
    from tlstudio.gui.widgets.gallery import GalleryItem, ImageGallery

    root = curate.new_dataset(tmp_path / "pets", ["cats", "dogs"])
    inside = make_image(root / "cats" / "a.png")
    outside = make_image(tmp_path / "other" / "b.png")
    state = AppState()
    state.project.train.data_dir = str(root)
    editor = editor_for(state)
    editor.set_root(root)
    gallery = ImageGallery()
    qtbot.addWidget(gallery)
    curation_hooks.install_on_gallery(gallery, state)
    gallery.set_items([GalleryItem(str(inside), "a"), GalleryItem(str(outside), "b")])
    assert gallery.list.selectionMode() == gallery.list.SelectionMode.ExtendedSelection
    menu = curation_hooks.file_menu(gallery, [str(outside)], editor)
    assert not any("Move" in a.text() for a in menu.actions())
    menu = curation_hooks.file_menu(gallery, [str(inside), str(outside)], editor)
    _menu_action(menu, "Move image to class", "dogs").trigger()
    assert (root / "dogs" / "a.png").is_file() and outside.is_file()
    gallery.shutdown()


def test_edit_undo_names_the_edit_and_reverts_it(qtbot, tmp_path, make_image):
    from tlstudio.gui.state import AppState

    root = curate.new_dataset(tmp_path / "pets", ["cats", "dogs"])
    make_image(root / "cats" / "a.png")
    window = QMainWindow()
    qtbot.addWidget(window)
    window.menuBar().addMenu("&File")
    window.menuBar().addMenu("&View")
    state = AppState()
    undo = curation_hooks.install_undo(window, state)
    assert [a.text() for a in window.menuBar().actions()] == ["&File", "&Edit", "&View"]
    assert not undo.isEnabled() and undo.shortcut().toString() == "Ctrl+Z"
    editor = editor_for(state)
    editor.set_root(root)
    editor.move_to_class([str(root / "cats" / "a.png")], "dogs")
    assert undo.isEnabled() and undo.text() == "&Undo moved 1 image(s) to dogs"
    undo.trigger()
    assert (root / "cats" / "a.png").is_file() and not undo.isEnabled()


def test_main_window_edit_undo_reverts_a_move_made_on_the_data_page(qtbot, main_window, image_folder):
    import os

    root = image_folder({"cats": 3, "dogs": 3})
    main_window.open_dataset(root)
    page = main_window.page("data")
    qtbot.waitUntil(lambda: not page.is_scanning() and main_window.state.scan is not None, timeout=15000)
    titles = [a.text() for a in main_window.menuBar().actions()]
    assert titles.index("&Edit") == titles.index("&File") + 1
    undo = main_window.undo_action
    assert not undo.isEnabled()
    page.dataset_tools.editor.move_to_class([str(root / "cats" / "cats_all_000.png")], "dogs")
    _rescanned(qtbot, page, {"cats": 2, "dogs": 4})
    assert undo.isEnabled() and undo.text() == "&Undo moved 1 image(s) to dogs"
    assert page.dataset_tools.note_label.text() == "Moved 1 image(s) to dogs."
    shots = os.environ.get("TLSTUDIO_SCREENSHOTS")
    if shots:
        page.tabs.setCurrentIndex(0)
        qtbot.waitUntil(lambda: page.thumb_model.loaded_count() >= 6, timeout=15000)
        main_window.grab().save(os.path.join(shots, "data-page-editing.png"))
    undo.trigger()
    _rescanned(qtbot, page, {"cats": 3, "dogs": 3})
    assert (root / "cats" / "cats_all_000.png").is_file()


def test_find_problems_opens_the_audit_on_the_open_dataset(qtbot, image_folder):
    root = image_folder({"cats": 6, "dogs": 6}, size=(64, 64))
    page, tools = _page(qtbot, root)
    page.state.update_train_config(input_size=64)
    tools.audit_button.click()
    dialog = page._audit_dialog
    qtbot.waitUntil(lambda: dialog.outcome is not None or bool(dialog.error.messages), timeout=180000)
    assert not dialog.error.messages
    assert dialog.outcome.report.root == root.resolve() and len(dialog.outcome.report.paths) == 12
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=30000)
    dialog.close()
    page.shutdown()
