"""Run a call that might block (reading a FIFO, a device) in a thread, failing the test instead of hanging it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def call_without_hanging(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``fn()``'s result, or its exception re-raised; an ``AssertionError`` if it runs past ``timeout``."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)  # a daemon: a blocked read cannot keep pytest alive
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"blocked for more than {timeout:g} s (a special file was read?)"
    if "error" in result:
        raise result["error"]
    return result.get("value")
