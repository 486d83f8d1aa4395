"""How the demo writes simulated times and counts in its progress lines, report and picture."""

from __future__ import annotations

import math

__all__ = ["clock", "count", "window"]


def clock(seconds: float) -> str:
    """``MM:SS`` of simulated time (hours run on as minutes: ``90:00``)."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def window(start_s: float, end_s: float) -> str:
    """``06:00–09:00``, or ``from 02:00`` for a span that lasts to the end."""
    return f"{clock(start_s)}–{clock(end_s)}" if math.isfinite(end_s) else f"from {clock(start_s)}"


def count(n: int, noun: str) -> str:
    """``1 thing``, ``3 things``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
