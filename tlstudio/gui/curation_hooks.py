"""Fixing the data where it is shown: hooks that add dataset editing to existing pages and galleries.

Each page needs one line (``install_on_data_page(self)``, ``install_on_gallery(gallery, state)``),
and the window one (``install_undo(window, state)``); everything else lives here, so the pages stay
about showing things. All edits go through the window's one
:class:`~tlstudio.gui.curation.DatasetEditor` (:func:`~tlstudio.gui.curation.editor_for`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMenu, QWidget

from tlstudio.gui.curation import DatasetEditor, add_curation_actions, editor_for
from tlstudio.gui.widgets.drops import accept_copy
from tlstudio.gui.widgets.gallery import PATH_ROLE, open_file_location


def _inside(editor: DatasetEditor, paths: list[str]) -> list[str]:
    """The paths that belong to the dataset being edited (a run's gallery may show another one)."""
    if editor.root is None:
        return []
    root = editor.root
    return [p for p in paths if root in Path(p).resolve().parents]


def file_menu(parent: QWidget, paths: list[str], editor: DatasetEditor) -> QMenu:
    """Open location / open image, then move to class / exclude for ``paths`` (absolute)."""
    menu = QMenu(parent)
    if paths:
        first = paths[0]
        menu.addAction("Open file location", lambda: open_file_location(first))
        menu.addAction("Open image", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(first)))
    editable = _inside(editor, paths)
    if editable:
        menu.addSeparator()
        add_curation_actions(menu, editable, editor, parent)
    return menu


# --- galleries (Evaluate page: confusion-matrix cell, highest loss) ----------------------------------------


def install_on_gallery(gallery: Any, state: Any, parent: QWidget | None = None) -> None:
    """Give an :class:`~tlstudio.gui.widgets.gallery.ImageGallery` multi-select and move / exclude in its menu."""
    editor = editor_for(state)
    view = gallery.list
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    try:
        view.customContextMenuRequested.disconnect(gallery._context_menu)
    except (RuntimeError, TypeError, AttributeError):
        pass  # a gallery without its own menu: ours is the only one

    def show(pos) -> None:
        item = view.itemAt(pos)
        if item is None:
            return
        if not item.isSelected():
            view.clearSelection()
            item.setSelected(True)
        paths = [i.data(PATH_ROLE) for i in view.selectedItems()]
        file_menu(parent or gallery, paths, editor).exec(view.viewport().mapToGlobal(pos))

    view.customContextMenuRequested.connect(show)


# --- the Data page -------------------------------------------------------------------------------------


class _DropFilter(QObject):
    """Pictures dropped on the thumbnail grid go into the class shown (or one asked for)."""

    def __init__(self, page: Any, tools: Any) -> None:
        super().__init__(page)
        self.page = page
        self.tools = tools

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            mime = event.mimeData()
            if self.tools.editor.root is not None and (mime.hasUrls() or mime.hasImage()):
                accept_copy(event)  # Copy, never Move: the person's own pictures stay where they were
                return True
        elif kind == QEvent.Type.Drop:
            if self.tools.editor.root is not None:
                self.tools.add_from_mime(event.mimeData(), selected_class(self.page))
                accept_copy(event)
                return True
        return False


def selected_class(page: Any) -> str | None:
    """The class the Data page is showing (its class filter), or None for all classes."""
    combo = getattr(page, "class_combo", None)
    value = combo.currentData() if combo is not None else None
    return str(value) if value else None


def selected_paths(page: Any) -> list[str]:
    rows = sorted({i.row() for i in page.thumb_view.selectionModel().selectedIndexes()})
    return [str(p) for p in (page.thumb_model.path_of(r) for r in rows) if p is not None]


def install_on_data_page(page: Any) -> Any:
    """The editing bar, a thumbnail menu (open / move / exclude), drops and paste on the Data page."""
    from tlstudio.gui.widgets.dataset_tools import DatasetTools

    editor = editor_for(page.state)
    tools = DatasetTools(editor, lambda: selected_class(page), page)
    page.layout().insertWidget(1, tools)
    page.dataset_tools = tools
    view = page.thumb_view
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show(pos) -> None:
        index = view.indexAt(pos)
        if not index.isValid():
            return
        if not view.selectionModel().isSelected(index):
            view.setCurrentIndex(index)
        file_menu(page, selected_paths(page), editor).exec(view.viewport().mapToGlobal(pos))

    view.customContextMenuRequested.connect(show)
    view.setAcceptDrops(True)
    view.viewport().setAcceptDrops(True)
    page._drop_filter = _DropFilter(page, tools)
    view.viewport().installEventFilter(page._drop_filter)
    paste = QShortcut(QKeySequence(QKeySequence.StandardKey.Paste), page)
    paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    paste.activated.connect(lambda: tools.add_from_mime(QApplication.clipboard().mimeData(), selected_class(page)))
    editor.changed.connect(lambda _s: page.rescan() if editor.root is not None else None)
    tools.dataset_created.connect(page.open_folder)

    def open_audit() -> None:
        from tlstudio.gui.dialogs.audit import AuditDialog

        if editor.root is None:
            return
        dialog = AuditDialog(editor.root, page.state.train_config(), editor, page)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page._audit_dialog = dialog
        dialog.show()
        dialog.start()

    tools.audit_requested.connect(open_audit)
    return tools


# --- the window: Edit > Undo ------------------------------------------------------------------------------


def install_undo(window: Any, state: Any) -> QAction:
    """An Edit menu (after File) with Undo (Ctrl+Z) for dataset edits; its text names the edit."""
    editor = editor_for(state)
    bar = window.menuBar()
    edit_menu = QMenu("&Edit", window)
    actions = bar.actions()
    if len(actions) > 1:
        bar.insertMenu(actions[1], edit_menu)
    else:
        bar.addMenu(edit_menu)
    undo = QAction("&Undo", window)
    undo.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
    undo.triggered.connect(editor.undo)
    edit_menu.addAction(undo)

    def update(text: str) -> None:
        undo.setEnabled(bool(text))
        undo.setText(f"&Undo {text}" if text else "&Undo")
        undo.setStatusTip(f"Undo: {text}" if text else "Nothing to undo")

    editor.undo_changed.connect(update)
    update(editor.undo_text())
    window.undo_action = undo
    return undo
