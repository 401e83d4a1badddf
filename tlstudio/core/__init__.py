"""The Qt-free core of tlstudio: scan, split, pipeline, models, train, evaluate, predict, export.

Nothing in this package imports PySide6, pyqtgraph, ``tlstudio.gui`` or ``tlstudio.workers``;
TensorFlow and Keras are imported lazily inside the functions that need them.
"""
