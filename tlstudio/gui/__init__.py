"""PySide6 widgets of the tlstudio desktop app."""

import tlstudio.qtfix  # noqa: F401  (a PySide6 reference-count bug, see the module)
