"""The File > Open Recent menu: recent projects and dataset folders, from the settings."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMenu

from tlstudio.gui import settings
from tlstudio.gui.widgets.common import icon


def menu_text(text: str) -> str:
    """``text`` for a menu, with ``&`` doubled so that Qt shows it instead of making an accelerator."""
    return text.replace("&", "&&")


def fill_recent_menu(menu: QMenu, open_project: Callable[[str], object], open_dataset: Callable[[str], object],
                     cleared: Callable[[], object]) -> None:
    """Refill ``menu`` (on ``aboutToShow``) with the recent projects, then the recent folders."""
    menu.clear()
    projects, folders = settings.get("recent/projects"), settings.get("recent/folders")
    for p in projects:
        menu.addAction(icon("image"), menu_text(p)).triggered.connect(lambda _c=False, p=p: open_project(p))
    if projects and folders:
        menu.addSeparator()
    for f in folders:
        menu.addAction(icon("folder"), menu_text(f)).triggered.connect(lambda _c=False, f=f: open_dataset(f))
    if not projects and not folders:
        menu.addAction("No recent files").setEnabled(False)
        return
    menu.addSeparator()
    menu.addAction("Clear Recent").triggered.connect(lambda _c=False: _clear(cleared))


def _clear(cleared: Callable[[], object]) -> None:
    settings.put("recent/projects", [])
    settings.put("recent/folders", [])
    cleared()
