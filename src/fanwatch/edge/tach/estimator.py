"""RPM from tachometer edge timestamps, robust to jitter, glitch pulses and missing pulses.

Edges closer together than a quarter of the shortest plausible period (derived from ``max_rpm``, never a fixed
10 ms) are debounced away. Inside the window each remaining edge gets a pulse index by comparing its
distance from the previous kept edge with the running pulse period: an edge that lands in the same
index slot as a better-placed one is a glitch, a gap of k periods means k-1 pulses went missing. The
period is the least-squares slope of time against pulse index, so jitter averages out over every edge
instead of just the two at the ends. A slow fan that gives fewer than ``min_edges`` edges in the window
is measured over its last ``min_edges`` edges instead, and the reading says ``estimated``.

When the edges stop, the reading falls with the time since the last edge (a fan that is slowing cannot
be faster than one pulse per gap) and is 0 with the ``stalled`` flag once ``stall_timeout_s`` passes
without an edge: it never repeats the last speed of a fan that has stopped.

There is no reading (``None``) until one has been measured: before a full window has passed since the
source began listening (``started_at``), nor, while fewer than two edges have arrived, before the stall
timeout has. A fan just opened has not been seen to stall, and ``stalled`` means exactly that.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from fanwatch.limits import DEFAULT_MAX_RPM
from fanwatch.telemetry import QualityFlag

__all__ = ["Estimate", "RpmEstimator"]

#: How far (in periods) an edge may sit from its pulse slot and still count as real.
_SLOT_TOLERANCE = 0.3
#: Raw intervals in the rolling median that gives the expected period near an edge.
_LOCAL_INTERVALS = 21


@dataclass(frozen=True, slots=True)
class Estimate:
    """One RPM reading and how it was measured: the pulse frequency, how many edges it rests on, over what
    window, and its quality flags."""

    rpm: float
    hz: float  # pulse frequency
    pulses: int  # edges used
    window_s: float
    flags: frozenset[str]


class RpmEstimator:
    """Turns edge timestamps into RPM readings (see the module docstring for how)."""

    def __init__(
        self,
        *,
        pulses_per_rev: int = 2,
        max_rpm: float = DEFAULT_MAX_RPM,
        window_s: float = 1.0,
        stall_timeout_s: float = 2.0,
        min_edges: int = 8,
        started_at: float,
    ) -> None:
        if pulses_per_rev < 1 or max_rpm <= 0 or window_s <= 0 or min_edges < 2:
            raise ValueError("pulses_per_rev >= 1, max_rpm > 0, window_s > 0 and min_edges >= 2 are required")
        if stall_timeout_s < window_s:
            raise ValueError("stall_timeout_s must be at least window_s")
        self.pulses_per_rev = pulses_per_rev
        self.max_rpm = max_rpm
        self.window_s = window_s
        self.stall_timeout_s = stall_timeout_s
        self.min_edges = min_edges
        self.started_at = started_at  # clock seconds when the source began listening
        self._edges: deque[float] = deque()
        self._last_edge: float | None = None
        self._debounced = 0  # edges rejected by the debounce since the last reading

    @property
    def debounce_s(self) -> float:
        """A quarter of the pulse period at ``max_rpm``: closer edges cannot both be real, jitter or not."""
        return 15.0 / (self.max_rpm * self.pulses_per_rev)

    def add(self, edges: Iterable[float]) -> None:
        debounce = self.debounce_s
        for t in edges:
            if self._last_edge is not None and t - self._last_edge < debounce:
                self._debounced += 1
                continue
            self._edges.append(t)
            self._last_edge = t

    def read(self, now: float) -> Estimate | None:
        """The speed at ``now``, or None while nothing has been measured (see the module docstring)."""
        horizon = now - self.stall_timeout_s
        while self._edges and self._edges[0] < horizon:
            self._edges.popleft()
        listened = now - self.started_at
        if listened < self.window_s or (len(self._edges) < 2 and listened < self.stall_timeout_s):
            return None
        glitches, self._debounced = self._debounced, 0
        flags: set[str] = {QualityFlag.GLITCH} if glitches else set()
        if len(self._edges) < 2:
            stalled = frozenset(flags | {QualityFlag.STALLED})
            return Estimate(0.0, 0.0, len(self._edges), self.stall_timeout_s, stalled)

        in_window = [t for t in self._edges if t >= now - self.window_s]
        used = in_window if len(in_window) >= self.min_edges else list(self._edges)[-self.min_edges :]
        if len(used) < self.min_edges:
            flags.add(QualityFlag.ESTIMATED)
        period, dropped, missing = _fit_period(used)
        if dropped:
            flags.add(QualityFlag.GLITCH)
        if missing:
            flags.add(QualityFlag.DROPOUT)
        since_last = now - used[-1]
        if since_last > 2.5 * period:  # slowing down or stopping: cannot be faster than one pulse per gap
            period = max(period, since_last)
            flags.add(QualityFlag.ESTIMATED)
        window = max(self.window_s, now - used[0])
        if window > self.window_s * 1.0001:
            flags.add(QualityFlag.ESTIMATED)
        hz = 1.0 / period
        return Estimate(60.0 * hz / self.pulses_per_rev, hz, len(used) - dropped, window, frozenset(flags))


def _fit_period(edges: list[float]) -> tuple[float, int, int]:
    """(pulse period, edges dropped as glitches, pulses found missing) for edges in time order."""
    intervals = [b - a for a, b in itertools.pairwise(edges)]
    # the expected period near each edge: a rolling median of the raw intervals, robust to a glitch or a
    # missing pulse, following a fan that speeds up, and never fed back from the slots it decides
    half = _LOCAL_INTERVALS // 2
    local = [statistics.median(intervals[max(0, k - half) : k + half + 1]) for k in range(len(intervals))]
    # anchor on the first edge that starts a whole period, so a leading glitch cannot shift the grid
    first = next((k for k, d in enumerate(intervals) if abs(d / local[k] - 1) <= _SLOT_TOLERANCE), 0)
    kept_t, kept_i = [edges[first]], [0]
    dropped = 0  # edges before the anchor are left out of the fit but not called glitches: they may be real
    j = first + 1
    while j < len(edges):
        period = local[j - 1]
        slot = round((edges[j] - kept_t[-1]) / period)
        best, best_err = j, abs((edges[j] - kept_t[-1]) / period - slot)
        while j + 1 < len(edges) and round((edges[j + 1] - kept_t[-1]) / period) == slot:
            j += 1  # two edges in one slot: the one nearer the grid is real, the other a glitch
            dropped += 1
            err = abs((edges[j] - kept_t[-1]) / period - slot)
            if err < best_err:
                best, best_err = j, err
        j += 1
        if slot == 0 or best_err > _SLOT_TOLERANCE:  # off the grid: a glitch
            dropped += 1
            continue
        kept_t.append(edges[best])
        kept_i.append(kept_i[-1] + slot)
    if len(kept_t) < 2:
        return statistics.median(intervals), dropped, 0
    slope, _ = _least_squares(kept_i, kept_t)
    return slope, dropped, kept_i[-1] - (len(kept_i) - 1)


def _least_squares(xs: list[int], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, my - slope * mx
