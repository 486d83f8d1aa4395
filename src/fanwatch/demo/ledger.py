"""What the devices sent: every telemetry reading each core handed to "IoT Core", counted at the edge.

A :class:`LedgerLink` sits between a core and its MQTT connection and records each message the moment
``PublishToIoTCore`` accepted it into the spooler, which is when a device considers it sent; the
spooler and the broker then owe its delivery. The demo holds this ledger against the lake at the end:
every QoS 1 reading sent must be there exactly once. Readings are told apart by (thing, fan, boot,
seq, ts): a message is numbered per boot and its readings have distinct timestamps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from fanwatch.core.ports import IoTCoreLink, MessageHandler, Subscription
from fanwatch.telemetry import ContractError, parse_telemetry

__all__ = ["EdgeLedger", "LedgerLink", "reading_key"]

ReadingKey = tuple[str, str, str | None, int | None, str]


def reading_key(thing: str, fan: str, boot: str | None, seq: int | None, ts: datetime) -> ReadingKey:
    """A reading's identity, whatever side counted it (timestamps compared in UTC, to the microsecond)."""
    stamp = (ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)).isoformat()
    return (thing, fan, boot, seq, stamp)


class EdgeLedger:
    """Thread-safe: the cores' links add, the demo reads."""

    def __init__(self) -> None:
        self._keys: list[ReadingKey] = []
        self.messages = 0
        self.other = 0  # alerts, status: not readings
        self.unreadable = 0  # telemetry a device sent that breaks the contract (the cloud dead-letters it)
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes, qos: int) -> None:
        if not topic.endswith("/telemetry") or qos != 1:
            with self._lock:
                self.other += 1
            return
        try:
            message = parse_telemetry(payload, thing=topic.split("/")[1])
        except ContractError:
            with self._lock:
                self.unreadable += 1
            return
        keys = [
            reading_key(message.thing, message.fan, message.boot, message.seq, r.ts) for r in message.readings
        ]
        with self._lock:
            self.messages += 1
            self._keys += keys

    @property
    def readings(self) -> int:
        with self._lock:
            return len(self._keys)

    def keys(self) -> list[ReadingKey]:
        with self._lock:
            return list(self._keys)

    def __iter__(self) -> Iterator[ReadingKey]:
        return iter(self.keys())


class LedgerLink:
    """An :class:`~fanwatch.core.ports.IoTCoreLink` that records what the core publishes in a ledger."""

    def __init__(self, link: IoTCoreLink, ledger: EdgeLedger) -> None:
        self.link = link
        self.ledger = ledger

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        await self.link.publish(topic, payload, qos, retain=retain)
        self.ledger.add(topic, payload, qos)  # accepted into the spooler: sent, as far as the device knows

    async def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> Subscription:
        return await self.link.subscribe(topic_filter, qos, handler)
