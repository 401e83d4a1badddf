"""Fixtures of the engine tests: one real engine (with TensorFlow warmed up) per module, real run folders."""

from __future__ import annotations

import time

import pytest
import support.trained_runs as runs_support

from tlstudio.engine.client import EngineClient


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return runs_support.session_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def engine():
    client = EngineClient(warm_up=True)
    client.start()
    assert client.wait_ready(180), client.detail
    yield client
    client.stop()


class Recorder:
    """Collects a call's events with the time each arrived."""

    def __init__(self):
        self.events: list = []
        self.times: list[float] = []

    def __call__(self, event):
        self.events.append(event)
        self.times.append(time.monotonic())

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def recorder():
    return Recorder

