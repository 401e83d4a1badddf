"""Polling for a condition in tests that have no Qt event loop to wait on."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 60.0, step: float = 0.02) -> bool:
    """Call ``predicate`` until it is true or ``timeout`` seconds passed; its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
