"""How the window writes shares: percentages the same way on every page (durations: core.humanize)."""

from __future__ import annotations

import math


def percent(value: float | None) -> str:
    """``"87.5%"``; a dash when unknown."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"
