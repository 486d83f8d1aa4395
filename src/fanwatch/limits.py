"""Facts about AWS IoT, Greengrass and fans that several packages check against, each defined once.

The local core, the edge components, the build and the telemetry contract all import this module;
it imports nothing of fanwatch, so the edge on a Pi and the Lambdas in the cloud can use it as well.
Patterns here are matched whole (``fullmatch``): ``$`` would accept a trailing newline.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFAULT_MAX_RPM",
    "DEFAULT_REGION",
    "FAN_PATTERN",
    "IPC_OPERATIONS",
    "MAX_MESSAGE_BYTES",
    "MAX_RECIPE_BYTES",
    "MAX_RPM",
    "MQTT_PROXY_SERVICE",
    "NUCLEUS_COMPONENT",
    "PUBLISH_TO_IOT_CORE",
    "PUBLISH_TO_TOPIC",
    "PUBSUB_SERVICE",
    "SUBSCRIBE_TO_IOT_CORE",
    "SUBSCRIBE_TO_TOPIC",
    "THING_NAME_RULE",
    "THING_PATTERN",
    "is_thing_name",
    "recipe_size_problem",
]

#: AWS IoT Core's largest MQTT message payload, which is also the nucleus' default
#: ``mqtt.maxMessageSizeInBytes``: nothing larger can come from a device.
MAX_MESSAGE_BYTES: Final = 128 * 1024

#: What AWS IoT accepts as a thing name. It becomes the MQTT client id, the certificate's CN and a
#: topic level; the alphabet has no ``/``, ``+`` or ``#``, so a broker ACL that substitutes the name
#: into ``fanwatch/%u/#`` cannot be widened by it.
THING_PATTERN: Final = re.compile(r"[A-Za-z0-9:_-]{1,128}")
THING_NAME_RULE: Final = "[A-Za-z0-9:_-], 1 to 128 characters"

#: What a fan's id may be: it is a key in messages, in the detector's state and in the lake.
FAN_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: gdk and the Greengrass service accept a recipe of at most this many bytes (gdk's
#: ``MAX_RECIPE_FILE_SIZE_BYTES``: a recipe of exactly 16,000 bytes is accepted).
MAX_RECIPE_BYTES: Final = 16_000

#: The nucleus' own component: its configuration (region, MQTT spooler, interpolation) lives under this
#: name, and a deployment may configure it but never installs it on a local core.
NUCLEUS_COMPONENT: Final = "aws.greengrass.Nucleus"

#: The Greengrass IPC services our components' recipes grant in ``accessControl``, and the operations
#: each one authorizes: the build checks the recipes against them, the local core's IPC server serves them.
PUBSUB_SERVICE: Final = "aws.greengrass.ipc.pubsub"
MQTT_PROXY_SERVICE: Final = "aws.greengrass.ipc.mqttproxy"
PUBLISH_TO_TOPIC: Final = "aws.greengrass#PublishToTopic"
SUBSCRIBE_TO_TOPIC: Final = "aws.greengrass#SubscribeToTopic"
PUBLISH_TO_IOT_CORE: Final = "aws.greengrass#PublishToIoTCore"
SUBSCRIBE_TO_IOT_CORE: Final = "aws.greengrass#SubscribeToIoTCore"
IPC_OPERATIONS: Final = {
    PUBSUB_SERVICE: frozenset({PUBLISH_TO_TOPIC, SUBSCRIBE_TO_TOPIC}),
    MQTT_PROXY_SERVICE: frozenset({PUBLISH_TO_IOT_CORE, SUBSCRIBE_TO_IOT_CORE}),
}

#: The AWS region when none is given: the local core's ``AWS_REGION`` and the stand-ins'.
DEFAULT_REGION: Final = "us-east-1"

#: The fastest a fan is expected to spin unless configured otherwise; the tachometer treats edges
#: closer than this speed allows as noise.
DEFAULT_MAX_RPM: Final = 25_000.0
#: The highest speed any reading or configured speed may have (fast server fans reach ~30,000 RPM).
MAX_RPM: Final = 100_000.0


def is_thing_name(value: object) -> bool:
    """Whether AWS IoT accepts ``value`` as a thing name."""
    return isinstance(value, str) and THING_PATTERN.fullmatch(value) is not None


def recipe_size_problem(size: int) -> str | None:
    """Why a recipe of ``size`` bytes is refused, or None when gdk and Greengrass accept it."""
    if size > MAX_RECIPE_BYTES:
        return f"the recipe is {size:,} bytes; Greengrass accepts at most {MAX_RECIPE_BYTES:,}"
    return None
