"""PublishToTopic and SubscribeToTopic: local pub/sub between components (``PubSubIPCEventStreamAgent``).

Authorization comes first and matches resources literally (only ``*`` is a wildcard here), then the
topic rules of :mod:`fanwatch.core.ipc.local_pubsub`.
"""

from __future__ import annotations

from awsiot.greengrasscoreipc import model

from fanwatch.core.ipc.calls import Call, Handler, authorize
from fanwatch.core.ipc.local_pubsub import InvalidTopicError, LocalMessage, ReceiveMode
from fanwatch.limits import PUBLISH_TO_TOPIC, PUBSUB_SERVICE, SUBSCRIBE_TO_TOPIC

__all__ = ["HANDLERS"]

PUBLISH = PUBLISH_TO_TOPIC
SUBSCRIBE = SUBSCRIBE_TO_TOPIC


def _authorize(call: Call, operation: str, topic: str | None) -> None:
    authorize(
        call, PUBSUB_SERVICE, operation, topic, refusal=lambda reason: model.UnauthorizedError(message=reason)
    )


def _local_message(topic: str, request: model.PublishMessage | None) -> LocalMessage:
    if request is not None and request.binary_message is not None:
        return LocalMessage(topic, binary=request.binary_message.message or b"")
    if request is not None and request.json_message is not None:
        document = request.json_message.message
        if not isinstance(document, dict):
            raise model.InvalidArgumentsError(message="jsonMessage.message must be a JSON object")
        return LocalMessage(topic, json=document)
    raise model.InvalidArgumentsError(message="publishMessage needs a jsonMessage or a binaryMessage")


def _to_event(message: LocalMessage) -> model.SubscriptionResponseMessage:
    context = model.MessageContext(topic=message.topic)
    if message.binary is not None:
        return model.SubscriptionResponseMessage(
            binary_message=model.BinaryMessage(message=message.binary, context=context)
        )
    return model.SubscriptionResponseMessage(
        json_message=model.JsonMessage(message=message.json, context=context)
    )


async def publish_to_topic(call: Call, request: model.PublishToTopicRequest) -> model.PublishToTopicResponse:
    """PublishToTopic: checks the caller's ``aws.greengrass.ipc.pubsub`` authorization for the topic, the
    message (a JSON object or bytes) and the topic's rules, then delivers it locally."""
    _authorize(call, PUBLISH, request.topic)
    if request.topic is None:
        raise model.InvalidArgumentsError(message="Publish topic must not be null")
    message = _local_message(request.topic, request.publish_message)
    try:
        call.services.pubsub.publish(message, call.component)
    except InvalidTopicError as exc:
        raise model.InvalidArgumentsError(message=str(exc)) from exc
    return model.PublishToTopicResponse()


async def subscribe_to_topic(
    call: Call, request: model.SubscribeToTopicRequest
) -> model.SubscribeToTopicResponse:
    """SubscribeToTopic: checks the caller's authorization for the topic filter and the receive mode, then
    streams each local message it matches to the caller until the stream closes."""
    _authorize(call, SUBSCRIBE, request.topic)
    try:
        mode = ReceiveMode(request.receive_mode) if request.receive_mode is not None else None
    except ValueError as exc:
        raise model.InvalidArgumentsError(message=f"Invalid receiveMode: {request.receive_mode}") from exc
    try:
        unsubscribe = call.services.pubsub.subscribe(
            request.topic or "", call.component, lambda m: call.emit(_to_event(m)), receive_mode=mode
        )
    except InvalidTopicError as exc:
        raise model.InvalidArgumentsError(message=str(exc)) from exc
    call.on_close(unsubscribe)
    return model.SubscribeToTopicResponse()


HANDLERS: dict[str, Handler] = {PUBLISH: publish_to_topic, SUBSCRIBE: subscribe_to_topic}
