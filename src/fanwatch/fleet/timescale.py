"""Fleet time, which a local fleet runs faster than the clock on the wall.

A rollout of 5 devices a minute, a 10-minute soak or a 30-minute job timeout would make a test of the
local fleet take an hour. Every duration the fleet tools and the local control plane wait for is
therefore "fleet time", converted to wall seconds by one factor, ``FANWATCH_TIME_SCALE`` (60: a fleet
minute passes in a wall second). Timestamps stay honest wall-clock times; only the waiting is scaled.
Against AWS the factor is 1, and nothing else changes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Final

from fanwatch.environment import TIME_SCALE_VARIABLE

__all__ = ["LOCAL_TIME_SCALE", "TimeScale", "parse_duration"]

#: A local fleet's factor unless told: a 10-minute soak takes a minute, while a 30-minute job
#: timeout still leaves 3 minutes for a component's first Install.
LOCAL_TIME_SCALE: Final = 10.0


@dataclass(frozen=True, slots=True)
class TimeScale:
    """``factor`` fleet seconds pass in one wall second."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.factor < math.inf:  # NaN compares false: refused too
            raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, got {self.factor}")

    @classmethod
    def from_env(cls, default: float = 1.0) -> TimeScale:
        """The factor in ``FANWATCH_TIME_SCALE``; ``default`` where it is unset or empty."""
        text = os.environ.get(TIME_SCALE_VARIABLE, "").strip()
        if not text:
            return cls(default)
        try:
            return cls(float(text))
        except ValueError:
            raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, got {text!r}") from None

    @classmethod
    def for_local_fleet(cls, factor: float | None = None) -> TimeScale:
        """A local fleet's scale: ``factor`` when given (``--time-scale``), else the environment's,
        else :data:`LOCAL_TIME_SCALE`."""
        return cls(factor) if factor is not None else cls.from_env(LOCAL_TIME_SCALE)

    def wall(self, fleet_seconds: float) -> float:
        """Wall seconds for a fleet duration."""
        return fleet_seconds / self.factor

    def fleet(self, wall_seconds: float) -> float:
        """Fleet seconds that pass in ``wall_seconds``."""
        return wall_seconds * self.factor


_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``10m``, ``2h`` or ``1d``; ValueError otherwise."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (like 90, 30s, 10m, 2h)") from None
    if not 0 <= seconds < math.inf:  # NaN compares false: refused too
        raise ValueError(f"{text!r}: a duration is a finite number of seconds, not negative")
    return seconds
