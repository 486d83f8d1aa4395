"""Spike rejection with a trailing Hampel filter.

A reading further from the median of the last ``window`` readings than ``sigmas`` robust standard
deviations (1.4826 × MAD) is an outlier and is replaced by that median. ``min_percent`` of the median
is the smallest deviation that counts, so a fan whose speed is perfectly steady (MAD 0) does not turn
every small wobble into a spike. Readings that measured a stall bypass the filter and empty its
history: a stopped fan is news, not noise, and its spin-up is not a spike either. The price of a
trailing window is that the first half-window of readings after a genuine step is replaced too
(about three readings at the default window of 7).
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = ["Hampel"]


class Hampel:
    """A trailing Hampel filter over one fan's readings."""

    def __init__(self, *, window: int = 7, sigmas: float = 3.0, min_percent: float = 2.0) -> None:
        self._values: deque[float] = deque(maxlen=window)
        self.reconfigure(window=window, sigmas=sigmas, min_percent=min_percent)

    def reconfigure(self, *, window: int, sigmas: float, min_percent: float) -> None:
        if window < 3:
            raise ValueError("window must be at least 3")
        self.window = window
        self.sigmas = sigmas
        self.min_percent = min_percent
        self._values = deque(self._values, maxlen=window)

    def filter(self, rpm: float, *, bypass: bool = False) -> tuple[float, bool]:
        """(value to use, whether ``rpm`` was a spike)."""
        if bypass:  # a stopped fan's history says nothing about how it will spin up again
            self._values.clear()
            return rpm, False
        history = list(self._values)
        self._values.append(rpm)
        if len(history) < self.window - 1:
            return rpm, False
        median = statistics.median(history)
        mad = statistics.median(abs(v - median) for v in history)
        limit = max(self.sigmas * 1.4826 * mad, self.min_percent / 100.0 * median)
        if abs(rpm - median) > limit:
            return median, True
        return rpm, False
