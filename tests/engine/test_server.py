"""The engine's request handling, run in this process with a recording connection instead of the pipe."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from tlstudio.core.errors import TlstudioError
from tlstudio.engine import protocol as p
from tlstudio.engine import server


class RecordingConn:
    def __init__(self):
        self.sent: list = []

    def send(self, message):
        self.sent.append(message)


@dataclass(frozen=True)
class Steps(p.Request):
    count: int = 5
    ignore_cancel_for: float = 0.0


def steps(request, ctx):
    for i in range(request.count):
        ctx.emit(p.StepProgress(i + 1, request.count + 1))  # never the final step: each may be held back
        if ctx.cancel.is_set():
            time.sleep(request.ignore_cancel_for)
            ctx.check_cancel()
    return "done"


def failing(request, ctx):
    raise TlstudioError("the folder is empty")


@dataclass(frozen=True)
class Fails(p.Request):
    pass


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setitem(server.ALL_HANDLERS, Steps, steps)
    monkeypatch.setitem(server.ALL_HANDLERS, Fails, failing)
    conn = RecordingConn()
    return server.Engine(conn, p.EngineOptions(progress_interval=10.0)), conn


def _run(engine, call_id, request):
    running = server._Running(call_id, request)
    engine._calls[call_id] = running
    running.started = True
    engine._execute(running)
    return running


def test_held_back_progress_goes_out_before_the_answer(engine):
    eng, conn = engine
    _run(eng, 1, Steps(5))
    progress = [m.event.done for m in conn.sent if isinstance(m, p.Progress)]
    assert progress == [1, 5]  # the first at once, the latest held back until the answer
    assert conn.sent[-1] == p.Done(1, "done")


def test_a_failure_is_one_line_for_the_user(engine):
    eng, conn = engine
    _run(eng, 2, Fails())
    assert conn.sent[-1] == p.Failed(2, "the folder is empty", "TlstudioError")


def test_a_request_that_is_slow_to_stop_is_answered_cancelled_after_the_grace(engine, monkeypatch):
    monkeypatch.setattr(server, "CANCEL_GRACE_SECONDS", 0.2)
    eng, conn = engine
    running = server._Running(3, Steps(3, ignore_cancel_for=1.0))
    eng._calls[3] = running
    running.started = True
    worker = threading.Thread(target=eng._execute, args=(running,))
    running.cancel.set()
    worker.start()
    start = time.monotonic()
    eng._cancel(3)
    while not any(isinstance(m, p.CallCancelled) for m in conn.sent):
        assert time.monotonic() - start < 5
        time.sleep(0.01)
    assert time.monotonic() - start < 0.9  # long before the handler itself stops
    worker.join(5)
    finals = [m for m in conn.sent if isinstance(m, p.FINAL_REPLIES)]
    assert finals == [p.CallCancelled(3)]  # exactly one answer


def test_a_second_training_is_refused_while_one_runs(engine):
    eng, conn = engine
    first = server._Running(4, p.Train(None, "/runs/a"))
    eng._calls[4] = first
    eng._accept(p.Call(5, p.Train(None, "/runs/b")))
    assert isinstance(conn.sent[-1], p.Failed) and "already running" in conn.sent[-1].message


def test_a_cancelled_call_still_waiting_in_its_lane_is_answered_at_once(engine):
    eng, conn = engine
    eng._accept(p.Call(6, Steps(3)))  # no lane thread runs: it stays queued
    eng._cancel(6)
    assert conn.sent[-1] == p.CallCancelled(6)
