"""The engine as a real process: start, answer, die (SIGKILL), hang (SIGSTOP), restart, stop, no orphans.

These engines skip the TensorFlow warm-up, so each starts in about a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.waiting import wait_until

from tlstudio.core.errors import Cancelled
from tlstudio.engine import client as client_module
from tlstudio.engine import protocol as p
from tlstudio.engine.client import EngineClient, EngineDied
from tlstudio.engine.processes import group_members, is_running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")



@pytest.fixture
def make_client():
    made = []

    def make(**kwargs):
        states = []
        kwargs.setdefault("warm_up", False)
        c = EngineClient(on_state=lambda s, d: states.append((s, d)), **kwargs)
        c.states = states
        made.append(c)
        c.start()
        assert c.wait_ready(60)
        return c

    yield make
    for c in made:
        c.stop(timeout=10)


def test_ping_answers_from_the_engine_process_and_stop_leaves_nothing(make_client):
    c = make_client()
    info = c.call(p.Ping(), timeout=30)
    assert info.pid == c.pid != os.getpid()
    assert info.tensorflow_loaded is False
    assert os.getpgid(c.pid) == c.pid  # it leads its own group, so one signal ends it and its children
    pid = c.pid
    c.stop()
    assert not is_running(pid)
    assert group_members(pid) == []
    names = [s for s, _ in c.states]
    # "busy" shows only when the ping is still unanswered as the engine says hello: a race, either is right.
    assert names in (["starting", "ready", "busy", "ready", "stopped"], ["starting", "ready", "stopped"])
    with pytest.raises(EngineDied):
        c.submit(p.Ping())


def test_a_killed_engine_is_detected_its_call_fails_and_a_fresh_one_answers(make_client):
    c = make_client()
    old = c.pid
    pending = c.submit(p.WarmUp())  # imports TensorFlow: seconds, still running when the kill lands
    time.sleep(0.3)
    os.kill(old, signal.SIGKILL)
    with pytest.raises(EngineDied) as info:
        pending.result(timeout=30)
    assert "stopped unexpectedly" in str(info.value) and "killed" in str(info.value)
    assert isinstance(info.value.request, p.WarmUp)
    assert c.call(p.Ping(), timeout=60).pid == c.pid != old  # queued until the fresh engine was up
    names = [s for s, _ in c.states]
    assert names.index("restarting") < len(names) - 1 - names[::-1].index("ready")
    detail = next(d for s, d in c.states if s == "restarting")
    assert "fresh engine" in detail and "project" in detail
    assert not is_running(old)


def test_a_silent_engine_past_the_deadline_is_treated_as_dead(make_client):
    c = make_client(deadline=2.0)
    old = c.pid
    os.kill(old, signal.SIGSTOP)  # alive but answering nothing, not even heartbeats
    try:
        assert wait_until(lambda: c.pid != old and c.state == "ready", timeout=60)
    finally:
        if is_running(old):
            os.kill(old, signal.SIGKILL)
    assert not is_running(old)
    detail = next(d for s, d in c.states if s == "restarting")
    assert "did not answer for 2 seconds" in detail
    assert c.call(p.Ping(), timeout=30).pid == c.pid


def test_an_engine_that_keeps_dying_is_given_up(make_client, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_RESTARTS", 1)
    c = make_client()
    for _ in range(2):
        pid = c.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda pid=pid: c.pid != pid or c.state == "failed", timeout=60)
        wait_until(lambda: c.state in ("ready", "failed"), timeout=60)
    assert c.state == "failed"
    assert "not restarted" in c.detail
    with pytest.raises(EngineDied):
        c.submit(p.Ping())


def test_cancel_before_the_engine_is_up_answers_at_once():
    c = EngineClient(warm_up=False)
    try:
        pending = c.submit(p.Ping())  # not started: the call waits for an engine
        pending.cancel()
        with pytest.raises(Cancelled):
            pending.result(timeout=1)
    finally:
        c.stop()


def test_the_engine_ends_itself_when_the_window_process_dies(tmp_path):
    script = tmp_path / "window.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from tlstudio.engine.client import EngineClient
        from tlstudio.engine import protocol as p
        if __name__ == "__main__":
            c = EngineClient(warm_up=False)
            c.start()
            c.wait_ready(60)
            print(c.call(p.Ping()).pid, flush=True)
            time.sleep(600)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), *sys.path]))
    window = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        engine_pid = int(window.stdout.readline())
        assert is_running(engine_pid)
        window.kill()  # SIGKILL: no atexit, no stop(); only the closed pipe tells the engine
        window.wait(10)
        assert wait_until(lambda: not is_running(engine_pid), timeout=30)
        assert group_members(engine_pid) == []
    finally:
        if window.poll() is None:
            window.kill()


def test_a_process_that_exits_without_stopping_its_engine_still_ends_it(tmp_path):
    # multiprocessing's exit handler waits for non-daemonic children: the client must stop the engine first.
    script = tmp_path / "forgetful.py"
    script.write_text(textwrap.dedent("""
        from tlstudio.engine.client import EngineClient
        from tlstudio.engine import protocol as p
        if __name__ == "__main__":
            c = EngineClient(warm_up=False)
            c.start()
            c.wait_ready(60)
            print(c.call(p.Ping()).pid, flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), *sys.path]))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    engine_pid = int(proc.stdout.split()[0])
    assert wait_until(lambda: not is_running(engine_pid), timeout=10)
