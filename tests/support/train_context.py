"""A context a training child process runs inside (as the engine's Ray context is), for launcher tests."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def marking_context(marker: str):
    """Write the child's pid into ``marker`` on entry and "left" on exit; yields no extra arguments."""
    Path(marker).write_text(f"entered {os.getpid()}\n")
    try:
        yield {}
    finally:
        with open(marker, "a") as out:
            out.write("left\n")
