"""PublishToIoTCore and SubscribeToIoTCore: the nucleus' MQTT proxy, in front of the core's IoT link.

Validation and its messages follow ``MqttProxyIPCAgent``: topic, then authorization (MQTT-style
wildcards), then payload and QoS. A publish returns once the link has spooled the message.
"""

from __future__ import annotations

from awsiot.greengrasscoreipc import model

from fanwatch.core.ipc.calls import Call, Handler, authorize
from fanwatch.limits import (
    MAX_MESSAGE_BYTES,
    MQTT_PROXY_SERVICE,
    NUCLEUS_COMPONENT,
    PUBLISH_TO_IOT_CORE,
    SUBSCRIBE_TO_IOT_CORE,
)

__all__ = ["HANDLERS"]

PUBLISH = PUBLISH_TO_IOT_CORE
SUBSCRIBE = SUBSCRIBE_TO_IOT_CORE


def _topic(call: Call, topic: str | None, operation: str) -> str:
    if topic is None:
        raise model.InvalidArgumentsError(message="Topic is required")
    authorize(
        call,
        MQTT_PROXY_SERVICE,
        operation,
        topic,
        mqtt=True,
        refusal=lambda _reason: model.UnauthorizedError(message="Not Authorized"),
    )
    return topic


def _qos(qos: object) -> int:
    if qos is None:
        raise model.InvalidArgumentsError(message="QoS is required")
    if qos not in (model.QOS.AT_MOST_ONCE, model.QOS.AT_LEAST_ONCE):
        raise model.InvalidArgumentsError(message=f"Invalid QoS value: {qos}")
    return int(str(qos))


def _max_message_bytes(call: Call) -> int:
    try:
        configured = call.services.nucleus.config.get(NUCLEUS_COMPONENT, ["mqtt", "maxMessageSizeInBytes"])
        return int(configured)
    except (KeyError, TypeError, ValueError):
        return MAX_MESSAGE_BYTES  # the nucleus' default mqtt.maxMessageSizeInBytes


async def publish_to_iot_core(
    call: Call, request: model.PublishToIoTCoreRequest
) -> model.PublishToIoTCoreResponse:
    """PublishToIoTCore: checks the topic, the caller's ``aws.greengrass.ipc.mqttproxy`` authorization, the
    payload, the QoS and the nucleus' ``mqtt.maxMessageSizeInBytes``, then hands the message to the core's
    IoT link."""
    topic = _topic(call, request.topic_name, PUBLISH)
    if request.payload is None:
        raise model.InvalidArgumentsError(message="Payload is required")
    qos = _qos(request.qos)
    limit = _max_message_bytes(call)
    try:
        if len(request.payload) > limit:
            raise ValueError(
                f"The publishing message size {len(request.payload)} bytes exceeds the configured limit "
                f"of {limit} bytes"
            )
        await call.services.nucleus.iot.publish(topic, request.payload, qos, retain=bool(request.retain))
    except Exception as exc:  # the nucleus answers every spool and link failure the same way
        raise model.ServiceError(message=f"Publish to topic {topic} failed: {exc}") from exc
    return model.PublishToIoTCoreResponse()


async def subscribe_to_iot_core(
    call: Call, request: model.SubscribeToIoTCoreRequest
) -> model.SubscribeToIoTCoreResponse:
    """SubscribeToIoTCore: checks the topic filter, the caller's authorization and the QoS, then streams
    each message from IoT Core on that filter to the caller until the stream closes."""
    topic = _topic(call, request.topic_name, SUBSCRIBE)
    qos = _qos(request.qos)

    def forward(topic_name: str, payload: bytes) -> None:
        message = model.MQTTMessage(
            topic_name=topic_name, payload=payload, payload_format=model.PayloadFormat.BYTES
        )
        call.emit(model.IoTCoreMessage(message=message))

    try:
        subscription = await call.services.nucleus.iot.subscribe(topic, qos, forward)
    except Exception as exc:
        raise model.ServiceError(message=f"Subscribe to topic {topic} failed with error {exc}") from exc
    call.on_close(subscription.close)
    return model.SubscribeToIoTCoreResponse()


HANDLERS: dict[str, Handler] = {PUBLISH: publish_to_iot_core, SUBSCRIBE: subscribe_to_iot_core}
