"""What a demo run showed, on one simulated time axis, and the verdict on it.

The summary, the HTML report and the pictures are all drawn from a :class:`Story`: per fan, the readings
(as the lake stored them, or as the edge sent them when there is no lake), the forest's score of each
reading, what the edge and the cloud found (:class:`Finding`) and what a person was told
(:class:`Notice`). :func:`judge` then holds the findings against the fault schedule the demo injected:
each fault is caught by an edge alert, an RCF anomaly, both, or missed; a finding on a healthy fan, or
on a faulty one outside its faults, is a false alarm. A finding is blamed on the fault acting on its
fan at that moment, else on the one that ended just before (:data:`AFTER_FAULT_S`).

Times are simulated seconds since the thing's fans started (the schedule's clock), so the fault
windows, the readings and the findings line up however fast the run went.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from fanwatch.demo.scenario import FanPlan, Fault, Scenario
from fanwatch.telemetry import AlertState

__all__ = [
    "AFTER_FAULT_S",
    "Caught",
    "FanStory",
    "FaultVerdict",
    "Finding",
    "Ledger",
    "Notice",
    "Point",
    "Source",
    "Story",
    "Verdict",
    "judge",
]

#: A finding this long after a fault ended is still its doing: the fan spinning up after a stall, the
#: forest's shingle leaving the fault's points, an alert's hysteresis.
AFTER_FAULT_S: Final = 90.0


class Source(StrEnum):
    """Who found something."""

    EDGE = "edge"  # an alert the device's filter raised (stall, under-speed, over-speed, sensor lost)
    RCF = "rcf"  # an anomaly the cloud's Random Cut Forest found


class Caught(StrEnum):
    """What caught an injected fault."""

    EDGE = "edge alert"
    RCF = "RCF anomaly"
    BOTH = "both"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class Point:
    """One reading on the simulated time axis."""

    at_s: float
    rpm: float
    target_rpm: float | None = None
    flags: frozenset[str] = frozenset()
    label: str = "normal"


@dataclass(frozen=True, slots=True)
class Finding:
    """An edge alert (raised or cleared) or an RCF anomaly about one fan."""

    thing: str
    fan: str
    source: Source
    kind: str  # stall, under_speed, ... for the edge; rcf for the forest
    at_s: float
    rpm: float
    state: AlertState = AlertState.RAISED  # an anomaly is always raised
    severity: str = "warning"
    score: float | None = None
    threshold: float | None = None
    detail: str = ""

    @property
    def raised(self) -> bool:
        return self.state == AlertState.RAISED

    def describe(self) -> str:
        """``RCF anomaly at 2,310 rpm, score 3.10 over threshold 1.80`` or ``edge stall raised at 0 rpm``."""
        if self.source is Source.RCF:
            score = "" if self.score is None else f", score {self.score:.2f}"
            limit = "" if self.threshold is None else f" over threshold {self.threshold:.2f}"
            return f"RCF anomaly at {self.rpm:,.0f} rpm{score}{limit}"
        return f"edge {self.kind} {self.state} at {self.rpm:,.0f} rpm"


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification as a subscriber received it."""

    thing: str
    fan: str
    at_s: float
    severity: str
    kind: str
    source: str
    subject: str
    text: str


@dataclass(slots=True)
class FanStory:
    """Everything the run saw of one fan, on the simulated time axis: readings, scores, thresholds,
    findings and the notifications about it (what the report draws)."""

    thing: str
    plan: FanPlan
    readings: list[Point] = field(default_factory=list)
    scores: list[tuple[float, float]] = field(default_factory=list)  # (at_s, score) of every scored reading
    thresholds: list[tuple[float, float]] = field(default_factory=list)  # (at_s, the fan's threshold then)
    findings: list[Finding] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.thing, self.plan.id)

    @property
    def label(self) -> str:
        return f"{self.thing}/{self.plan.id}"


@dataclass(frozen=True, slots=True)
class Ledger:
    """Readings counted at both ends: what the devices handed to IoT Core, and what the lake holds.

    Readings are told apart by (thing, fan, boot, seq, ts): a message is numbered per boot and carries
    readings with distinct timestamps.
    """

    sent: int
    stored: int
    lost: int  # sent, never stored
    duplicated: int  # stored more than once (counted once per extra copy)
    unexpected: int = 0  # stored, never sent (another source wrote to the lake)

    @property
    def exact(self) -> bool:
        return self.lost == self.duplicated == self.unexpected == 0 and self.sent == self.stored

    @classmethod
    def of(cls, sent: Iterable[tuple[object, ...]], stored: Iterable[tuple[object, ...]]) -> Ledger:
        sent_keys = list(sent)
        stored_keys = list(stored)
        at_edge, in_lake = set(sent_keys), set(stored_keys)
        return cls(
            sent=len(sent_keys),
            stored=len(stored_keys),
            lost=len(at_edge - in_lake),
            duplicated=len(stored_keys) - len(in_lake),
            unexpected=len(in_lake - at_edge),
        )


