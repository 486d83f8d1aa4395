"""Grading scores into alerts, as AWS's thresholded RCF does: above max(floor, mean + z*sd).

A fixed cut on RCF scores is a poor alarm: on a noisy fan stream a cut at 1.0 flags several percent
of normal points. The thresholder keeps an exponentially weighted mean and variance of a stream's
recent *normal* scores and flags a score above both a floor and ``z`` deviations above that mean.
Flagged scores are not learned, so a long fault does not teach the stream that faults are normal.

One :class:`Thresholder` serves the detector Lambda (one :class:`ScoreStats` per fan, kept in
DynamoDB between invocations) and a single stream in a script or benchmark (its own statistics,
:meth:`Thresholder.observe`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Grade", "ScoreStats", "Thresholder", "settling"]


@dataclass(slots=True)
class ScoreStats:
    """Running statistics of one stream's normal scores (plain data, so it can be stored)."""

    count: int = 0
    mean: float = 0.0
    var: float = 0.0

    def to_item(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "var": self.var}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ScoreStats:
        return cls(int(item.get("count", 0)), float(item.get("mean", 0.0)), float(item.get("var", 0.0)))


@dataclass(frozen=True, slots=True)
class Grade:
    """The verdict on one score, and the cut it was measured against."""

    anomalous: bool
    threshold: float


def _finite(name: str, value: object, *, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")
    return float(value)


def _count(name: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


class Thresholder:
    """Decides which scores are anomalous.

    ``z``: standard deviations above the mean of recent normal scores; ``floor``: the lowest cut (on
    fan streams read once a second, 2.5-3 keeps healthy fans quiet for days); ``half_life``: normal
    scores after which an old one weighs half; ``warmup``: normal scores seen before the statistics
    are trusted (until then the floor alone applies, so a fault early on is still flagged).
    """

    def __init__(self, *, z: float = 3.0, floor: float = 0.8, half_life: int = 500, warmup: int = 50) -> None:
        self.z = _finite("z", z, low=0.0)
        self.floor = _finite("floor", floor, low=0.0)
        if self.floor == 0:  # nothing would ever be learned: every score would be flagged while warming up
            raise ValueError("floor must be above 0 (above the scores of normal readings)")
        self.half_life = _count("half_life", half_life, low=1)
        self.warmup = _count("warmup", warmup, low=0)
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.stats = ScoreStats()  # the stream of observe(); grade() takes anyone's

    def threshold(self, stats: ScoreStats | None = None) -> float:
        """The current cut for ``stats`` (default: this thresholder's own stream)."""
        stats = self.stats if stats is None else stats
        if stats.count < self.warmup:
            return self.floor
        # the variance starts from 0 at the first score; early on it is that much too small
        settled = 1.0 - (1.0 - self._alpha) ** max(stats.count - 1, 1)
        return max(self.floor, stats.mean + self.z * math.sqrt(stats.var / settled))

    def grade(self, score: float, stats: ScoreStats | None = None, *, settling: bool = False) -> Grade:
        """Grade ``score`` against ``stats`` (default: this thresholder's own), then learn it if normal.

        A 0.0 score (the forest is not ready yet) and a ``settling`` one (taken while a fan follows a
        commanded speed change, see :func:`settling`) are neither flagged nor learned.
        """
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float | np.floating)
            or not math.isfinite(score)
        ):
            raise ValueError(f"a score must be a finite number, got {score!r}")
        stats = self.stats if stats is None else stats
        threshold = self.threshold(stats)
        if score == 0.0 or settling:
            return Grade(False, threshold)
        if score > threshold:
            return Grade(True, threshold)
        if stats.count == 0:
            stats.mean, stats.var = float(score), 0.0
        else:
            a = self._alpha
            delta = float(score) - stats.mean
            stats.mean += a * delta
            stats.var = (1.0 - a) * (stats.var + a * delta * delta)
        stats.count += 1
        return Grade(False, threshold)

    def observe(self, score: float, *, settling: bool = False) -> bool:
        """Whether ``score``, the next of this thresholder's own stream, is anomalous."""
        return self.grade(score, settling=settling).anomalous

    def observe_many(
        self, scores: Iterable[float], *, settling: Iterable[bool] | None = None
    ) -> npt.NDArray[np.bool_]:
        """:meth:`observe` each score in order (with its ``settling`` flag, if given)."""
        values = [float(s) for s in scores]
        flags = [False] * len(values) if settling is None else [bool(f) for f in settling]
        if len(flags) != len(values):
            raise ValueError(f"got {len(flags)} settling flags for {len(values)} scores")
        return np.array([self.observe(v, settling=f) for v, f in zip(values, flags, strict=True)], dtype=bool)


def settling(targets: npt.ArrayLike, *, window: int) -> npt.NDArray[np.bool_]:
    """Which readings fall within ``window`` readings of a change of the commanded target.

    ``targets`` is the target (or PWM duty) carried by each reading, in order. Choose ``window``
    as the shingle size plus the time the fan takes to settle (about three time constants).
    """
    values = np.asarray(targets, dtype=np.float64).reshape(-1)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"window must be an integer >= 0, got {window!r}")
    if not np.isfinite(values).all():
        raise ValueError("targets must be finite numbers")
    changed = np.flatnonzero(np.diff(values) != 0) + 1
    marks = np.zeros(len(values) + window + 1, np.int64)
    np.add.at(marks, changed, 1)
    np.add.at(marks, changed + window, -1)
    return np.cumsum(marks)[: len(values)] > 0
