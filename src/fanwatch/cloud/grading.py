"""Grade forest scores per fan the way AWS's thresholded RCF does: ``max(floor, mean + k·sd)``.

A fixed cut cries wolf: on a fan stream normal scores have a median near 0.67 but a long tail, so a
cut at 1.0 flags 5-8 % of normal points. Each fan instead keeps an exponentially weighted mean and
variance of its own recent normal scores, and a reading is anomalous when it exceeds that fan's
threshold, never lower than ``floor``. Anomalous scores do not feed the statistics, so a long fault
does not teach the fan that faults are normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Grader", "ScoreStats"]


@dataclass(slots=True)
class ScoreStats:
    """Running statistics of one fan's normal scores and speed (plain data, kept in DynamoDB)."""

    count: int = 0
    mean: float = 0.0
    var: float = 0.0
    rpm: float | None = None  # typical speed: EWMA of the readings graded normal

    def to_item(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "var": self.var, "rpm": self.rpm}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ScoreStats:
        rpm = item.get("rpm")
        return cls(
            int(item.get("count", 0)),
            float(item.get("mean", 0.0)),
            float(item.get("var", 0.0)),
            None if rpm is None else float(rpm),
        )


class Grader:
    """Decides which scores are anomalous, per fan.

    ``floor``: the lowest threshold (a stack parameter, 1.5-2 on fan streams); ``k``: standard
    deviations above the mean; ``half_life``: readings after which an old score weighs half;
    ``warmup``: normal scores seen before the statistics are trusted (the floor alone applies).
    """

    def __init__(self, *, floor: float = 1.8, k: float = 3.0, half_life: int = 500, warmup: int = 50) -> None:
        if floor <= 0 or k < 0 or half_life < 1 or warmup < 0:
            raise ValueError("floor must be > 0, k >= 0, half_life >= 1, warmup >= 0")
        self.floor = floor
        self.k = k
        self.warmup = warmup
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)

    def threshold(self, stats: ScoreStats) -> float:
        if stats.count < self.warmup:
            return self.floor
        return max(self.floor, stats.mean + self.k * math.sqrt(stats.var))

    def grade(self, stats: ScoreStats, score: float, rpm: float) -> tuple[bool, float]:
        """(anomalous, threshold) for one score; a normal score updates ``stats``."""
        threshold = self.threshold(stats)
        if score > threshold:
            return True, threshold
        if stats.count == 0:
            stats.mean, stats.var, stats.rpm = score, 0.0, rpm
        else:
            a = self._alpha
            delta = score - stats.mean
            stats.mean += a * delta
            stats.var = (1.0 - a) * (stats.var + a * delta * delta)
            stats.rpm = rpm if stats.rpm is None else stats.rpm + a * (rpm - stats.rpm)
        stats.count += 1
        return False, threshold
