"""What IoT Core would refuse is refused before it reaches the spooler."""

from __future__ import annotations

import pytest

from fanwatch.core.mqtt.topics import (
    MqttRequestError,
    check_message,
    check_thing_name,
    check_topic_filter,
)
from fanwatch.limits import MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    "topic",
    [
        "fanwatch/fan-001/telemetry",
        "a/b/c/d/e/f/g/h",  # 7 slashes: IoT Core's limit
        "$aws/rules/fan_rule/a/b/c/d/e/f/g/h",  # Basic Ingest's prefix does not count
        "x" * 256,
    ],
)
def test_topics_iot_core_accepts(topic: str) -> None:
    check_message(topic, b"{}", 1)


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("", "empty"),
        ("fanwatch/+/telemetry", "wildcards"),
        ("fanwatch/#", "wildcards"),
        ("a/b/c/d/e/f/g/h/i", "forward slashes"),
        ("x" * 257, "256 bytes"),
        ("é" * 129, "256 bytes"),  # bytes, not characters
        ("$aws/rules/fan_rule/", "nothing after"),
        ("a\x00b", "NUL"),
    ],
)
def test_topics_iot_core_refuses(topic: str, why: str) -> None:
    with pytest.raises(MqttRequestError, match=why):
        check_message(topic, b"{}", 0)


def test_payload_and_qos_limits() -> None:
    check_message("t", b"x" * MAX_MESSAGE_BYTES, 1)
    with pytest.raises(MqttRequestError, match="exceeds IoT Core's limit"):
        check_message("t", b"x" * (MAX_MESSAGE_BYTES + 1), 1)
    with pytest.raises(MqttRequestError, match="QoS 2"):
        check_message("t", b"x", 2)
    with pytest.raises(MqttRequestError, match="must be bytes"):
        check_message("t", "text", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "topic_filter", ["fanwatch/+/telemetry", "fanwatch/#", "#", "+", "fanwatch/fan-001/cmd"]
)
def test_filters_iot_core_accepts(topic_filter: str) -> None:
    check_topic_filter(topic_filter, 1)


@pytest.mark.parametrize(
    "topic_filter", ["fanwatch/#/x", "fanwatch/fan#", "fanwatch/fan+/x", "", "a/b/c/d/e/f/g/h/#"]
)
def test_malformed_filters_are_refused(topic_filter: str) -> None:
    with pytest.raises(MqttRequestError):
        check_topic_filter(topic_filter, 0)


@pytest.mark.parametrize("name", ["fan-001", "Fan_7:a", "x" * 128])
def test_thing_names_aws_iot_accepts(name: str) -> None:
    assert check_thing_name(name) == name


@pytest.mark.parametrize("name", ["", "fan/001", "fan#", "fan+", "fan 1", "x" * 129, "fan.observer"])
def test_thing_names_that_could_widen_an_acl_are_refused(name: str) -> None:
    with pytest.raises(MqttRequestError, match="thing name"):
        check_thing_name(name)


@pytest.mark.parametrize("name", ["pi-1\n", "pi-1\r\n", "\npi-1"])
def test_a_thing_name_is_matched_whole(name: str) -> None:
    """Issue 14: a trailing newline passed the `$` pattern."""
    with pytest.raises(ValueError):
        check_thing_name(name)
