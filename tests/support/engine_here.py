"""Answer the workers' engine requests with the engine's own handlers in the test process.

No engine process and no pipe: core can then be patched in the test (to isolate a worker or a
dialog from the converters) and the request still goes through the engine's real handler.
"""

from __future__ import annotations

import threading


def engine_in_this_process(monkeypatch) -> None:
    from tlstudio.engine import handlers
    from tlstudio.workers import engine_calls

    models = handlers.ModelCache()

    def request(req, *, progress=None, cancel=None, message=None, on_event=None):
        ctx = handlers.CallContext(engine_calls.forwarder(progress, message, on_event),
                                   cancel or threading.Event(), models)
        return handlers.HANDLERS[type(req)](req, ctx)

    monkeypatch.setattr(engine_calls, "request", request)
