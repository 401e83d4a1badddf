"""Synthetic Qt events for GUI tests (import as ``from support.qt_events import drop``: tests/gui is on sys.path)."""

from __future__ import annotations

from unittest import mock

from PySide6.QtCore import QMimeData, QUrl


def drop(widget, *paths):
    """Call ``widget.dropEvent`` with a mocked event carrying file URLs, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = mock.MagicMock()
    event.mimeData.return_value = mime
    widget.dropEvent(event)
    return event
