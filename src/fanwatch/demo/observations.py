"""What the demo saw arrive from the fleet, read with the wire contract as the cloud side reads it.

Every message is kept as it arrived (for ``messages.jsonl``); the ones that follow the contract are
also kept parsed, per thing. QoS 1 is at least once, so a redelivered message (same thing, fan, boot
and sequence number) is counted as a duplicate and not again. A message that breaks the contract, or
arrives on a topic the fleet does not publish on, is refused with the reason and never stops the
demo: :meth:`Observations.add` does not raise, because it runs on the MQTT client's thread, whose
loop an exception would end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fanwatch.demo.scenario import FanPlan, Scenario, ThingPlan

if TYPE_CHECKING:
    from fanwatch.demo.ledger import EdgeLedger
    from fanwatch.standin.inbox import Notification
from fanwatch.telemetry import (
    Alert,
    AlertState,
    ContractError,
    Reading,
    Status,
    Telemetry,
    TopicKind,
    parse_alert,
    parse_status,
    parse_telemetry,
    topic_parts,
)

if TYPE_CHECKING:
    from fanwatch.demo.ledger import EdgeLedger
    from fanwatch.standin.inbox import Notification

__all__ = ["CloudRecord", "DemoRun", "Observations", "Refused", "Scored", "ThingLog", "Timeline"]

_PARSERS: Final[dict[TopicKind, Callable[..., Telemetry | Alert | Status]]] = {
    TopicKind.TELEMETRY: parse_telemetry,
    TopicKind.ALERTS: parse_alert,
    TopicKind.STATUS: parse_status,
}


@dataclass(frozen=True, slots=True)
class Refused:
    """A message the observer could not read, and the contract's reason: the summary lists them."""

    topic: str
    reason: str


@dataclass(slots=True)
class ThingLog:
    """One thing's messages, in arrival order, without duplicates."""

    telemetry: list[Telemetry] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    duplicates: int = 0
    _seen: set[tuple[object, ...]] = field(default_factory=set)

    @property
    def messages(self) -> int:
        return len(self.telemetry) + len(self.alerts) + len(self.statuses)

    def first(self) -> Reading | None:
        return min((r for m in self.telemetry for r in m.readings), key=lambda r: r.ts, default=None)

    def last_reading(self) -> datetime | None:
        return max((r.ts for m in self.telemetry for r in m.readings), default=None)

    def add(self, message: Telemetry | Alert | Status) -> None:
        """Keep ``message`` unless it was kept before (a QoS 1 redelivery)."""
        if isinstance(message, Telemetry):
            key: tuple[object, ...] = ("telemetry", *message.key)
            kept: list[Any] = self.telemetry
        elif isinstance(message, Alert):
            key, kept = ("alert", message.fan, message.boot, message.seq), self.alerts
        else:
            key, kept = ("status", message.boot, message.ts), self.statuses
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        kept.append(message)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Simulated seconds since a thing's first reading: readings carry wall-clock timestamps, and the
    thing's fans ran ``scale`` times faster than the wall clock."""

    origin: datetime
    scale: float

    def at(self, ts: datetime) -> float:
        return (ts - self.origin).total_seconds() * self.scale


