"""Review suspected label errors: a gallery of the suspects with one-click move / keep / exclude.

Each thumbnail says "given -> looks like suggested (score)", most suspicious first. The buttons act
on the selected pictures through the app's :class:`~tlstudio.gui.curation.DatasetEditor`, so every
action is undoable; pictures dealt with leave the list at once. "Keep" records the decision beside
the dataset (``.tlstudio/reviewed.json``) so the next audit does not suggest that picture again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QMenu, QVBoxLayout, QWidget

from tlstudio.gui.curation import DatasetEditor, add_curation_actions
from tlstudio.gui.widgets.common import button
from tlstudio.gui.widgets.gallery import PATH_ROLE, GalleryItem, ImageGallery


class SuspectsPanel(QWidget):
    """``set_suspects(root, suspects)`` with core ``Suspect`` records; acts through ``editor``."""

    reviewed = Signal(int)  # how many pictures an action just dealt with

    def __init__(self, editor: DatasetEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.root: Path | None = None
        self._suspects: list = []
        self.gallery = ImageGallery(self, empty_text="No suspected label errors")
        self.gallery.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.gallery.list.itemSelectionChanged.connect(self._update_buttons)
        self.move_button = button("Move to suggested class", self.move_selected_to_suggested,
                                  "Relabel each selected picture as the class it looks like")
        self.keep_button = button("Keep (label is right)", self.keep_selected,
                                  "The label is right: remember it and do not suggest these pictures again")
        self.other_button = button("Move to...", self._other_menu)
        self.exclude_button = button(
            "Exclude",
            self.exclude_selected,
            "Take the selected pictures out of the dataset (into the excluded folder beside it)",
        )
        row = QHBoxLayout()
        for b in (self.move_button, self.keep_button, self.other_button, self.exclude_button):
            row.addWidget(b)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.gallery, 1)
        self._update_buttons()

    # --- contents --------------------------------------------------------------------------------
    def set_suspects(self, root: str | Path, suspects: Sequence) -> None:
        self.root = Path(root)
        self._suspects = list(suspects)
        self._show()

    def suspects(self) -> list:
        return list(self._suspects)

    def _abs(self, suspect) -> str:
        return str((self.root or Path()) / suspect.path)

    def _show(self) -> None:
        items = [
            GalleryItem(
                self._abs(s),
                f"{s.class_name} → {s.suggested}\n{s.score:.0%}",
                f"{s.path}\nlabelled {s.class_name}, looks like {s.suggested} (suspicion {s.score:.2f})",
            )
            for s in self._suspects
        ]
        n = len(items)
        self.gallery.set_items(items, f"{n} suspected label error(s), most suspicious first" if n else None)
        self._update_buttons()

    def select_rows(self, rows: Sequence[int]) -> None:
        self.gallery.list.clearSelection()
        for r in rows:
            item = self.gallery.list.item(r)
            if item is not None:
                item.setSelected(True)

    def selected(self) -> list:
        paths = {item.data(PATH_ROLE) for item in self.gallery.list.selectedItems()}
        return [s for s in self._suspects if self._abs(s) in paths]

    def _drop(self, done: Sequence) -> None:
        gone = {s.path for s in done}
        self._suspects = [s for s in self._suspects if s.path not in gone]
        self._show()
        self.reviewed.emit(len(done))

    # --- actions -----------------------------------------------------------------------------------
    def move_selected_to_suggested(self) -> None:
        chosen = self.selected()
        done = []
        for target in sorted({s.suggested for s in chosen}):
            group = [s for s in chosen if s.suggested == target]
            if self.editor.move_to_class([self._abs(s) for s in group], target) is not None:
                done += group
        if done:
            self._drop(done)

    def keep_selected(self) -> None:
        chosen = self.selected()
        if chosen:
            self.editor.keep([self._abs(s) for s in chosen])
            self._drop(chosen)

    def exclude_selected(self) -> None:
        chosen = self.selected()
        if chosen and self.editor.exclude([self._abs(s) for s in chosen], "suspected label error") is not None:
            self._drop(chosen)

    def _other_menu(self) -> None:
        chosen = self.selected()
        menu = QMenu(self)
        add_curation_actions(menu, [self._abs(s) for s in chosen], self.editor, self)
        # Whatever the menu does, the chosen pictures are dealt with once the dataset changed.
        self.editor.changed.connect(self._after_menu_edit)
        self._pending = chosen
        try:
            menu.exec(self.other_button.mapToGlobal(self.other_button.rect().bottomLeft()))
        finally:
            self.editor.changed.disconnect(self._after_menu_edit)

    def _after_menu_edit(self, _summary: str) -> None:
        self._drop(getattr(self, "_pending", []))
        self._pending = []

    def _update_buttons(self) -> None:
        any_selected = bool(self.gallery.list.selectedItems())
        for b in (self.move_button, self.keep_button, self.other_button, self.exclude_button):
            b.setEnabled(any_selected)
