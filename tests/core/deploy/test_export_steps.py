"""``export.step_reporter``: the one step counter of the export loops (all formats, and web alone)."""

from __future__ import annotations

import threading

import pytest

from tlstudio.core.deploy.export import step_reporter
from tlstudio.core.errors import Cancelled


def test_each_step_reports_its_text_and_the_steps_done_before_it():
    texts, progress = [], []
    step = step_reporter(3, None, texts.append, lambda done, total: progress.append((done, total)))
    for text in ("load", "write", "card"):
        step(text)
    assert texts == ["load", "write", "card"]
    assert progress == [(0, 3), (1, 3), (2, 3)]


def test_a_step_after_cancel_raises_and_reports_nothing():
    cancel = threading.Event()
    texts = []
    step = step_reporter(2, cancel, texts.append, None)
    step("first")
    cancel.set()
    with pytest.raises(Cancelled):
        step("second")
    assert texts == ["first"]
