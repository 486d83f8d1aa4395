"""Warm fans' forests and thresholds from the lake's history (``fanwatch detector backfill``).

A fan's forest scores only once it has learned ``output_after`` readings, and its threshold trusts its
statistics only after some normal scores. When the lake already holds a fan's readings (a newly
deployed or restored detector, a models bucket emptied), the detector need not wait: this reads the
Parquet lake the stack's Firehose writes (``readings/dt=<day>/[thing=<thing>/]*.parquet``, columns
:data:`fanwatch.telemetry.LAKE_COLUMNS`), feeds each fan's readings in time order through exactly
what the detector feeds its forests (:func:`~fanwatch.cloud.detector.forest_points`: RPM, or tracking
error with the settle window), grades the scores with the detector's thresholder, and saves the
checkpoints and the fan's state where the detector loads them. A detector container that already
holds the fan notices the new state version and reloads.

A fan the detector has already scored live is left alone unless ``replace`` is asked for: the live
forest has learned readings the lake may not have yet (Firehose buffers up to 15 minutes). No anomaly
is raised for history: this learns, it does not alert. Nothing pre-trained ships in the repository;
a fan without history waits ``output_after`` readings, as before.
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fanwatch.cloud.detector import forest_points, forest_values, typical_speed
from fanwatch.cloud.lake import READINGS_TABLE
from fanwatch.cloud.stores import FanStateStore, StaleState
from fanwatch.errors import FanwatchError
from fanwatch.limits import MAX_RPM
from fanwatch.rcf import ForestManager, ModelStore, Thresholder
from fanwatch.telemetry import QUALITY_FLAGS, Reading

__all__ = ["Backfill", "FanHistory", "FanReport", "Lake", "LakeError", "days_back", "format_report"]

log = logging.getLogger(__name__)

#: Columns of the lake's readings table that backfill reads.
COLUMNS = ("thing", "fan", "boot", "seq", "ts", "rpm", "hz", "pulses", "window_s", "flags", "target_rpm")


class LakeError(FanwatchError, RuntimeError):
    """The lake cannot be listed or read at all (wrong bucket, no access)."""


@dataclass
class FanHistory:
    """One fan's readings from the lake, in time order, each once."""

    thing: str
    fan: str
    readings: list[Reading] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.thing}/{self.fan}"


class Lake:
    """The readings table of the Parquet lake in S3 (``s3`` is a boto3 client)."""

    def __init__(self, s3: Any, bucket: str, *, table: str = READINGS_TABLE) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = f"{table}/"
        self.counts: Counter[str] = Counter()  # objects, rows, duplicates, rows_refused, objects_unreadable
        self.problems: list[str] = []  # what was skipped, and why

    def objects(self, days: Iterable[date], things: set[str] | None = None) -> Iterator[str]:
        """Keys of the Parquet objects of ``days`` that may hold ``things`` (all, if None).

        A lake laid out by day and thing names each object's thing in its key, so only those objects
        are read; laid out by day alone, every object of the day may hold any thing.
        """
        paginator = self._s3.get_paginator("list_objects_v2")
        for day in days:
            prefix = f"{self.prefix}dt={day.isoformat()}/"
            try:
                pages = list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
            except self._s3.exceptions.NoSuchBucket:
                raise LakeError(f"no bucket {self.bucket!r}: give the stack's LakeBucket output") from None
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    thing = _partition(key, "thing")
                    if key.endswith(".parquet") and (things is None or thing is None or thing in things):
                        yield key

    def histories(self, days: Iterable[date], things: set[str] | None = None) -> list[FanHistory]:
        """Every fan's readings of ``days``, in time order, a reading delivered twice kept once."""
        seen: dict[str, set[tuple[str | None, int | None, datetime]]] = defaultdict(set)
        fans: dict[str, FanHistory] = {}
        for key in self.objects(days, things):
            for thing, fan, boot, seq, reading in self._rows(key):
                if things is not None and thing not in things:
                    continue
                history = fans.setdefault(f"{thing}/{fan}", FanHistory(thing, fan))
                identity = (boot, seq, reading.ts)
                if identity in seen[history.key]:
                    self.counts["duplicates"] += 1
                    continue
                seen[history.key].add(identity)
                history.readings.append(reading)
        for history in fans.values():
            history.readings.sort(key=lambda r: r.ts)
        return [fans[k] for k in sorted(fans)]

    def _rows(self, key: str) -> Iterator[tuple[str, str, str | None, int | None, Reading]]:
        import pyarrow.parquet as pq

        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            table = pq.read_table(io.BytesIO(body), columns=list(COLUMNS))
        except Exception as exc:  # pyarrow raises several kinds for a damaged or foreign file
            self.counts["objects_unreadable"] += 1
            self._problem(f"object skipped: {key} is not a readings Parquet file ({exc})")
            return
        self.counts["objects"] += 1
        for row in table.to_pylist():
            self.counts["rows"] += 1
            try:
                yield row["thing"], row["fan"], row["boot"], row["seq"], _reading(row)
            except (KeyError, TypeError, ValueError) as exc:
                self.counts["rows_refused"] += 1
                self._problem(f"row skipped in {key}: {exc}")

    def _problem(self, text: str) -> None:
        log.warning("lake %s", text)
        self.problems.append(text)


