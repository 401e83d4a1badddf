"""QtCore-only workers that run core functions on QThreads and report through signals."""

import tlstudio.qtfix  # noqa: F401  (a PySide6 reference-count bug, see the module)
