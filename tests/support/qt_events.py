"""Synthetic Qt events for GUI tests (import as ``from support.qt_events import drop``: tests/gui is on sys.path)."""

from __future__ import annotations

from unittest import mock

from PySide6.QtCore import QMimeData, QUrl


def accepted_as_copy(event) -> bool:
    """True when a handler accepted ``event`` (from :func:`drop`) as a Copy: never Move, which would move files."""
    from PySide6.QtCore import Qt

    actions = [c.args[0] for c in event.setDropAction.call_args_list]
    moved = event.acceptProposedAction.called  # would take whatever the source proposed (Move included)
    return bool(actions) and all(a == Qt.DropAction.CopyAction for a in actions) and event.accept.called \
        and not moved


def drop(widget, *paths):
    """Call ``widget.dropEvent`` with a mocked event carrying file URLs, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = mock.MagicMock()
    event.mimeData.return_value = mime
    widget.dropEvent(event)
    return event
