"""What the cloud tells people about: detector anomalies and data gaps, beside the edge's alerts.

The edge's :class:`~fanwatch.telemetry.Alert` stays the contract for conditions raised on the device;
an :class:`Anomaly` is the cloud's own finding (the forest's verdict, or messages missing from a fan's
sequence). Both travel on the anomalies stream, and :func:`parse_event` reads either. ``EVENT_COLUMNS``
is the lake's table of these events, generated into Glue like the readings table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fanwatch.limits import FAN_PATTERN, MAX_RPM, THING_PATTERN
from fanwatch.telemetry import (
    ALERT_SCHEMA,
    BOOT_PATTERN,
    MAX_SEQ,
    Alert,
    AlertKind,
    AlertState,
    ContractError,
    LakeColumn,
    excerpt,
    format_ts,
    load_message,
    parse_alert,
    parse_ts,
    read_integer,
    read_number,
    read_text,
)

__all__ = [
    "ANOMALY_KINDS",
    "ANOMALY_SCHEMA",
    "EVENT_COLUMNS",
    "SEVERITIES",
    "Anomaly",
    "Event",
    "encode_anomaly",
    "event_row",
    "parse_anomaly",
    "parse_event",
    "severity_of",
]

ANOMALY_SCHEMA: Final = "fanwatch.anomaly/1"
#: ``rcf``: the forest scored a reading above the fan's threshold; ``gap``: messages never arrived.
ANOMALY_KINDS: Final = frozenset({"rcf", "gap"})
SEVERITIES: Final = ("info", "warning", "critical")
_WORD: Final = re.compile(r"[a-z_]{1,32}")  # a kind or a severity, checked against its set after

#: Severity of each edge alert kind when raised (a cleared alert is always ``info``).
_ALERT_SEVERITY: Final = {
    AlertKind.STALL: "critical",
    AlertKind.SENSOR_LOST: "warning",
    AlertKind.NOISY_SIGNAL: "warning",
    AlertKind.UNDER_SPEED: "warning",
    AlertKind.OVER_SPEED: "warning",
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A finding of the cloud detector about one fan."""

    thing: str
    fan: str
    kind: str
    severity: str
    ts: datetime  # the reading (or, for a gap, the message) that showed it
    since: datetime  # when the condition began
    rpm: float
    score: float = 0.0
    threshold: float = 0.0
    typical_rpm: float | None = None
    missing: int = 0  # messages missing, for a gap
    boot: str | None = None
    seq: int | None = None
    schema: str = ANOMALY_SCHEMA

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ContractError("kind", f"unknown anomaly kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ContractError("severity", f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "thing": self.thing,
            "fan": self.fan,
            "kind": self.kind,
            "severity": self.severity,
            "ts": format_ts(self.ts),
            "since": format_ts(self.since),
            "rpm": round(self.rpm, 3),
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "typical_rpm": None if self.typical_rpm is None else round(self.typical_rpm, 1),
            "missing": self.missing,
            "boot": self.boot,
            "seq": self.seq,
        }


Event = Anomaly | Alert


def encode_anomaly(anomaly: Anomaly) -> bytes:
    """An anomaly as the bytes the detector puts on the anomalies stream: compact JSON that
    :func:`parse_event` reads back (a NaN raises rather than reach the wire)."""
    return json.dumps(anomaly.to_dict(), separators=(",", ":"), allow_nan=False).encode()


#: Highest score or threshold accepted; the forest's scores stay far below (about 8 at most).
_MAX_SCORE: Final = 1e6


