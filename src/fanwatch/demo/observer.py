"""The demo's view from the cloud side: a paho-mqtt client subscribed to every thing's topics.

It subscribes to ``fanwatch/+/telemetry``, ``fanwatch/+/alerts`` and ``fanwatch/+/status`` at QoS 1
and waits for the broker's SUBACK before the fleet starts, so nothing the fleet publishes is missed.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from fanwatch.core.mqtt.endpoint import Login
from fanwatch.demo.observations import Observations
from fanwatch.telemetry import TopicKind, topic_filter

__all__ = ["BrokerObserver"]

TOPICS = [(topic_filter(kind), 1) for kind in TopicKind]


class BrokerObserver:
    """``with BrokerObserver(host, port, observations): ...`` feeds every message to ``observations``;
    ``login`` for a broker that refuses anonymous clients."""

    def __init__(
        self,
        host: str,
        port: int,
        observations: Observations,
        *,
        login: Login | None = None,
        timeout: float = 10.0,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.observations = observations
        self._timeout = timeout
        self._subscribed = threading.Event()
        self._refused: list[str] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fanwatch-demo-observer")
        if login is not None:
            self._client.username_pw_set(login.username, login.password)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._acknowledged
        self._client.on_message = lambda _client, _userdata, message: observations.add(
            message.topic, bytes(message.payload)
        )
        self._address = (host, port)

    def _connected(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(TOPICS)
        else:  # paho would retry for ever with a login the broker refuses: say so at once
            self._refused = [f"the connection ({reason})"]
            self._subscribed.set()

    def _acknowledged(self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _properties: Any) -> None:
        granted = zip(TOPICS, reasons, strict=False)  # a broker that answers fewer codes refused the rest
        self._refused = [f"{topic} ({reason})" for (topic, _), reason in granted if reason.is_failure]
        self._refused += [topic for topic, _ in TOPICS[len(reasons) :]]
        self._subscribed.set()

    def __enter__(self) -> Self:
        self._client.connect(*self._address)
        self._client.loop_start()
        host, port = self._address
        if not self._subscribed.wait(self._timeout) or self._refused:
            self.close()
            why = f": it refused {', '.join(self._refused)}" if self._refused else ""
            raise ConnectionError(f"the broker on {host}:{port} did not accept the demo's subscription{why}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
