"""PySide6 widgets of the tlstudio desktop app."""

