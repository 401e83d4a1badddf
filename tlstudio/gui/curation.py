"""The app's one dataset editor: every gallery's "move to class / exclude" and Edit > Undo go through it.

:class:`DatasetEditor` wraps :mod:`tlstudio.core.data.curate` for the GUI: it takes absolute paths
(what galleries hold), turns a failure into a one-line ``failed`` message, and announces every
change (``changed``) so pages rescan and the Undo action updates. Edits run on the GUI thread on
purpose: they are renames inside one folder (milliseconds for hundreds of files), and running them
in order on one thread is what keeps the undo journal a simple stack. Copies (adding images) are
the exception that can take longer; they are still bounded by what a person drops at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from tlstudio.core.data import audit, curate
from tlstudio.core.errors import TlstudioError

NEW_CLASS_TEXT = "New class..."


class DatasetEditor(QObject):
    """Edits of the dataset folder shown in the app, with undo."""

    changed = Signal(str)  # one-line summary of the edit just done, undone or recovered
    failed = Signal(str)  # one-line message for the user
    undo_changed = Signal(str)  # text of the edit Undo would revert ("" when none)
    noted = Signal(str)  # a sentence for people about the last change (and runs it made stale)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root: Path | None = None
        #: Says why the dataset must not change right now (e.g. a training run is reading it), or None.
        self.blocked_by: Callable[[], str | None] = lambda: None

    # --- the dataset ---------------------------------------------------------------------------
    def set_root(self, root: str | Path | None) -> None:
        """Edit the dataset ``root`` from now on; first finishes an edit a crash interrupted."""
        new = Path(root).expanduser().resolve() if root else None
        if new == self.root:
            return
        self.root = new
        if new is not None and new.is_dir():
            try:
                op = curate.recover(new)
            except (OSError, TlstudioError) as exc:
                self.failed.emit(f"Could not finish the last edit of {new.name}: {exc}")
            else:
                if op is not None:
                    self.changed.emit(f"Finished an interrupted edit: {op.get('summary', op.get('kind'))}")
        self.undo_changed.emit(self.undo_text())

    def classes(self) -> list[str]:
        """The class folders of the dataset (of every split), sorted; empty ones included."""
        if self.root is None or not self.root.is_dir():
            return []
        names = set()
        for folder in curate.split_folders(self.root):
            names.update(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        return sorted(names, key=str.lower)

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the dataset (POSIX), as the core edits take it."""
        if self.root is None:
            raise curate.CurateError("no dataset is open")
        return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()

    def class_of(self, path: str | Path) -> str | None:
        try:
            return curate.class_folder_of(self.root or Path(), self.rel(path))[0]
        except TlstudioError:
            return None

    def undo_text(self) -> str:
        if self.root is None:
            return ""
        return curate.can_undo(self.root) or ""

    # --- edits -----------------------------------------------------------------------------------
    def _refused(self) -> bool:
        reason = self.blocked_by()
        if reason:
            self.failed.emit(f"The dataset cannot change now: {reason}.")
        return bool(reason)

    def _do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.root is None:
            self.failed.emit("Open a dataset folder first.")
            return None
        if self._refused():
            return None
        try:
            op = fn(self.root, *args, **kwargs)
        except (OSError, TlstudioError) as exc:
            self.failed.emit(str(exc))
            return None
        if isinstance(op, dict):
            self.changed.emit(str(op.get("summary", op.get("kind", "edited the dataset"))))
        self.undo_changed.emit(self.undo_text())
        return op

    def move_to_class(self, paths: Sequence[str | Path], class_name: str) -> dict[str, Any] | None:
        """Relabel images (absolute paths) into ``class_name``."""
        return self._do_on_paths(curate.move_to_class, paths, class_name)

    def exclude(self, paths: Sequence[str | Path], reason: str = "") -> dict[str, Any] | None:
        """Move images out of the dataset into the ``excluded`` folder beside it."""
        return self._do_on_paths(curate.exclude, paths, reason)

    def _do_on_paths(self, fn: Any, paths: Sequence[str | Path], *args: Any) -> dict[str, Any] | None:
        """:meth:`_do` on images given by absolute path (one outside the dataset is refused with a message)."""
        try:
            rels = [self.rel(p) for p in paths]
        except TlstudioError as exc:
            self.failed.emit(str(exc))
            return None
        return self._do(fn, rels, *args)

    def add_images(self, files: Sequence[str | Path], class_name: str) -> dict[str, Any] | None:
        return self._do(curate.add_images, class_name, list(files))

    def add_class(self, name: str) -> dict[str, Any] | None:
        return self._do(curate.add_class, name)

    def rename_class(self, old: str, new: str) -> dict[str, Any] | None:
        return self._do(curate.rename_class, old, new)

    def remove_class(self, name: str) -> dict[str, Any] | None:
        return self._do(curate.remove_class, name)

    def commit_capture(self, capture: Any) -> dict[str, Any] | None:
        """Move a webcam burst (:class:`tlstudio.core.data.webcam.Capture`) into its class, undoably."""
        return self._do(lambda _root: capture.commit())

    def keep(self, paths: Sequence[str | Path]) -> None:
        """Remember that these images' labels were reviewed and are right (not suggested again)."""
        if self.root is None:
            return
        audit.keep(self.root, [self.rel(p) for p in paths])

    def undo(self) -> dict[str, Any] | None:
        """Revert the last edit; emits ``changed`` with what was undone."""
        if self.root is None or self._refused():
            return None
        try:
            op = curate.undo(self.root)
        except (OSError, TlstudioError) as exc:
            self.failed.emit(f"Could not undo: {exc}")
            return None
        if op is not None:
            self.changed.emit(f"Undone: {op.get('summary', op.get('kind'))}")
        self.undo_changed.emit(self.undo_text())
        return op


