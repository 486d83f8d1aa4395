"""Grading scores into alerts, as AWS's thresholded RCF does: above max(floor, mean + z*sd).

A fixed cut on RCF scores is a poor alarm: on a noisy fan stream a cut at 1.0 flags several percent
of normal points. The thresholder keeps a time-decayed mean and deviation of recent scores and
flags a score only above both a floor and ``z`` deviations above that mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

__all__ = ["Thresholder", "settling"]


class Thresholder:
    """Flags anomalous scores of one stream; feed it every score, in order, with :meth:`observe`."""

    def __init__(self, *, z: float = 3.0, floor: float = 0.8, horizon: int = 1000, warmup: int = 10) -> None:
        for name, value in (("z", z), ("floor", floor)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name, count in (("horizon", horizon), ("warmup", warmup)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{name} must be a positive integer, got {count!r}")
        self.z, self.floor, self.warmup = float(z), float(floor), warmup
        self._decay = 1.0 / horizon
        self._weight = 0.0
        self._mean = 0.0
        self._square = 0.0
        self._count = 0

    @property
    def threshold(self) -> float:
        """The current cut: max(floor, mean + z * sd) of the scores observed so far."""
        if self._weight == 0:
            return self.floor
        variance = max(self._square - self._mean**2, 0.0)
        return max(self.floor, self._mean + self.z * math.sqrt(variance))

    def observe(self, score: float, *, settling: bool = False) -> bool:
        """Whether ``score`` is an anomaly; then learn it.

        Never during warm-up or for a 0.0 score (the forest is not ready). ``settling`` marks a
        reading taken while the fan follows a commanded speed change (see :func:`settling`): it is
        neither flagged nor learned, so the transient neither alerts nor inflates the threshold.
        A fan that does not reach its new target keeps scoring high after the window and alerts.
        """
        if not isinstance(score, int | float | np.floating) or not math.isfinite(score):
            raise ValueError(f"a score must be a finite number, got {score!r}")
        if score == 0.0 or settling:
            return False
        flagged = self._count >= self.warmup and score > self.threshold
        keep = 1.0 - self._decay
        self._weight = keep * self._weight + 1.0
        self._mean += (score - self._mean) / self._weight
        self._square += (score * score - self._square) / self._weight
        self._count += 1
        return bool(flagged)

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
