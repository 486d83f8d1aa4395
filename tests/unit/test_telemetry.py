"""The wire contract: round trips, the legacy format, and every refusal names the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from fanwatch.telemetry import (
    LAKE_COLUMNS,
    LEGACY_SCHEMA,
    MAX_READINGS,
    Alert,
    ContractError,
    Reading,
    Status,
    Telemetry,
    TopicKind,
    encode,
    format_ts,
    lake_rows,
    parse_alert,
    parse_status,
    parse_telemetry,
    parse_ts,
    topic_filter,
    topic_for,
    topic_parts,
)

T0 = datetime(2026, 11, 27, 19, 35, 17, 123000, tzinfo=UTC)


def reading(**changes: Any) -> Reading:
    base: dict[str, Any] = dict(
        ts=T0, rpm=2999.5, hz=99.98, pulses=100, window_s=1.0, flags=frozenset({"glitch"})
    )
    base.update(changes)
    return Reading(**base)


def telemetry_dict() -> dict[str, Any]:
    msg = Telemetry(thing="pi-1", fan="fan0", boot="b0", seq=7, sent=T0, readings=(reading(label="stall"),))
    return msg.to_dict()


def alert_dict() -> dict[str, Any]:
    return Alert(
        thing="pi-1", fan="fan0", boot="b0", seq=0, kind="stall", state="raised", ts=T0, rpm=0.0, since=T0
    ).to_dict()


def status_dict() -> dict[str, Any]:
    return Status(
        thing="pi-1",
        boot="b0",
        ts=T0,
        uptime_s=5.0,
        components={"fanwatch.EdgeFilter": "1.0.0"},
        config_digest="abc",
        counters={"readings": 3},
        last_reading=reading(),
    ).to_dict()


def test_round_trips() -> None:
    msg = parse_telemetry(json.dumps(telemetry_dict()), thing="pi-1")
    assert msg.key == ("pi-1", "fan0", "b0", 7) and msg.readings[0].label == "stall"
    assert parse_telemetry(encode(msg)) == msg
    assert parse_alert(json.dumps(alert_dict())).kind == "stall"
    status = parse_status(json.dumps(status_dict()))
    assert status.last_reading is not None and status.counters == {"readings": 3}


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert format_ts(T0) == "2026-11-27T19:35:17.123Z"
    assert format_ts(T0.astimezone(timezone(timedelta(hours=2)))) == "2026-11-27T19:35:17.123Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ts(datetime(2026, 1, 1))


def test_the_original_design_s_flat_messages_are_read_as_the_legacy_version() -> None:
    msg = parse_telemetry(
        {"TIME": "2026-01-01 10:00:00", "FANID": 3, "FREQ": 50.0, "RPM": 1500}, thing="pi-1"
    )
    assert msg.schema == LEGACY_SCHEMA and msg.fan == "3" and msg.thing == "pi-1"
    assert (msg.boot, msg.seq) == (None, None)
    assert msg.readings[0].rpm == 1500 and msg.readings[0].ts.tzinfo is not None
    assert parse_telemetry({"TIME": 1767261600, "FANID": "a", "RPM": 600}).readings[0].hz == 10
    with pytest.raises(ValueError, match="never written"):
        msg.to_dict()


def test_lake_rows_follow_the_lake_columns() -> None:
    rows = lake_rows(parse_telemetry(telemetry_dict()))
    assert [set(r) for r in rows] == [{c.name for c in LAKE_COLUMNS}]


def mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    node: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        ("schema", "fanwatch.telemetry/9", "schema", "unsupported schema"),
        ("thing", _DELETE, "thing", "missing"),
        ("thing", "bad thing!", "thing", "does not match"),
        ("fan", 5, "fan", "expected a string"),
        ("boot", "", "boot", "does not match"),
        ("seq", -1, "seq", "out of range"),
        ("seq", "7", "seq", "expected an integer"),
        ("seq", True, "seq", "expected an integer"),
        ("sent", "yesterday", "sent", "not an ISO 8601 timestamp"),
        ("sent", "2026-01-01T00:00:00", "sent", "has no time zone"),
        ("sent", "1999-01-01T00:00:00Z", "sent", "out of range"),
        ("sent", 1767261600, "sent", "expected an ISO 8601 UTC timestamp"),
        ("readings", {}, "readings", "expected a list"),
        ("readings", [], "readings", "0 readings"),
        ("readings", [{}] * (MAX_READINGS + 1), "readings", f"{MAX_READINGS + 1} readings"),
        ("readings.0", "fast", "readings[0]", "expected an object"),
        ("readings.0.rpm", _DELETE, "readings[0].rpm", "missing"),
        ("readings.0.rpm", -5, "readings[0].rpm", "out of range"),
        ("readings.0.rpm", float("inf"), "readings[0].rpm", "finite"),
        ("readings.0.rpm", "3000", "readings[0].rpm", "expected a number"),
        ("readings.0.hz", None, "readings[0].hz", "missing"),
        ("readings.0.pulses", 1.5, "readings[0].pulses", "expected an integer"),
        ("readings.0.window_s", 0, "readings[0].window_s", "out of range"),
        ("readings.0.flags", "glitch", "readings[0].flags", "expected a list of strings"),
        ("readings.0.flags", ["smoke"], "readings[0].flags", "unknown quality flag"),
        ("readings.0.label", 3, "readings[0].label", "expected a string"),
        ("readings.0.temp_c", 500, "readings[0].temp_c", "out of range"),
        ("readings.0.ts", None, "readings[0].ts", "missing"),
    ],
)
def test_every_telemetry_refusal_names_the_field(path: str, value: Any, field: str, problem: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_telemetry(json.dumps(mutate(telemetry_dict(), path, value), allow_nan=True))
    assert (info.value.field, problem in info.value.problem) == (field, True), str(info.value)
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        (b"{not json", "$", "not valid JSON"),
        (b"\xff\xfe", "$", "not valid JSON"),
        (b"[1, 2]", "$", "expected an object"),
        (b"[" * 100_000, "$", "nested too deeply"),
        (b'{"pad": "' + b"x" * 131_072 + b'"}', "$", "over IoT Core's 131,072-byte message limit"),
        ({"TIME": "2026-01-01T00:00:00Z", "FANID": "bad fan!", "RPM": 1}, "FANID", "does not match"),
        ({"TIME": "noon", "FANID": "a", "RPM": 1}, "TIME", "not an ISO 8601 timestamp"),
        ({"TIME": "2026-01-01T00:00:00Z", "FANID": "a", "RPM": "x"}, "RPM", "expected a number"),
        ({"TIME": "2026-01-01T00:00:00Z", "FANID": "a", "RPM": 1, "FREQ": -1}, "FREQ", "out of range"),
        ({"FANID": "a", "RPM": 1}, "TIME", "missing"),
    ],
)
def test_malformed_and_legacy_refusals_name_the_field(payload: Any, field: str, problem: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_telemetry(payload)
    assert (info.value.field, problem in info.value.problem) == (field, True), str(info.value)


def test_a_message_from_another_thing_is_refused() -> None:
    with pytest.raises(ContractError, match=r"^thing: message names 'pi-1' but arrived from 'pi-2'"):
        parse_telemetry(telemetry_dict(), thing="pi-2")
    with pytest.raises(ContractError, match=r"^thing: "):
        parse_alert(alert_dict(), thing="pi-2")
    with pytest.raises(ContractError, match=r"^thing: "):
        parse_status(status_dict(), thing="pi-2")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("schema", "x", "schema"),
        ("kind", "smoke", "kind"),
        ("kind", 3, "kind"),
        ("state", "maybe", "state"),
        ("detail", 5, "detail"),
        ("since", "later", "since"),
        ("rpm", None, "rpm"),
        ("seq", -3, "seq"),
    ],
)
def test_every_alert_refusal_names_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_alert(mutate(alert_dict(), path, value))
    assert info.value.field == field, str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("schema", None, "schema"),
        ("components", [], "components"),
        ("components.fanwatch.EdgeFilter", "", "components.fanwatch.EdgeFilter"),
        ("counters", {"readings": -1}, "counters.readings"),
        ("config_digest", 5, "config_digest"),
        ("uptime_s", -1, "uptime_s"),
        ("last_reading", {"rpm": 1}, "last_reading.ts"),
    ],
)
def test_every_status_refusal_names_the_field(path: str, value: Any, field: str) -> None:
    data = status_dict()
    if path.startswith("components."):
        data["components"]["fanwatch.EdgeFilter"] = value
    else:
        data = mutate(data, path, value)
    with pytest.raises(ContractError) as info:
        parse_status(data)
    assert info.value.field == field, str(info.value)


def test_a_device_topic_reads_back_as_its_thing_and_kind() -> None:
    for kind in TopicKind:
        assert topic_parts(topic_for(kind, "pi-1")) == ("pi-1", kind)
    assert topic_filter(TopicKind.ALERTS) == "fanwatch/+/alerts"
    for topic in ("fanwatch/pi-1/secrets", "other/pi-1/telemetry", "fanwatch/pi-1", "fanwatch/a/b/status"):
        with pytest.raises(ContractError, match=r"^topic: not fanwatch/<thing>/telemetry\|alerts\|status"):
            topic_parts(topic)


def test_constructors_refuse_what_the_contract_forbids() -> None:
    with pytest.raises(ContractError, match=r"^flags: unknown quality flag"):
        reading(flags=frozenset({"smoke"}))
    with pytest.raises(ContractError, match=r"^readings: "):
        Telemetry(thing="t", fan="f", boot="b", seq=0, sent=T0, readings=())
    assert topic_for("telemetry", "pi-1") == "fanwatch/pi-1/telemetry"
    with pytest.raises(ValueError, match="unknown topic kind"):
        topic_for("secrets", "pi-1")
    with pytest.raises(ContractError, match=r"^thing: "):
        topic_for("alerts", "pi/+")
    assert parse_ts("2026-01-01T00:00:00z", "x").tzinfo is not None
