"""The wire contract between the edge, the cloud and the lake.

Three message kinds travel from a device: telemetry (batches of readings), alerts (raised locally
by the edge filter) and status (device health). Each carries a versioned ``schema`` field so that
consumers can accept old producers; telemetry in the original design's flat format
(``TIME``, ``FANID``, ``FREQ``, ``RPM``) is read as the legacy version.

Every parse error is a :class:`ContractError` whose message starts with the offending field's path,
so a dead-letter record says exactly what was wrong, and nothing else escapes a parser, whatever the
bytes: a device that sends poison must cost one dead letter, never a stalled shard. The guard is
general: :func:`load_message` bounds the JSON itself (size, integer literals), and each field reader
checks type and range before any conversion that could fail (``float()``, ``datetime``, ``repr``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from fanwatch.errors import FanwatchError
from fanwatch.limits import FAN_PATTERN, MAX_MESSAGE_BYTES, MAX_RPM, THING_PATTERN

__all__ = [
    "ALERT_KINDS",
    "ALERT_SCHEMA",
    "BASIC_INGEST_PREFIX",
    "BOOT_PATTERN",
    "LAKE_COLUMNS",
    "LEGACY_SCHEMA",
    "MAX_READINGS",
    "MAX_SEQ",
    "QUALITY_FLAGS",
    "STATUS_SCHEMA",
    "TELEMETRY_SCHEMA",
    "TOPIC_ROOT",
    "Alert",
    "AlertKind",
    "AlertState",
    "ContractError",
    "LakeColumn",
    "QualityFlag",
    "Reading",
    "Status",
    "Telemetry",
    "TopicKind",
    "encode",
    "excerpt",
    "format_ts",
    "lake_rows",
    "load_message",
    "parse_alert",
    "parse_status",
    "parse_telemetry",
    "parse_ts",
    "read_free_text",
    "read_integer",
    "read_number",
    "read_text",
    "topic_filter",
    "topic_for",
    "topic_parts",
]

TELEMETRY_SCHEMA: Final = "fanwatch.telemetry/1"
ALERT_SCHEMA: Final = "fanwatch.alert/1"
STATUS_SCHEMA: Final = "fanwatch.status/1"
LEGACY_SCHEMA: Final = "legacy/0"

#: Readings in one telemetry message; keeps a batch far below IoT Core's 128 KB message limit.
MAX_READINGS: Final = 600


class QualityFlag(StrEnum):
    """What a reading's ``flags`` may say about how it was measured or why it was sent."""

    STALLED = "stalled"  # no pulse within the stall timeout: rpm is 0 by measurement, not by default
    GLITCH = "glitch"  # pulses shorter than the debounce were discarded in this window
    DROPOUT = "dropout"  # the tach signal went missing for part of the window
    SPIKE = "spike"  # the edge filter replaced an outlier with the rolling median
    HEARTBEAT = "heartbeat"  # sent because the heartbeat fell due, not because the value changed
    ESTIMATED = "estimated"  # too few pulses for a full-accuracy estimate
    SIMULATED = "simulated"  # produced by the simulated fan, not a real sensor


#: Quality flags a reading may carry (as a set, for membership tests).
QUALITY_FLAGS: Final = frozenset(QualityFlag)


class AlertKind(StrEnum):
    """What the edge raises without waiting for the cloud (the spelling on the wire and in the lake)."""

    STALL = "stall"  # below the stall speed, or no pulses at all
    UNDER_SPEED = "under_speed"
    OVER_SPEED = "over_speed"
    SENSOR_LOST = "sensor_lost"  # no reading from the tachometer for a while
    NOISY_SIGNAL = "noisy_signal"  # the tach line glitches or drops pulses (the speed may read right)


class AlertState(StrEnum):
    """An alert is raised when its condition has held long enough and cleared once it is gone."""

    RAISED = "raised"
    CLEARED = "cleared"


#: Kinds of alert the edge raises without waiting for the cloud (as a set, for membership tests).
ALERT_KINDS: Final = frozenset(AlertKind)

