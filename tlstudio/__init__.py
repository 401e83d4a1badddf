"""tlstudio: point-and-click transfer learning for image classification."""

import sys as _sys

__version__ = "0.1.0"

if _sys.version_info < (3, 12):
    # PySide6 6.12 wheels (abi3) return None from void methods without taking a new reference; on
    # Python 3.11, where None is not yet immortal, every such call drops None's reference count by
    # one and a session dies after a few thousand calls ("none_dealloc"). Give None a count that
    # cannot run out; harmless for everything else.
    import ctypes as _ctypes

    _ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40
    del _ctypes
