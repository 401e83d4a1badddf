"""Durations in words, the same everywhere."""

from __future__ import annotations

import pytest

from tlstudio.core.humanize import format_seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0, "0 s"), (-3, "0 s"), (0.4, "0 s"), (41.6, "42 s"), (59.4, "59 s"), (59.6, "1 min 00 s"),
     (185, "3 min 05 s"), (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7620, "2 h 07 min")],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