def parse_anomaly(data: Mapping[str, Any]) -> Anomaly:
    """An anomaly from its JSON object, checked with the same field readers as the device's messages."""
    if data.get("schema") != ANOMALY_SCHEMA:
        schema = data.get("schema")
        raise ContractError("schema", f"unsupported schema {excerpt(schema)} (expected {ANOMALY_SCHEMA!r})")
    typical = data.get("typical_rpm")
    boot = data.get("boot")
    seq = data.get("seq")
    return Anomaly(
        thing=read_text(data.get("thing"), "thing", THING_PATTERN),
        fan=read_text(data.get("fan"), "fan", FAN_PATTERN),
        kind=read_text(data.get("kind"), "kind", _WORD),
        severity=read_text(data.get("severity"), "severity", _WORD),
        ts=parse_ts(data.get("ts"), "ts"),
        since=parse_ts(data.get("since"), "since"),
        rpm=read_number(data.get("rpm"), "rpm", low=0.0, high=MAX_RPM),
        score=read_number(data.get("score"), "score", low=0.0, high=_MAX_SCORE),
        threshold=read_number(data.get("threshold"), "threshold", low=0.0, high=_MAX_SCORE),
        typical_rpm=None if typical is None else read_number(typical, "typical_rpm", low=0.0, high=MAX_RPM),
        missing=read_integer(data.get("missing"), "missing", low=0, high=MAX_SEQ),
        boot=None if boot is None else read_text(boot, "boot", BOOT_PATTERN),
        seq=None if seq is None else read_integer(seq, "seq", low=0, high=MAX_SEQ),
    )


def parse_event(payload: bytes | str | Mapping[str, Any], *, thing: str | None = None) -> Event:
    """Read an anomaly or an edge alert; ``thing`` is the stream's partition key (the sender)."""
    data = load_message(payload)
    if data.get("schema") == ALERT_SCHEMA:
        return parse_alert(data, thing=thing)
    anomaly = parse_anomaly(data)
    if thing is not None and anomaly.thing != thing:
        raise ContractError(
            "thing", f"anomaly names {anomaly.thing!r} but its partition key is {excerpt(thing)}"
        )
    return anomaly


def severity_of(event: Event) -> str:
    """The severity a notification and the lake give an event: an anomaly's own; an edge alert's by its
    kind (a stall is critical, the rest warnings), and ``info`` once it has cleared."""
    if isinstance(event, Anomaly):
        return event.severity
    return "info" if event.state == AlertState.CLEARED else _ALERT_SEVERITY[event.kind]


#: The lake's events table: one row per anomaly or edge alert.
EVENT_COLUMNS: Final[tuple[LakeColumn, ...]] = (
    LakeColumn("schema", "string", "message schema version"),
    LakeColumn("source", "string", "edge (raised on the device) or cloud (the detector)"),
    LakeColumn("thing", "string", "IoT thing name of the device"),
    LakeColumn("fan", "string", "fan id on the device"),
    LakeColumn("kind", "string", "stall, under_speed, over_speed, sensor_lost, noisy_signal, rcf or gap"),
    LakeColumn("state", "string", "raised or cleared"),
    LakeColumn("severity", "string", "info, warning or critical"),
    LakeColumn("ts", "timestamp", "when it was seen (UTC)"),
    LakeColumn("since", "timestamp", "when the condition began (UTC)"),
    LakeColumn("rpm", "double", "speed at that moment"),
    LakeColumn("score", "double", "forest anomaly score (cloud only)"),
    LakeColumn("threshold", "double", "the fan's threshold when scored (cloud only)"),
    LakeColumn("detail", "string", "what the edge said about it"),
)


def event_row(event: Event) -> dict[str, Any]:
    """One lake row, keyed by :data:`EVENT_COLUMNS` (timestamps in the wire format)."""
    common = {
        "schema": event.schema,
        "thing": event.thing,
        "fan": event.fan,
        "kind": event.kind,
        "severity": severity_of(event),
        "ts": format_ts(event.ts),
        "since": format_ts(event.since),
        "rpm": event.rpm,
    }
    if isinstance(event, Anomaly):
        return {
            **common,
            "source": "cloud",
            "state": "raised",
            "score": event.score,
            "threshold": event.threshold,
            "detail": "",
        }
    return {
        **common,
        "source": "edge",
        "state": event.state,
        "score": None,
        "threshold": None,
        "detail": event.detail,
    }
