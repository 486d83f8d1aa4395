"""The components' one door to Greengrass: a small bus interface and its IPC client V2 implementation.

Subscription callbacks arrive on the IPC client's event thread. The client is created without an
executor so callbacks run in order, which is only safe because every handler given to this bus does
nothing but put the message on a queue: handlers must never block or call IPC themselves. The worker
that drains the queue does the work and the IPC calls.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["EdgeBus", "GreengrassBus", "MessageHandler", "UpdateHandler"]

#: (topic, payload); called on the IPC thread: it must only enqueue.
MessageHandler = Callable[[str, bytes], None]
#: Called (on the IPC thread) when the component's configuration changed; it must only enqueue.
UpdateHandler = Callable[[], None]


class EdgeBus(Protocol):
    """What the fanwatch components ask of the Greengrass nucleus."""

    def publish_local(self, topic: str, payload: bytes) -> None:
        """IPC ``PublishToTopic`` (local pub/sub, binary message)."""
        ...

    def subscribe_local(self, topic: str, handler: MessageHandler) -> None:
        """IPC ``SubscribeToTopic``."""
        ...

    def publish_iot(self, topic: str, payload: bytes) -> None:
        """IPC ``PublishToIoTCore`` with QoS 1; returns once the nucleus has spooled the message."""
        ...

    def get_configuration(self) -> Mapping[str, Any]:
        """IPC ``GetConfiguration`` of the component's whole configuration."""
        ...

    def on_configuration_update(self, handler: UpdateHandler) -> None:
        """IPC ``SubscribeToConfigurationUpdate`` of the whole configuration."""
        ...

    def report_state(self, state: str) -> None:
        """IPC ``UpdateState`` (RUNNING or ERRORED)."""
        ...

    def close(self) -> None: ...


class GreengrassBus:
    """:class:`EdgeBus` over ``GreengrassCoreIPCClientV2`` (socket and token from the environment)."""

    def __init__(self, client: Any | None = None) -> None:
        if client is None:
            from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

            client = GreengrassCoreIPCClientV2(executor=None)  # in-order callbacks; handlers only enqueue
        self._client = client
        self._operations: list[Any] = []

    def publish_local(self, topic: str, payload: bytes) -> None:
        from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

        self._client.publish_to_topic(
            topic=topic, publish_message=PublishMessage(binary_message=BinaryMessage(message=payload))
        )

    def subscribe_local(self, topic: str, handler: MessageHandler) -> None:
        def on_event(event: Any) -> None:
            if event.binary_message is not None:
                message = event.binary_message
                handler(message.context.topic if message.context else topic, bytes(message.message))
            elif event.json_message is not None:
                message = event.json_message
                body = json.dumps(message.message, separators=(",", ":")).encode()
                handler(message.context.topic if message.context else topic, body)

        _, operation = self._client.subscribe_to_topic(topic=topic, on_stream_event=on_event)
        self._operations.append(operation)

    def publish_iot(self, topic: str, payload: bytes) -> None:
        from awsiot.greengrasscoreipc.model import QOS

        self._client.publish_to_iot_core(topic_name=topic, qos=QOS.AT_LEAST_ONCE, payload=payload)

    def get_configuration(self) -> Mapping[str, Any]:
        response = self._client.get_configuration(key_path=[])
        return dict(response.value or {})

    def on_configuration_update(self, handler: UpdateHandler) -> None:
        _, operation = self._client.subscribe_to_configuration_update(
            key_path=[], on_stream_event=lambda _event: handler()
        )
        self._operations.append(operation)

    def report_state(self, state: str) -> None:
        self._client.update_state(state=state)

    def close(self) -> None:
        for operation in self._operations:
            with contextlib.suppress(Exception):  # the server may have ended the stream already
                operation.close()
        self._client.close()
