"""QtCore-only workers that run core functions on QThreads and report through signals."""

