"""The one way the app asks for a file or folder: native dialogs that start where the person was last.

Every dialog starts in the folder used last (any dialog), else the person's Documents folder, and
never inside the installation (a packaged app may discard files written there). The folder of
whatever was chosen becomes the next start.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog, QWidget

import tlstudio
from tlstudio.gui import settings

INSTALLATION = Path(tlstudio.__file__).resolve().parent
MODEL_FILTER = "Keras model (*.keras *.h5 *.hdf5);;All files (*)"
WEIGHTS_FILTER = "Keras weights (*.h5 *.hdf5);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"
CSV_FILTER = "CSV files (*.csv)"


def _inside_installation(folder: Path) -> bool:
    try:
        folder.resolve().relative_to(INSTALLATION)
    except (ValueError, OSError):
        return False
    return True


def documents_folder() -> Path:
    """The person's Documents folder (their home folder when the system names none)."""
    found = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(found) if found and Path(found).is_dir() else Path.home()


def start_folder(preferred: str | Path | None = None) -> Path:
    """Where a dialog opens: ``preferred``, else the last folder used, else Documents; never the installation."""
    for candidate in (preferred, settings.get("dialogs/last_dir")):
        if not candidate:
            continue
        folder = Path(candidate).expanduser()
        if not folder.is_dir():
            folder = folder.parent
        if folder.is_dir() and not _inside_installation(folder):
            return folder
    return documents_folder()


def remember(path: str | Path) -> None:
    """Make the folder of ``path`` (or ``path`` itself, when a folder) the next dialog's start."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not _inside_installation(folder):
        settings.put("dialogs/last_dir", str(folder))


def open_file(parent: QWidget | None, title: str, file_filter: str, start: str | Path | None = None) -> str:
    """An existing file chosen by the person, or "" when they cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, str(start_folder(start)), file_filter)
    if path:
        remember(path)
    return path


def open_files(parent: QWidget | None, title: str, file_filter: str) -> list[str]:
    """Existing files chosen by the person (empty when they cancelled)."""
    paths, _ = QFileDialog.getOpenFileNames(parent, title, str(start_folder()), file_filter)
    if paths:
        remember(paths[0])
    return list(paths)


def open_folder(parent: QWidget | None, title: str, start: str | Path | None = None) -> str:
    """An existing folder chosen by the person, or ""."""
    folder = QFileDialog.getExistingDirectory(parent, title, str(start_folder(start)))
    if folder:
        # The next dialog starts beside this folder (its parent), where the person's folders are.
        remember(Path(folder).parent if Path(folder).parent != Path(folder) else folder)
    return folder


def save_file(parent: QWidget | None, title: str, file_name: str, file_filter: str,
              start: str | Path | None = None) -> str:
    """A path to write, proposed as ``file_name`` in the start folder; "" when cancelled.

    The native dialog asks before replacing an existing file.
    """
    suggested = start_folder(start) / Path(file_name).name
    path, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), file_filter)
    if path:
        remember(path)
    return path
