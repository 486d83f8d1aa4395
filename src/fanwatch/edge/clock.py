"""Time for the edge components: the real clock on a device, a hand-driven one in tests and demos.

Pulse timestamps, windows and timeouts are measured on ``now()`` (monotonic seconds, immune to NTP
steps); message timestamps come from ``utc(t)``, which maps a monotonic instant to UTC.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "ScaledClock", "SimClock"]


class Clock(Protocol):
    """Time as the edge reads it: monotonic seconds for intervals, UTC for timestamps; swappable, so tests
    and the demo run the components on simulated time."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def utc(self, t: float | None = None) -> datetime:
        """The UTC wall time of monotonic instant ``t`` (default: now)."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait ``seconds`` or until ``stop`` is set."""
        ...


class MonotonicClock:
    """The device clock: ``time.monotonic`` anchored to the wall clock once, at construction."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._wall0 = datetime.now(UTC)

    def now(self) -> float:
        return time.monotonic()

    def utc(self, t: float | None = None) -> datetime:
        return self._wall0 + timedelta(seconds=(self.now() if t is None else t) - self._t0)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)


class SimClock:
    """A clock that moves only when told: ``sleep`` advances it at once, so hours run in seconds."""

    def __init__(self, *, start: datetime | None = None, t0: float = 0.0) -> None:
        self._t = t0
        self._t0 = t0
        self._wall0 = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> float:
        return self._t

    def utc(self, t: float | None = None) -> datetime:
        return self._wall0 + timedelta(seconds=(self._t if t is None else t) - self._t0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._t += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        self.advance(max(0.0, seconds))


class ScaledClock:
    """Another clock sped up by ``scale``: a simulated fan on a real device can run a day in an hour."""

    def __init__(self, base: Clock, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.base = base
        self.scale = scale
        self._origin = base.now()

    def now(self) -> float:
        return self._origin + (self.base.now() - self._origin) * self.scale

    def utc(self, t: float | None = None) -> datetime:
        return self.base.utc(self._origin + ((self.now() if t is None else t) - self._origin) / self.scale)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        self.base.sleep(seconds / self.scale, stop)
