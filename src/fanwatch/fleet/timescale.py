"""Fleet time, which a local fleet runs faster than the clock on the wall.

A rollout of 5 devices a minute, a 10-minute soak or a 30-minute job timeout would make a test of the
local fleet take an hour. Every duration the fleet tools and the local control plane wait for is
therefore "fleet time", converted to wall seconds by one factor, ``FANWATCH_TIME_SCALE`` (60: a fleet
minute passes in a wall second). Timestamps stay honest wall-clock times; only the waiting is scaled.
Against AWS the factor is 1, and nothing else changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

__all__ = ["TIME_SCALE_VARIABLE", "TimeScale"]

#: Environment variable holding the factor (fleet seconds per wall second); 1 when unset.
TIME_SCALE_VARIABLE: Final = "FANWATCH_TIME_SCALE"


@dataclass(frozen=True, slots=True)
class TimeScale:
    """``factor`` fleet seconds pass in one wall second."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, got {self.factor}")

    @classmethod
    def from_env(cls) -> TimeScale:
        text = os.environ.get(TIME_SCALE_VARIABLE, "").strip()
        if not text:
            return cls()
        try:
            return cls(float(text))
        except ValueError:
            raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, got {text!r}") from None

    def wall(self, fleet_seconds: float) -> float:
        """Wall seconds for a fleet duration."""
        return fleet_seconds / self.factor

    def fleet(self, wall_seconds: float) -> float:
        """Fleet seconds that pass in ``wall_seconds``."""
        return wall_seconds * self.factor
