"""The limits AWS IoT Core puts on topics, thing names and messages, checked before anything is spooled.

A message that IoT Core would refuse must be refused when the component publishes it, not minutes
later when the spooler drains: the nucleus validates the same way (``IotCoreTopicValidator``).
"""

from __future__ import annotations

import re
from typing import Final

from fanwatch.errors import FanwatchError
from fanwatch.limits import MAX_MESSAGE_BYTES, THING_NAME_RULE, is_thing_name

__all__ = [
    "MAX_TOPIC_BYTES",
    "MqttRequestError",
    "check_message",
    "check_thing_name",
    "check_topic_filter",
]

#: IoT Core's limit on a topic, in UTF-8 bytes, not counting a ``$aws/rules/<rule>/`` prefix.
MAX_TOPIC_BYTES: Final = 256
#: IoT Core allows at most 7 forward slashes (8 levels) in a topic.
MAX_SLASHES: Final = 7

_BASIC_INGEST: Final = re.compile(r"^\$aws/rules/[^/]+/")


class MqttRequestError(FanwatchError, ValueError):
    """A publish or subscribe that IoT Core would refuse (bad topic, oversized payload, bad QoS)."""


def check_thing_name(thing_name: str) -> str:
    """``thing_name`` if AWS IoT accepts it; it becomes the MQTT client id and the certificate's CN.

    The alphabet excludes ``/``, ``+`` and ``#`` on purpose: the broker's ACL substitutes the name
    into ``fanwatch/%u/#``, and a name holding a wildcard would widen one thing's rights to others.
    """
    if not is_thing_name(thing_name):
        raise MqttRequestError(f"{thing_name!r} is not a valid AWS IoT thing name ({THING_NAME_RULE})")
    return thing_name


def _check_levels(topic: str, what: str) -> None:
    if not topic:
        raise MqttRequestError(f"{what} must not be empty")
    if "\x00" in topic:
        raise MqttRequestError(f"{what} {topic!r} contains a NUL character")
    effective = _BASIC_INGEST.sub("", topic, count=1)
    if not effective:
        raise MqttRequestError(f"{what} {topic!r} has nothing after its $aws/rules/<rule>/ prefix")
    if effective.count("/") > MAX_SLASHES:
        raise MqttRequestError(
            f"{what} {topic!r} has more than {MAX_SLASHES} forward slashes (IoT Core's limit)"
        )
    if len(effective.encode()) > MAX_TOPIC_BYTES:
        raise MqttRequestError(f"{what} {topic[:40]!r}... is longer than IoT Core's {MAX_TOPIC_BYTES} bytes")


def check_message(topic: str, payload: bytes, qos: int) -> None:
    """Refuse a publish IoT Core would refuse: wildcards in the topic, QoS 2, a payload over 128 KB."""
    _check_levels(topic, "publish topic")
    if "+" in topic or "#" in topic:
        raise MqttRequestError(f"publish topic {topic!r} must not contain the wildcards '+' or '#'")
    if qos not in (0, 1):
        raise MqttRequestError(f"QoS {qos!r} is not supported by IoT Core (0 or 1)")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise MqttRequestError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MqttRequestError(
            f"message of {len(payload)} bytes on {topic!r} exceeds IoT Core's limit "
            f"of {MAX_MESSAGE_BYTES} bytes"
        )


def check_topic_filter(topic_filter: str, qos: int) -> None:
    """Refuse a subscription whose filter is malformed MQTT or breaks IoT Core's limits."""
    _check_levels(topic_filter, "topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise MqttRequestError(f"topic filter {topic_filter!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise MqttRequestError(f"topic filter {topic_filter!r}: '+' must fill a whole level")
    if qos not in (0, 1):
        raise MqttRequestError(f"QoS {qos!r} is not supported by IoT Core (0 or 1)")
