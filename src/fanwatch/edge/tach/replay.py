"""Replay of a recorded CSV as tachometer edges, on the caller's clock.

Two recordings are understood, told apart by the header:

* edges: a column ``t`` of edge times in seconds (what a logic analyser or ``fanwatch`` records);
* a speed trace: a time column (``t`` in seconds, or ``ts``/``TIME`` as ISO 8601 or epoch seconds)
  and an ``rpm``/``RPM`` column, as in the original design's log; pulses are regenerated from the
  speed, held constant between rows.

Replay starts at the source's ``t0`` (clock seconds); with ``loop`` it starts over at the end.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from pathlib import Path

from fanwatch.errors import FanwatchError
from fanwatch.telemetry import ContractError, parse_ts

__all__ = ["CsvReplay", "ReplayError"]


class ReplayError(FanwatchError, ValueError):
    """The recording cannot be replayed; the message names the file, line and column."""


def _time_column(header: list[str]) -> str | None:
    return next((c for c in ("t", "ts", "TIME", "time") if c in header), None)


def _seconds(value: str, column: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        if column == "t":
            raise ReplayError(f"{where}: column t: expected seconds, got {value!r}") from None
        try:
            return parse_ts(value, column, assume_utc=True).timestamp()
        except ContractError as exc:
            raise ReplayError(f"{where}: column {exc}") from None
    if not math.isfinite(number):
        raise ReplayError(f"{where}: column {column}: expected a finite number, got {value!r}")
    return number


def _load(path: Path, pulses_per_rev: int) -> list[float]:
    """Edge times relative to the first row."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read the recording ({exc.strerror})") from None
    if not rows:
        raise ReplayError(f"{path}: the recording is empty")
    header = [c.strip() for c in rows[0]]
    time_col = _time_column(header)
    rpm_col = next((c for c in ("rpm", "RPM") if c in header), None)
    if time_col is None:
        raise ReplayError(f"{path}:1: no time column (expected t, ts or TIME) in header {header}")
    times: list[float] = []
    rpms: list[float] = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path}:{n}"
        if len(row) != len(header):
            raise ReplayError(f"{where}: {len(row)} columns, the header has {len(header)}")
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        t = _seconds(cells[time_col], time_col, where)
        if times and t < times[-1]:
            raise ReplayError(f"{where}: column {time_col}: time goes backwards ({t} after {times[-1]})")
        times.append(t)
        if rpm_col is not None:
            try:
                rpm = float(cells[rpm_col])
            except ValueError:
                raise ReplayError(
                    f"{where}: column {rpm_col}: expected a number, got {cells[rpm_col]!r}"
                ) from None
            if not 0 <= rpm < 1e6:
                raise ReplayError(f"{where}: column {rpm_col}: {rpm} is out of range [0, 1e6)")
            rpms.append(rpm)
    if not times:
        raise ReplayError(f"{path}: the recording has a header and no rows")
    start = times[0]
    if rpm_col is None:
        return [t - start for t in times]
    edges: list[float] = []
    phase, k = 0.0, 1  # pulses so far, and the number of the next edge
    for (t_a, rpm), t_b in zip(zip(times, rpms, strict=True), times[1:], strict=False):
        rate = rpm / 60.0 * pulses_per_rev
        while rate > 0 and (t_edge := t_a + (k - phase) / rate) < t_b:
            edges.append(t_edge - start)
            k += 1
        phase += rate * (t_b - t_a)
        k = max(k, math.ceil(phase))
    return edges


class CsvReplay:
    """A recorded CSV as a :class:`~fanwatch.edge.tach.source.PulseSource`.

    Its readings carry the ``simulated`` flag: they are not live, whatever sensor once recorded them.
    """

    simulated = True

    def __init__(
        self, path: str | Path, *, pulses_per_rev: int = 2, loop: bool = False, t0: float = 0.0
    ) -> None:
        self.path = Path(path)
        edges = _load(self.path, pulses_per_rev)
        if not edges:
            raise ReplayError(f"{self.path}: the recording holds no pulses")
        mean = (edges[-1] - edges[0]) / (len(edges) - 1) if len(edges) > 1 else 1.0
        mean = mean if mean > 0 else 1.0
        # the first edge one mean period after t0, and a lap one mean period longer than the last edge,
        # so a looped recording keeps its rhythm at the seam
        self._edges = [e - edges[0] + mean for e in edges]
        self._length = self._edges[-1]
        self.loop = loop
        self._t0 = t0
        self._done_to = t0

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._done_to - self._t0 > self._edges[-1]

    def pulses(self, until: float) -> Sequence[float]:
        if until <= self._done_to:
            return []
        out: list[float] = []
        lo, hi = self._done_to - self._t0, until - self._t0
        lap = math.floor(lo / self._length) if self.loop else 0
        while True:
            base = lap * self._length
            if base > hi:
                break
            a = bisect.bisect_right(self._edges, lo - base)
            b = bisect.bisect_right(self._edges, hi - base)
            out.extend(self._t0 + base + e for e in self._edges[a:b])
            if not self.loop:
                break
            lap += 1
        self._done_to = until
        return out

    def label_at(self, t: float) -> None:
        return None

    def target_at(self, t: float) -> None:
        return None  # a real or recorded fan: the configured target, if any

    def close(self) -> None:
        """Nothing to release: the recording was read whole at construction."""
