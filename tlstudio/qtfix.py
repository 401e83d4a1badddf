"""A guard against a reference-count bug of PySide6 6.12 on Python 3.11.

``SignalInstance.emit`` returns ``True`` without taking a new reference, so every ``emit`` called
from Python drops one reference to ``True``. After a thousand or so emits (a training run reports
every batch) CPython 3.11 aborts with "bool_dealloc: deallocating True or False". Python 3.12 and
later make ``True`` and ``False`` immortal, so the bug is harmless there; on older Pythons this
module gives both a reference count large enough that the lost references never matter, which
is the same idea. It is imported by ``tlstudio.gui`` and ``tlstudio.workers``.
"""

from __future__ import annotations

import sys

_APPLIED = False


def apply() -> None:
    global _APPLIED
    if _APPLIED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    if hasattr(sys, "gettotalrefcount"):  # a debug build lays objects out differently
        return
    import ctypes

    for obj in (True, False):
        # ob_refcnt is the first field of every CPython object; these two are static singletons.
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    _APPLIED = True


apply()
