"""The engine: one long-lived process that owns TensorFlow and does the window's model work.

:mod:`~tlstudio.engine.protocol` (the messages), :mod:`~tlstudio.engine.server` (the process),
:mod:`~tlstudio.engine.client` (the window's side). Importing this package loads neither
TensorFlow nor Qt.
"""