class Observations:
    """Thread-safe: the MQTT client's thread adds, the demo's loop reads."""

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale
        self.things: dict[str, ThingLog] = {}
        self.refused: list[Refused] = []
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes) -> None:
        """Take one message as it arrived on ``topic``; never raises."""
        with self._lock:
            self.received.append((topic, payload))
            try:
                self._accept(topic, payload)
            except ContractError as exc:
                self.refused.append(Refused(topic, str(exc)))
            except Exception as exc:  # on the MQTT thread: a parser bug must not stop the observer
                self.refused.append(Refused(topic, f"$: unreadable ({type(exc).__name__})"))

    def _accept(self, topic: str, payload: bytes) -> None:
        thing, kind = topic_parts(topic)
        message = _PARSERS[kind](payload, thing=thing)
        self.things.setdefault(thing, ThingLog()).add(message)

    @property
    def count(self) -> int:
        """Messages received, duplicates and refused ones included."""
        with self._lock:
            return len(self.received)

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """thing -> (telemetry, alerts raised, messages) so far, for the progress line."""
        with self._lock:
            return {
                thing: (
                    len(log.telemetry),
                    sum(a.state == AlertState.RAISED for a in log.alerts),
                    log.messages,
                )
                for thing, log in self.things.items()
            }

    def timeline(self, thing: str, plan: ThingPlan | None = None) -> Timeline | None:
        """The thing's simulated clock, from when its fans started.

        A reading cannot be older than its fan: the first one ends the first measurement window
        (``window_s`` simulated seconds), later if the component was slow to take it. With the thing's
        ``plan``, the ground truth on the readings pins the origin down further: a reading labelled
        with a fault cannot precede that fault's start, nor one that carries a new setpoint its time.
        """
        log = self.things.get(thing)
        first = None if log is None else log.first()
        if log is None or first is None:
            return None
        origin = first.ts - timedelta(seconds=first.window_s / self.scale)
        fans = {} if plan is None else {fan.id: fan for fan in plan.fans}
        for message in log.telemetry:
            fan = fans.get(message.fan)
            if fan is None:
                continue
            for reading in message.readings:
                earliest = _earliest(fan, reading)
                if earliest is not None:
                    origin = min(origin, reading.ts - timedelta(seconds=earliest / self.scale))
        return Timeline(origin, self.scale)

    def simulated_seconds(self, thing: str) -> float:
        """How much simulated time the thing's readings span."""
        log, timeline = self.things.get(thing), self.timeline(thing)
        last = None if log is None else log.last_reading()
        return 0.0 if timeline is None or last is None else timeline.at(last)

    def __iter__(self) -> Iterator[tuple[str, ThingLog]]:
        return iter(sorted(self.things.items()))

    def write_jsonl(self, path: Path) -> None:
        """Every message as it arrived, one JSON object a line (topic, payload as text)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("w", encoding="utf-8") as out:
            for topic, payload in self.received:
                text = payload.decode("utf-8", errors="replace")
                out.write(json.dumps({"topic": topic, "payload": text}) + "\n")


def _earliest(fan: FanPlan, reading: Reading) -> float | None:
    """The simulated time before which ``reading`` cannot have been taken, when its ground truth says."""
    bounds = [f.start_s for f in fan.faults if f.kind == reading.label]
    bounds += [s.at_s for s in fan.setpoints if reading.target_rpm == s.rpm != fan.normal_rpm]
    return min(bounds, default=None)


@dataclass(frozen=True, slots=True)
class Scored:
    """A reading's score as the detector graded it."""

    ts: datetime
    score: float
    threshold: float


@dataclass(slots=True)
class CloudRecord:
    """What the cloud side holds at the end of a run."""

    readings: list[dict[str, Any]] = field(default_factory=list)  # the lake's readings table
    events: list[dict[str, Any]] = field(default_factory=list)  # the lake's events table
    notifications: list[Notification] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[tuple[str, str], list[Scored]] = field(default_factory=dict)  # (thing, fan) -> scores
    held_back: int = 0  # notifications the cooldown held back
    settled: bool = True  # False: the stand-in was still busy when the run stopped waiting


@dataclass(slots=True)
class DemoRun:
    """A finished run: what was planned, where it ran, what arrived, and what went wrong on the way."""

    scenario: Scenario
    where: str
    observations: Observations
    wall_s: float
    problems: list[str] = field(default_factory=list)
    ledger: EdgeLedger | None = None  # what the devices sent, when the run counted it
    cloud: CloudRecord | None = None  # what the cloud side holds, when the run had one
    # wall-clock instants (SNS's timestamps) in the time the readings carry, when that is not the wall's
    wall_to_stamps: Callable[[datetime], datetime] | None = None
