"""Numbers as people read them, the same in the CLI, the GUI and the model card."""

from __future__ import annotations


def format_seconds(seconds: float | None) -> str:
    """A duration in words: ``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``; ``""`` when unknown (None).

    Parameters
    ----------
    seconds
        The duration; negative values count as 0.

    Returns
    -------
    str
    """
    if seconds is None:
        return ""
    total = max(0, int(round(float(seconds))))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"
