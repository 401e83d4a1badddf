"""Progress rate-limiting at the source: the engine forwards at most one progress event of a kind
per interval, so a fast training (hundreds of batches a second on cached features) never floods
the pipe or the window's event loop.

Only *progress* events are thinned (``BatchEnded``, ``CacheProgress``, ``StepProgress``); every
other event (epoch ends, phase starts, messages, results) is forwarded at once and in order, after
the latest held-back progress event, so the last state before a milestone is never lost. The last
step of a piece of work (``done == total``, an epoch's last batch) always goes out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tlstudio.core.events import BatchEnded, CacheProgress
from tlstudio.engine.protocol import StepProgress

THROTTLED = (BatchEnded, CacheProgress, StepProgress)


def is_final_step(event: Any) -> bool:
    """True for the last progress event of a piece of work (always forwarded)."""
    if isinstance(event, BatchEnded):
        return event.batch >= event.steps - 1
    if isinstance(event, CacheProgress | StepProgress):
        return event.total > 0 and event.done >= event.total
    return False


class ProgressGate:
    """Wraps ``send(event)``; call it with every event, and :meth:`flush` before the final answer.

    Parameters
    ----------
    send
        Forwards one event (to the pipe).
    interval
        Seconds between two forwarded progress events of one kind; 0 forwards everything.
    """

    def __init__(self, send: Callable[[Any], None], interval: float, clock: Callable[[], float] = time.monotonic):
        self._send = send
        self.interval = interval
        self._clock = clock
        self._last: dict[type, float] = {}
        self._pending: dict[type, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.forwarded = 0
        self.dropped = 0

    def __call__(self, event: Any) -> None:
        with self._lock:
            if isinstance(event, THROTTLED) and self.interval > 0:
                kind = type(event)
                now = self._clock()
                if now - self._last.get(kind, float("-inf")) < self.interval and not is_final_step(event):
                    if kind in self._pending:
                        self.dropped += 1
                    self._pending[kind] = (now, event)
                    return
                self._last[kind] = now
                self._pending.pop(kind, None)
            else:
                self._flush_locked()
            self._forward(event)

    def _forward(self, event: Any) -> None:
        self.forwarded += 1
        self._send(event)

    def _flush_locked(self) -> None:
        pending = sorted(self._pending.items(), key=lambda item: item[1][0])
        self._pending.clear()
        now = self._clock()
        for kind, (_, event) in pending:
            self._last[kind] = now
            self._forward(event)

    def flush(self) -> None:
        """Forward the held-back progress events now."""
        with self._lock:
            self._flush_locked()

    def flush_stale(self) -> None:
        """Forward held-back events older than the interval (called by the engine's heartbeat),
        so a slow step after a fast one is not shown late."""
        with self._lock:
            now = self._clock()
            if any(now - t >= self.interval for t, _ in self._pending.values()):
                self._flush_locked()
