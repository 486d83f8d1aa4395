"""A broker that refuses a subscription in its SUBACK, as AWS IoT Core does for a filter its policy denies.

Neither local broker ever refuses one (mosquitto grants any filter and filters per message; amqtt has
no ACL), so this is the one test that talks to a stand-in written here: a minimal MQTT 3.1.1 server
that accepts the connection and answers every SUBSCRIBE with the failure code 0x80.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from fanwatch.core.mqtt import BrokerEndpoint, MqttIoTCoreLink, SubscriptionRefusedError

pytestmark = pytest.mark.asyncio
THING = "fan-001"


class RefusingBroker:
    """CONNACK to every CONNECT, SUBACK 0x80 to every SUBSCRIBE (counted), UNSUBACK, PINGRESP."""

    def __init__(self) -> None:
        self.subscribes = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                kind, body = await self._packet(reader)
                if kind == 1:  # CONNECT
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 8:  # SUBSCRIBE: refuse it, echoing its packet id
                    self.subscribes += 1
                    writer.write(b"\x90\x03" + body[:2] + b"\x80")
                elif kind == 10:  # UNSUBSCRIBE
                    writer.write(b"\xb0\x02" + body[:2])
                elif kind == 12:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        header = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return header >> 4, await reader.readexactly(length)


@pytest_asyncio.fixture
async def refusing() -> AsyncIterator[tuple[RefusingBroker, BrokerEndpoint]]:
    broker = RefusingBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield broker, BrokerEndpoint("127.0.0.1", port)


async def test_a_refused_subscription_raises_and_is_forgotten(
    refusing: tuple[RefusingBroker, BrokerEndpoint], until: Any
) -> None:
    broker, endpoint = refusing
    async with MqttIoTCoreLink(THING, endpoint) as link:
        await until(lambda: link.online, "connected")
        for attempt in (1, 2):  # forgotten after a refusal: the second attempt asks the broker again
            with pytest.raises(SubscriptionRefusedError, match="refused the subscription"):
                await link.subscribe(f"fanwatch/{THING}/commands", 1, lambda t, p: None)
            assert broker.subscribes == attempt


async def test_a_subscription_refused_on_reconnect_does_not_keep_the_link_offline(
    refusing: tuple[RefusingBroker, BrokerEndpoint], until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, endpoint = refusing
    link = MqttIoTCoreLink(THING, endpoint)
    await link.subscribe(f"fanwatch/{THING}/commands", 1, lambda t, p: None)  # recorded while offline
    async with link:
        await until(lambda: link.online, "online despite the refusal")
    assert "refused the subscription" in caplog.text