def _partition(key: str, name: str) -> str | None:
    for part in key.split("/"):
        if part.startswith(f"{name}="):
            return part[len(name) + 1 :]
    return None


def _reading(row: dict[str, Any]) -> Reading:
    """A lake row as the reading the device sent (timestamps are UTC without a zone in Parquet)."""
    ts = row["ts"]
    if not isinstance(ts, datetime):
        raise ValueError(f"ts {ts!r} is not a timestamp")
    rpm, target = row["rpm"], row["target_rpm"]
    for name, value in (("rpm", rpm), ("target_rpm", target)):
        if value is not None and not (
            isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= MAX_RPM
        ):
            raise ValueError(f"{name} {value!r} is not a speed")
    if rpm is None:
        raise ValueError("rpm is missing")
    flags = frozenset(row["flags"] or ()) & QUALITY_FLAGS
    return Reading(
        ts=ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC),
        rpm=float(rpm),
        hz=float(row["hz"] or 0.0),
        pulses=int(row["pulses"] or 0),
        window_s=float(row["window_s"] or 1.0),
        flags=flags,
        target_rpm=None if target is None else float(target),
    )


@dataclass(frozen=True)
class FanReport:
    """What backfill did for one fan."""

    key: str
    readings: int
    first: datetime | None
    last: datetime | None
    status: str  # warmed | skipped: scored live | skipped: went live meanwhile | no readings
    ready: bool = False  # its forest scores from the next reading
    threshold: float | None = None


class Backfill:
    """Warms fans from their :class:`FanHistory`; see the module docstring.

    ``forests`` makes an empty forest manager with the detector's parameters (one per fan, so memory
    stays that of one fan); ``models`` is the store the detector loads checkpoints from.
    """

    def __init__(
        self,
        *,
        forests: Callable[[], ForestManager],
        models: ModelStore,
        states: FanStateStore,
        thresholder: Thresholder,
        settle_seconds: float,
    ) -> None:
        self._forests = forests
        self._models = models
        self._states = states
        self._thresholder = thresholder
        self._settle = timedelta(seconds=settle_seconds)

    def warm(self, history: FanHistory, *, replace: bool = False) -> FanReport:
        readings = history.readings
        if not readings:
            return FanReport(history.key, 0, None, None, "no readings")
        first, last = readings[0].ts, readings[-1].ts
        saved = self._states.get(history.key)
        if saved.last_scored is not None and not replace:
            return FanReport(history.key, len(readings), first, last, "skipped: scored live")
        state = copy.deepcopy(saved)  # its message numbering stays the live detector's
        state.stats = type(state.stats)()
        state.target = state.settle_until = state.anomaly_since = None
        state.last_scored = None
        forests = self._forests()
        counts: Counter[str] = Counter()
        points = forest_points(
            history.thing, history.fan, readings, state, settle=self._settle, counts=counts
        )
        scores: list[float] = (
            forests.process([p.key for p in points], forest_values(points)).tolist() if points else []
        )
        for point, score in zip(points, scores, strict=True):
            if score > 0 and not self._thresholder.grade(score, state.stats).anomalous:
                state.typical_rpm = typical_speed(state.typical_rpm, point.reading.rpm)
        state.last_scored = max(last, saved.last_scored) if saved.last_scored is not None else last
        try:
            self._states.put(history.key, state)
        except StaleState:
            return FanReport(history.key, len(readings), first, last, "skipped: went live meanwhile")
        ready = False
        for key in sorted({p.key for p in points}):
            forest = forests.forest(key)
            self._models.put(key, forest.to_bytes())
            if key == points[-1].key:
                ready = forest.is_output_ready
        return FanReport(
            history.key,
            len(readings),
            first,
            last,
            "warmed",
            ready=ready,
            threshold=self._thresholder.threshold(state.stats),
        )


def days_back(until: date, days: int) -> list[date]:
    """The ``days`` days up to and including ``until``, oldest first."""
    return [until - timedelta(days=n) for n in range(days - 1, -1, -1)]


def format_report(reports: Sequence[FanReport]) -> str:
    """One line per fan for ``fanwatch detector backfill``: its readings, the time they span, and what
    became of it (warmed, with its forest's readiness and threshold, or why it was skipped)."""
    lines = []
    for r in reports:
        span = (
            ""
            if r.first is None or r.last is None
            else f" {r.first:%Y-%m-%d %H:%M} .. {r.last:%Y-%m-%d %H:%M} UTC"
        )
        detail = ""
        if r.status == "warmed":
            detail = f", forest {'ready' if r.ready else 'still warming up'}, threshold {r.threshold:.2f}"
        lines.append(f"{r.key}: {r.readings:,} readings{span}: {r.status}{detail}")
    return "\n".join(lines)