@dataclass(slots=True)
class Story:
    """A run's fans on one time axis, and what the run reported about itself."""

    scenario: Scenario
    fans: dict[tuple[str, str], FanStory]
    where: str
    wall_s: float
    ledger: Ledger | None = None  # None: the run had no lake to reconcile with
    notices_suppressed: int = 0  # held back by the notifier's cooldown
    dead_letters: list[str] = field(default_factory=list)  # their reasons
    problems: list[str] = field(default_factory=list)  # what stopped the run from showing everything
    outputs: dict[str, str] = field(default_factory=dict)  # what -> where (lake, report, pictures)

    @classmethod
    def empty(cls, scenario: Scenario, where: str, wall_s: float = 0.0) -> Story:
        fans = {(t.name, f.id): FanStory(t.name, f) for t in scenario.things for f in t.fans}
        return cls(scenario, fans, where, wall_s)

    def __iter__(self) -> Iterator[FanStory]:
        return iter(self.fans.values())

    def findings(self) -> list[Finding]:
        return sorted((f for fan in self for f in fan.findings), key=lambda f: f.at_s)

    def notices(self) -> list[Notice]:
        return sorted((n for fan in self for n in fan.notices), key=lambda n: n.at_s)

    @property
    def readings(self) -> int:
        return sum(len(fan.readings) for fan in self)


@dataclass(frozen=True, slots=True)
class FaultVerdict:
    """One scheduled fault and how long the edge and the forest took to notice it (None: they did not)."""

    thing: str
    fan: str
    fault: Fault
    edge_s: float | None  # delay from the fault's start to the first edge alert it caused
    rcf_s: float | None  # ... to the first RCF anomaly

    @property
    def caught(self) -> Caught:
        if self.edge_s is not None and self.rcf_s is not None:
            return Caught.BOTH
        if self.edge_s is not None:
            return Caught.EDGE
        return Caught.RCF if self.rcf_s is not None else Caught.MISSED

    @property
    def delay_s(self) -> float | None:
        delays = [d for d in (self.edge_s, self.rcf_s) if d is not None]
        return min(delays) if delays else None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run judged against its fault schedule: each fault caught or missed, and the findings no fault
    explains."""

    faults: tuple[FaultVerdict, ...]
    false_alarms: tuple[Finding, ...]

    @property
    def missed(self) -> list[FaultVerdict]:
        return [f for f in self.faults if f.caught is Caught.MISSED]

    def false_alarms_on_healthy(self, story: Story) -> list[Finding]:
        return [f for f in self.false_alarms if story.fans[(f.thing, f.fan)].plan.healthy]


def _blamed(fan: FanStory, finding: Finding, run_s: float) -> Fault | None:
    """The fault behind ``finding``: one acting at that moment (the latest begun), else the one that
    ended last within :data:`AFTER_FAULT_S` before it; None when no fault explains it."""
    acting, after = [], []
    for fault in fan.plan.faults:
        end = fault.end_s if math.isfinite(fault.end_s) else run_s
        if fault.start_s <= finding.at_s <= end:
            acting.append(fault)
        elif end < finding.at_s <= end + AFTER_FAULT_S:
            after.append(fault)
    if acting:
        return max(acting, key=lambda f: f.start_s)
    return max(after, key=lambda f: f.end_s, default=None)


def judge(story: Story) -> Verdict:
    """Hold every raised finding against the fault schedule (see the module docstring)."""
    run_s = story.scenario.seconds
    verdicts: list[FaultVerdict] = []
    false_alarms: list[Finding] = []
    for fan in story:
        first: dict[tuple[int, Source], float] = {}
        for finding in sorted((f for f in fan.findings if f.raised), key=lambda f: f.at_s):
            fault = _blamed(fan, finding, run_s)
            if fault is None:
                false_alarms.append(finding)
                continue
            first.setdefault((fan.plan.faults.index(fault), finding.source), finding.at_s - fault.start_s)
        for i, fault in enumerate(fan.plan.faults):
            edge, rcf = first.get((i, Source.EDGE)), first.get((i, Source.RCF))
            verdicts.append(FaultVerdict(fan.thing, fan.plan.id, fault, edge, rcf))
    return Verdict(tuple(verdicts), tuple(sorted(false_alarms, key=lambda f: f.at_s)))