# Patterns are matched whole (``fullmatch``): ``$`` would also accept a trailing newline. The thing and
# fan patterns, the message size and the RPM bound are fanwatch.limits', shared with the edge and core.
BOOT_PATTERN: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
_VERSION = re.compile(r"\S{1,64}")
MAX_SEQ: Final = 2**53 - 1  # exact in JSON numbers and in Parquet int64 alike
#: Digits an integer literal may have (int64 has 19). A longer one is read as a float, so the field's
#: own range check refuses it with its path, before Python's int parser (4,300-digit limit) or a later
#: float() (OverflowError past ~309 digits) could fail on it.
_MAX_INT_DIGITS: Final = 19
#: Length of a free-text field's key (a component or counter name).
_MAX_KEY: Final = 128
#: The plausible span of a timestamp; also bounds legacy epoch seconds before any conversion.
_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(2201, 1, 1, tzinfo=UTC)
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")  # valid in a JSON escape, not in UTF-8


class ContractError(FanwatchError, ValueError):
    """A message does not follow the contract; ``field`` is the path of the first bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# --- timestamps ---------------------------------------------------------------------------------


def format_ts(ts: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: ``2026-11-27T19:35:17.123Z``."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(value: object, path: str, *, assume_utc: bool = False) -> datetime:
    """Parse an ISO 8601 timestamp; naive ones are refused unless ``assume_utc`` (legacy input)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ContractError(path, f"expected an ISO 8601 UTC timestamp, got {_describe(value)}")
    if isinstance(value, int | float):
        if not assume_utc:
            raise ContractError(path, f"expected an ISO 8601 UTC timestamp, got {_describe(value)}")
        # compared before any conversion: NaN fails too, and 1e20 or -2**63 never reach datetime
        if not _EARLIEST.timestamp() <= value < _LATEST.timestamp():
            raise ContractError(path, f"epoch seconds out of range: {excerpt(value)}")
        ts = datetime.fromtimestamp(float(value), UTC)
    else:
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ContractError(path, f"not an ISO 8601 timestamp: {excerpt(value)}") from None
        if ts.tzinfo is None:
            if not assume_utc:
                raise ContractError(path, f"timestamp has no time zone (use Z for UTC): {excerpt(value)}")
            ts = ts.replace(tzinfo=UTC)
    if not _EARLIEST.year <= ts.year < _LATEST.year:
        raise ContractError(path, f"timestamp out of range: {excerpt(value)}")
    return ts.astimezone(UTC)


# --- field readers (other contracts, like the cloud's anomalies, build on them) ----------------


def excerpt(value: object) -> str:
    """A short rendering of any value: never the whole of a huge or deeply nested one."""
    if isinstance(value, str):
        return repr(value[:40]) + ("…" if len(value) > 40 else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, int | float | None):
        return repr(value)
    if isinstance(value, Mapping | list | tuple):
        return f"of {len(value)} item(s)"
    return ""


def _listed(values: set[str] | frozenset[str]) -> str:
    shown = ", ".join(excerpt(v) for v in sorted(values)[:3])
    return f"{shown}, … ({len(values)} in all)" if len(values) > 3 else shown


def _describe(value: object) -> str:
    return f"{type(value).__name__} {excerpt(value)}".rstrip()


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(path, f"expected an object, got {_describe(value)}")
    return value


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise ContractError(f"{path}{key}", "missing")
    return obj[key]


def read_number(value: object, path: str, *, low: float, high: float) -> float:
    """A finite number within [``low``, ``high``], or a ContractError naming ``path``: how every numeric
    field of a message is read (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(path, f"expected a number, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ContractError(path, f"expected a finite number, got {value!r}")
    if not low <= value <= high:  # before float(): a huge int would overflow it
        raise ContractError(path, f"{excerpt(value)} is out of range [{low:g}, {high:g}]")
    return float(value)


def read_integer(value: object, path: str, *, low: int, high: int) -> int:
    """A whole number within [``low``, ``high``] (a float such as ``3.0`` counts), or a ContractError
    naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ContractError(path, f"expected an integer, got {_describe(value)}")
    if not low <= value <= high:
        raise ContractError(path, f"{excerpt(value)} is out of range [{low}, {high}]")
    return value


def read_text(value: object, path: str, pattern: re.Pattern[str]) -> str:
    """A string that ``pattern`` matches in full, or a ContractError naming ``path``: how names and ids
    (thing, fan, boot) are read."""
    if not isinstance(value, str):
        raise ContractError(path, f"expected a string, got {_describe(value)}")
    if not pattern.fullmatch(value):
        raise ContractError(path, f"{excerpt(value)} does not match {pattern.pattern}")
    return value