def ask_new_class(parent: QWidget | None) -> str | None:
    name, ok = QInputDialog.getText(parent, "New class", "Name of the new class:")
    return name.strip() if ok and name.strip() else None


def add_curation_actions(menu: QMenu, paths: Sequence[str], editor: DatasetEditor, parent: QWidget | None = None) -> None:
    """Add "Move to class" and "Exclude from dataset" for ``paths`` (absolute) to a context menu."""
    if not paths or editor.root is None:
        return
    n = len(paths)
    noun = "image" if n == 1 else f"{n} images"
    move = menu.addMenu(f"Move {noun} to class")
    current = {editor.class_of(p) for p in paths}
    for name in editor.classes():
        action = move.addAction(name)
        action.setEnabled(current != {name})
        action.triggered.connect(lambda _checked=False, c=name: editor.move_to_class(paths, c))
    move.addSeparator()

    def to_new_class() -> None:
        name = ask_new_class(parent)
        if name:
            editor.move_to_class(paths, name)

    move.addAction(NEW_CLASS_TEXT).triggered.connect(to_new_class)
    menu.addAction(f"Exclude {noun} from the dataset").triggered.connect(
        lambda _checked=False: editor.exclude(paths, "excluded in the app")
    )


def old_label_note(root: Path | None, run_dirs: Sequence[str]) -> str:
    """A sentence naming the runs trained on labels that have changed since (empty when none)."""
    if root is None or not run_dirs:
        return ""
    try:
        stale = curate.runs_on_old_labels(root, run_dirs)
    except (OSError, TlstudioError):
        return ""
    if not stale:
        return ""
    names = ", ".join(Path(r).name for r in stale)
    return f"{len(stale)} run(s) were trained on labels changed since: {names}."


def editor_for(state: Any) -> DatasetEditor:
    """The one :class:`DatasetEditor` of the window's :class:`~tlstudio.gui.state.AppState`, made on first use.

    It follows the dataset the state has open and reports each edit (and which runs were trained
    on the old labels) in the status bar. Kept on the state object so every page finds the same one
    without the pages or the window having to pass it around.
    """
    editor = getattr(state, "_dataset_editor", None)
    if editor is not None:
        return editor
    editor = DatasetEditor(state)
    state._dataset_editor = editor

    def follow() -> None:
        scan = getattr(state, "scan", None)
        root = scan.root if scan is not None else (state.project.train.data_dir or None)
        editor.set_root(root)

    def announce(summary: str) -> None:
        note = old_label_note(editor.root, [r.run_dir for r in state.project.runs])
        text = f"{summary[:1].upper()}{summary[1:]}. {note}".strip()
        editor.noted.emit(text)
        state.message(text)

    # A run reads the pictures while it trains: a picture moved meanwhile would be skipped as missing.
    editor.blocked_by = lambda: "a training run is reading the pictures" if getattr(state, "training", False) else None
    state.dataset_changed.connect(follow)
    editor.changed.connect(announce)
    editor.failed.connect(state.message)
    follow()
    return editor
