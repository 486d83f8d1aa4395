"""The IoT SQL subset: what it evaluates as AWS IoT does, and what it refuses by name."""

from __future__ import annotations

import json

import pytest

from fanwatch.standin.iotsql import UNDEFINED, MessageContext, SqlError, parse, substitution, topic_matches

PAYLOAD = {
    "thing": "pi-1",
    "rpm": 2400.5,
    "flags": ["stalled", "glitch"],
    "nested": {"a": {"b": 3}},
    "n": None,
}


def ctx(
    topic: str = "fanwatch/pi-1/telemetry", payload: object = PAYLOAD, client: str = "pi-1"
) -> MessageContext:
    raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return MessageContext(
        topic, payload if not isinstance(payload, bytes) else UNDEFINED, raw, client, 1_700_000_000_123
    )


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("fanwatch/+/telemetry", "fanwatch/pi-1/telemetry", True),
        ("fanwatch/+/telemetry", "fanwatch/pi-1/alerts", False),
        ("fanwatch/+/telemetry", "fanwatch/pi-1/telemetry/extra", False),
        ("fanwatch/#", "fanwatch/pi-1/telemetry", True),
        ("fanwatch/#", "fanwatch", True),
        ("#", "$aws/rules/x/fanwatch/pi-1/telemetry", False),
        ("+/rules/#", "$aws/rules/x", False),
        ("$aws/rules/#", "$aws/rules/x/y", True),
    ],
)
def test_topic_filters_match_as_mqtt_does(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_select_star_passes_the_message_and_adds_aliased_columns() -> None:
    rule = parse(
        "SELECT *, topic(2) AS device, timestamp() AS at, clientid() AS who FROM 'fanwatch/+/telemetry'"
    )
    assert rule.matches("fanwatch/pi-9/telemetry") and not rule.matches("other/pi-9/telemetry")
    out = rule.select(ctx())
    assert out == {**PAYLOAD, "device": "pi-1", "at": 1_700_000_000_123, "who": "pi-1"}


def test_columns_paths_arithmetic_and_undefined_values() -> None:
    rule = parse(
        "SELECT rpm * 2 AS double_rpm, nested.a.b, flags[1] AS second, missing.x AS gone, thing FROM 'a/#'"
    )
    assert rule.select(ctx()) == {"double_rpm": 4801.0, "_2": 3, "second": "glitch", "thing": "pi-1"}


@pytest.mark.parametrize(
    ("where", "fires"),
    [
        ("rpm > 2000", True),
        ("rpm > 2000 AND thing = 'pi-2'", False),
        ("rpm > 9000 OR thing = 'pi-1'", True),
        ("NOT (rpm < 100)", True),
        ("missing > 1", False),  # undefined is not true
        ("NOT missing > 1", False),  # and neither is its negation
        ("n IS NULL", True),
        ("missing IS UNDEFINED", True),
        ("thing IS NOT NULL", True),
        ("topic(3) = 'telemetry'", True),
        ("lower(upper(thing)) = 'pi-1'", True),
        ("rpm % 2 = 0.5", True),
        ("thing <> 'pi-1'", False),
        ("concat(thing, '/', 'x') = 'pi-1/x'", True),
        ("thing || '!' = 'pi-1!'", True),
        ("rpm = '2400.5'", False),  # no implicit casts between strings and numbers
    ],
)
def test_where_decides_whether_a_rule_fires(where: str, fires: bool) -> None:
    rule = parse(f"SELECT * FROM 'fanwatch/+/telemetry' WHERE {where}")
    assert (rule.select(ctx()) is not None) is fires


def test_select_star_of_a_binary_payload_passes_its_bytes() -> None:
    assert parse("SELECT * FROM 'a/b'").select(ctx(payload=b"\x00\x01 not json")) == b"\x00\x01 not json"


def test_a_rule_without_from_matches_no_topic_and_serves_basic_ingest_only() -> None:
    rule = parse("SELECT thing")
    assert rule.topic_filter is None and not rule.matches("fanwatch/pi-1/telemetry")
    assert rule.select(ctx()) == {"thing": "pi-1"}


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT * FROM 'a' WHERE x IN (1, 2)", "IN is not supported"),
        ("SELECT CASE WHEN a THEN 1 END FROM 'a'", "CASE is not supported"),
        ("SELECT get_thing_shadow(x) FROM 'a'", r"get_thing_shadow\(\) is not supported"),
        ("SELECT (SELECT 1) FROM 'a'", "nested SELECT is not supported"),
        ("SELECT * FROM 'a/#/b'", "not a valid MQTT topic filter"),
        ("SELECT * FROM a", "expected string"),
        ("SELECT * FROM 'a' ORDER BY x", "unexpected"),
        ("SELECT topic(1, 2) FROM 'a'", "takes 0..1 argument"),
        ("SELECT * FROM 'a' WHERE x IS 3", "IS must be followed"),
        ("SELECT ~x FROM 'a'", "unexpected"),
    ],
)
def test_what_it_does_not_support_is_refused_by_name(sql: str, says: str) -> None:
    with pytest.raises(SqlError, match=says):
        parse(sql)


def test_substitution_templates_fill_partition_keys_and_object_keys() -> None:
    key = substitution("errors/iot/${topic(2)}/${timestamp()}-${newuuid()}.json")
    filled = key(ctx())
    assert filled.startswith("errors/iot/pi-1/1700000000123-") and filled.endswith(".json")
    assert len(filled.split("1700000000123-", 1)[1]) == len("00000000-0000-0000-0000-000000000000.json")
    assert substitution("${topic(2)}")(ctx()) == "pi-1"
    assert substitution("${missing}")(ctx()) == ""
    with pytest.raises(SqlError):
        substitution("${topic(2) topic(3)}")
