"""A cancel flag that says why it was set, and the run status each way of stopping leaves."""

from __future__ import annotations

import threading

from tlstudio.core import events as ev
from tlstudio.core import run_folder
from tlstudio.core.errors import Cancelled, Interrupted, TlstudioError


def test_a_stop_request_is_an_event_that_says_why():
    stop = ev.StopRequest()
    assert not stop.is_set() and not ev.quitting(stop)
    stop.set()  # a plain cancel, as every worker's request_cancel() does
    assert stop.is_set() and ev.stop_reason(stop) == ev.STOP_USER and not ev.quitting(stop)
    stop.stop(ev.STOP_QUIT)  # Cancel pressed, then the window closed: the later reason wins
    assert ev.quitting(stop)
    plain = threading.Event()
    plain.set()
    assert ev.stop_reason(plain) == ev.STOP_USER and not ev.quitting(plain) and not ev.quitting(None)


def test_each_way_of_stopping_leaves_its_own_status():
    assert run_folder.failure_status(TlstudioError("bad data")) == "failed"
    assert run_folder.failure_status(Cancelled()) == "cancelled"
    assert run_folder.failure_status(Cancelled(), quitting=True) == "interrupted"
    assert run_folder.failure_status(Interrupted("closing")) == "interrupted"
    assert run_folder.failure_status(TlstudioError("bad data"), quitting=True) == "failed"