def read_free_text(value: object, path: str, *, limit: int | None = None) -> str:
    """Text without a pattern (a label, a detail): a string that any UTF-8 consumer can take."""
    if not isinstance(value, str):
        raise ContractError(path, f"expected a string, got {_describe(value)}")
    if limit is not None and len(value) > limit:
        raise ContractError(path, f"{len(value):,} characters; at most {limit:,}")
    if not value.isascii() and _UNPAIRED_SURROGATE.search(value):
        raise ContractError(path, "contains an unpaired UTF-16 surrogate, which is not text")
    return value


def _optional_number(obj: Mapping[str, Any], key: str, path: str, *, low: float, high: float) -> float | None:
    value = obj.get(key)
    return None if value is None else read_number(value, f"{path}{key}", low=low, high=high)


def _int_literal(text: str) -> int | float:
    """An integer literal, or (past :data:`_MAX_INT_DIGITS`) a float that every range refuses."""
    return int(text) if len(text) - text.startswith("-") <= _MAX_INT_DIGITS else float(text)


def load_message(payload: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object a message is, decoded within bounds; a mapping is taken as it is.

    Bounded: the size (IoT Core's limit), integer literals (see :data:`_MAX_INT_DIGITS`) and, through
    the decoder's recursion guard, nesting. ``NaN`` and ``Infinity``, which are not JSON, decode as
    floats that every number field refuses with its path.
    """
    if isinstance(payload, Mapping):
        return payload
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ContractError(
            "$", f"{len(payload):,} bytes is over IoT Core's {MAX_MESSAGE_BYTES:,}-byte message limit"
        )
    try:
        data = json.loads(payload, parse_int=_int_literal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError("$", f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ContractError("$", "JSON nested too deeply") from None
    return _mapping(data, "$")


def _sender(data: Mapping[str, Any], schema: str, thing: str | None) -> str:
    """Check the message's schema and return the thing it names, refusing one that is not its sender."""
    if data.get("schema") != schema:
        raise ContractError(
            "schema", f"unsupported schema {excerpt(data.get('schema'))} (expected {schema!r})"
        )
    named = read_text(_required(data, "thing", ""), "thing", THING_PATTERN)
    if thing is not None and named != thing:
        raise ContractError("thing", f"message names {named!r} but arrived from {excerpt(thing)}")
    return named


def encode(message: Telemetry | Alert | Status) -> bytes:
    """Compact UTF-8 JSON, the form published over MQTT."""
    return json.dumps(message.to_dict(), separators=(",", ":"), allow_nan=False).encode()


#: Basic Ingest: a device publishing to ``$aws/rules/<rule>/<topic>`` reaches that IoT rule directly.
BASIC_INGEST_PREFIX: Final = "$aws/rules/"


class TopicKind(StrEnum):
    """What a device's topic ``fanwatch/<thing>/<kind>`` carries: its last level."""

    TELEMETRY = "telemetry"
    ALERTS = "alerts"
    STATUS = "status"


#: The first level of every topic a device publishes on (IoT policies grant ``fanwatch/<thing>/*``).
TOPIC_ROOT: Final = "fanwatch"


def topic_for(kind: str, thing: str, *, rule: str = "") -> str:
    """The MQTT topic a device publishes ``kind`` (telemetry, alerts, status) on; with ``rule``,
    its Basic Ingest topic for that IoT rule (no messaging charge; the rule still sees the topic
    without the prefix)."""
    if kind not in set(TopicKind):
        raise ValueError(f"unknown topic kind {kind!r}")
    topic = f"{TOPIC_ROOT}/{read_text(thing, 'thing', THING_PATTERN)}/{kind}"
    return f"{BASIC_INGEST_PREFIX}{rule}/{topic}" if rule else topic


def topic_filter(kind: TopicKind) -> str:
    """Every device's topic of ``kind``: what an IoT rule selects from and an observer subscribes to."""
    return f"{TOPIC_ROOT}/+/{kind}"


def topic_parts(topic: str) -> tuple[str, TopicKind]:
    """(thing, kind) of a device's topic; ContractError naming ``topic`` for any other topic."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or parts[2] not in set(TopicKind):
        raise ContractError("topic", f"not {TOPIC_ROOT}/<thing>/{'|'.join(TopicKind)}")
    return parts[1], TopicKind(parts[2])


# --- telemetry ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One RPM measurement over a window of tachometer pulses."""

    ts: datetime
    rpm: float
    hz: float
    pulses: int
    window_s: float
    flags: frozenset[str] = frozenset()
    target_rpm: float | None = None  # the commanded speed, when the fan is speed-controlled
    temp_c: float | None = None
    label: str | None = None  # ground truth from a simulated fan (never set by a real sensor)

    def __post_init__(self) -> None:
        unknown = self.flags - QUALITY_FLAGS
        if unknown:
            raise ContractError("flags", f"unknown quality flag(s) {_listed(unknown)}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": format_ts(self.ts),
            "rpm": round(self.rpm, 3),
            "hz": round(self.hz, 4),
            "pulses": self.pulses,
            "window_s": round(self.window_s, 4),
            "flags": sorted(self.flags),
        }
        for key in ("target_rpm", "temp_c", "label"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, obj: object, path: str = "reading") -> Reading:
        data = _mapping(obj, path)
        p = f"{path}."
        flags = data.get("flags", [])
        if not isinstance(flags, list | tuple) or not all(isinstance(f, str) for f in flags):
            raise ContractError(f"{p}flags", f"expected a list of strings, got {_describe(flags)}")
        unknown = set(flags) - QUALITY_FLAGS
        if unknown:
            raise ContractError(f"{p}flags", f"unknown quality flag(s) {_listed(unknown)}")
        label = data.get("label")
        if label is not None:
            label = read_free_text(label, f"{p}label")
        return cls(
            ts=parse_ts(_required(data, "ts", p), f"{p}ts"),
            rpm=read_number(_required(data, "rpm", p), f"{p}rpm", low=0.0, high=MAX_RPM),
            hz=read_number(_required(data, "hz", p), f"{p}hz", low=0.0, high=MAX_RPM),
            pulses=read_integer(_required(data, "pulses", p), f"{p}pulses", low=0, high=10_000_000),
            window_s=read_number(_required(data, "window_s", p), f"{p}window_s", low=1e-3, high=3600.0),
            flags=frozenset(flags),
            target_rpm=_optional_number(data, "target_rpm", p, low=0.0, high=MAX_RPM),
            temp_c=_optional_number(data, "temp_c", p, low=-60.0, high=200.0),
            label=label,
        )


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A batch of readings from one fan, numbered per boot so consumers can find gaps and duplicates.

    ``boot`` is a fresh id each time the component starts; ``seq`` counts messages from 0 within a
    boot. Legacy messages have neither (``None``), so they can be neither deduplicated nor gap-checked.
    """

    thing: str
    fan: str
    boot: str | None
    seq: int | None
    sent: datetime
    readings: tuple[Reading, ...]
    schema: str = TELEMETRY_SCHEMA

    def __post_init__(self) -> None:
        if not self.readings:
            raise ContractError("readings", "a telemetry message needs at least one reading")

    @property
    def key(self) -> tuple[str, str, str | None, int | None]:
        """Identity of the message: a redelivery carries the same key."""
        return (self.thing, self.fan, self.boot, self.seq)

    def to_dict(self) -> dict[str, Any]:
        if self.schema == LEGACY_SCHEMA:
            raise ValueError("legacy messages are read, never written")
        return {
            "schema": self.schema,
            "thing": self.thing,
            "fan": self.fan,
            "boot": self.boot,
            "seq": self.seq,
            "sent": format_ts(self.sent),
            "readings": [r.to_dict() for r in self.readings],
        }


def parse_telemetry(payload: bytes | str | Mapping[str, Any], *, thing: str | None = None) -> Telemetry:
    """Read a telemetry message of any supported version.

    ``thing`` is the device the message arrived from (the topic's thing name): a versioned message
    that names another thing is refused; a legacy message, which names none, takes it.
    """
    data = load_message(payload)
    schema = data.get("schema")
    if schema is None and "RPM" in data:
        return _parse_legacy(data, thing)
    msg_thing = _sender(data, TELEMETRY_SCHEMA, thing)
    readings = _required(data, "readings", "")
    if not isinstance(readings, list):
        raise ContractError("readings", f"expected a list, got {_describe(readings)}")
    if not 1 <= len(readings) <= MAX_READINGS:
        raise ContractError("readings", f"{len(readings)} readings; expected 1 to {MAX_READINGS}")
    return Telemetry(
        thing=msg_thing,
        fan=read_text(_required(data, "fan", ""), "fan", FAN_PATTERN),
        boot=read_text(_required(data, "boot", ""), "boot", BOOT_PATTERN),
        seq=read_integer(_required(data, "seq", ""), "seq", low=0, high=MAX_SEQ),
        sent=parse_ts(_required(data, "sent", ""), "sent"),
        readings=tuple(Reading.from_dict(r, f"readings[{i}]") for i, r in enumerate(readings)),
    )


def _parse_legacy(data: Mapping[str, Any], thing: str | None) -> Telemetry:
    """The original design's flat message: ``{"TIME", "FANID", "FREQ", "RPM"}``, one reading."""
    fan_id = _required(data, "FANID", "")
    if isinstance(fan_id, int) and not isinstance(fan_id, bool):  # the original design numbered fans
        fan_id = str(read_integer(fan_id, "FANID", low=0, high=MAX_SEQ))
    fan = read_text(fan_id, "FANID", FAN_PATTERN)
    ts = parse_ts(_required(data, "TIME", ""), "TIME", assume_utc=True)
    rpm = read_number(_required(data, "RPM", ""), "RPM", low=0.0, high=MAX_RPM)
    freq = data.get("FREQ")
    hz = rpm / 60.0 if freq is None else read_number(freq, "FREQ", low=0.0, high=MAX_RPM)
    reading = Reading(ts=ts, rpm=rpm, hz=hz, pulses=0, window_s=1.0, flags=frozenset({"estimated"}))
    return Telemetry(
        thing=read_text(thing if thing is not None else fan, "thing", THING_PATTERN),
        fan=fan,
        boot=None,
        seq=None,
        sent=ts,
        readings=(reading,),
        schema=LEGACY_SCHEMA,
    )


# --- alerts and status --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition the edge filter raised (or cleared) locally, with hysteresis already applied."""

    thing: str
    fan: str
    boot: str
    seq: int
    kind: AlertKind
    state: AlertState
    ts: datetime
    rpm: float
    since: datetime  # when the condition began
    detail: str = ""
    schema: str = ALERT_SCHEMA

    def __post_init__(self) -> None:  # a kind or state given as its string becomes the member
        object.__setattr__(self, "kind", _alert_kind(self.kind))
        object.__setattr__(self, "state", _alert_state(self.state))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "thing": self.thing,
            "fan": self.fan,
            "boot": self.boot,
            "seq": self.seq,
            "kind": self.kind,
            "state": self.state,
            "ts": format_ts(self.ts),
            "rpm": round(self.rpm, 3),
            "since": format_ts(self.since),
            "detail": self.detail,
        }


def _alert_kind(value: str) -> AlertKind:
    try:
        return AlertKind(value)
    except ValueError:
        raise ContractError("kind", f"unknown alert kind {excerpt(value)}") from None


def _alert_state(value: str) -> AlertState:
    try:
        return AlertState(value)
    except ValueError:
        raise ContractError("state", f"expected 'raised' or 'cleared', got {excerpt(value)}") from None


def parse_alert(payload: bytes | str | Mapping[str, Any], *, thing: str | None = None) -> Alert:
    """Read an edge alert message; ``thing`` is the device it arrived from, and an alert that names another
    thing is refused."""
    data = load_message(payload)
    msg_thing = _sender(data, ALERT_SCHEMA, thing)
    kind = _required(data, "kind", "")
    state = _required(data, "state", "")
    detail = read_free_text(data.get("detail", ""), "detail")
    return Alert(
        thing=msg_thing,
        fan=read_text(_required(data, "fan", ""), "fan", FAN_PATTERN),
        boot=read_text(_required(data, "boot", ""), "boot", BOOT_PATTERN),
        seq=read_integer(_required(data, "seq", ""), "seq", low=0, high=MAX_SEQ),
        kind=_alert_kind(kind if isinstance(kind, str) else _describe(kind)),
        state=_alert_state(state if isinstance(state, str) else _describe(state)),
        ts=parse_ts(_required(data, "ts", ""), "ts"),
        rpm=read_number(_required(data, "rpm", ""), "rpm", low=0.0, high=MAX_RPM),
        since=parse_ts(_required(data, "since", ""), "since"),
        detail=detail[:500],
    )


@dataclass(frozen=True, slots=True)
class Status:
    """Device-level health, published on start and every few minutes."""

    thing: str
    boot: str
    ts: datetime
    uptime_s: float
    components: Mapping[str, str]  # component name -> version
    config_digest: str
    counters: Mapping[str, int]  # readings, published, dropped, ...
    last_reading: Reading | None = None
    schema: str = STATUS_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "thing": self.thing,
            "boot": self.boot,
            "ts": format_ts(self.ts),
            "uptime_s": round(self.uptime_s, 3),
            "components": dict(self.components),
            "config_digest": self.config_digest,
            "counters": dict(self.counters),
            "last_reading": None if self.last_reading is None else self.last_reading.to_dict(),
        }


def parse_status(payload: bytes | str | Mapping[str, Any], *, thing: str | None = None) -> Status:
    """Read a device status message; ``thing`` is the device it arrived from, and a status that names
    another thing is refused."""
    data = load_message(payload)
    msg_thing = _sender(data, STATUS_SCHEMA, thing)
    components = _mapping(_required(data, "components", ""), "components")
    counters = _mapping(_required(data, "counters", ""), "counters")
    digest = read_free_text(_required(data, "config_digest", ""), "config_digest", limit=128)
    last = data.get("last_reading")
    return Status(
        thing=msg_thing,
        boot=read_text(_required(data, "boot", ""), "boot", BOOT_PATTERN),
        ts=parse_ts(_required(data, "ts", ""), "ts"),
        uptime_s=read_number(_required(data, "uptime_s", ""), "uptime_s", low=0.0, high=1e10),
        components={
            read_free_text(name, "components", limit=_MAX_KEY): read_text(v, f"components.{name}", _VERSION)
            for name, v in components.items()
        },
        config_digest=digest,
        counters={
            read_free_text(name, "counters", limit=_MAX_KEY): read_integer(
                v, f"counters.{name}", low=0, high=MAX_SEQ
            )
            for name, v in counters.items()
        },
        last_reading=None if last is None else Reading.from_dict(last, "last_reading"),
    )


# --- the lake -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LakeColumn:
    """One column of the data lake's readings table (a Glue/Athena type)."""

    name: str
    type: str
    comment: str = field(default="", compare=False)


#: The lake holds one row per reading; the Glue table and the Parquet writer are generated from this.
LAKE_COLUMNS: Final[tuple[LakeColumn, ...]] = (
    LakeColumn("schema", "string", "message schema version"),
    LakeColumn("thing", "string", "IoT thing name of the device"),
    LakeColumn("fan", "string", "fan id on the device"),
    LakeColumn("boot", "string", "id of the component run that produced the message"),
    LakeColumn("seq", "bigint", "message sequence number within the boot"),
    LakeColumn("sent", "timestamp", "when the device sent the message (UTC)"),
    LakeColumn("ts", "timestamp", "end of the measurement window (UTC)"),
    LakeColumn("rpm", "double", "revolutions per minute"),
    LakeColumn("hz", "double", "tachometer pulse frequency"),
    LakeColumn("pulses", "int", "pulses counted in the window"),
    LakeColumn("window_s", "double", "length of the measurement window in seconds"),
    LakeColumn("flags", "array<string>", "quality flags"),
    LakeColumn("target_rpm", "double", "commanded speed, when known"),
    LakeColumn("temp_c", "double", "temperature, when measured"),
    LakeColumn("label", "string", "ground-truth label of a simulated fan"),
)


def lake_rows(message: Telemetry) -> list[dict[str, Any]]:
    """Flatten a message into lake rows, one per reading, keyed by :data:`LAKE_COLUMNS`."""
    head = {
        "schema": message.schema,
        "thing": message.thing,
        "fan": message.fan,
        "boot": message.boot,
        "seq": message.seq,
        "sent": message.sent,
    }
    return [
        {
            **head,
            "ts": r.ts,
            "rpm": r.rpm,
            "hz": r.hz,
            "pulses": r.pulses,
            "window_s": r.window_s,
            "flags": sorted(r.flags),
            "target_rpm": r.target_rpm,
            "temp_c": r.temp_c,
            "label": r.label,
        }
        for r in message.readings
    ]
