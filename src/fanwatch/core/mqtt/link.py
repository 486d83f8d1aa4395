"""A core's one MQTT connection to "IoT Core", with the nucleus' spooler in front of it.

``publish`` returns once a message is in the spooler, as PublishToIoTCore does on a device; one task
drains the spooler in order while the connection is up: QoS 1 messages leave the spooler only on
PUBACK, so a message lost with a dropped connection is sent again from the oldest unacknowledged
one. The connection is awscrt's MQTT 3.1.1 client (what the nucleus family uses), client id = thing
name, with mTLS where the broker asks for it; awscrt reconnects with exponential backoff, and this
link connects the first time with its own backoff (awscrt does not retry a first connect).

Every connect starts a clean session, unlike the nucleus' persistent one: the local brokers keep no
session across a restart anyway, and with nothing left queued inside awscrt the spooler is the only
queue, so after an outage subscriptions are restored *before* the spooler drains, and order is the
spooler's. Delivery is at least once: a message whose PUBACK was lost with the connection arrives twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Self

from awscrt import io, mqtt

from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.core.mqtt.spooler import Spooler
from fanwatch.core.mqtt.storage import MemoryStorage, SpooledMessage
from fanwatch.core.mqtt.topics import MqttRequestError, check_message, check_thing_name, check_topic_filter
from fanwatch.core.ports import MessageHandler, OfflineError

__all__ = ["MqttIoTCoreLink", "SubscriptionRefusedError"]

log = logging.getLogger(__name__)
#: How long closing an offline link waits for the client's DISCONNECT to settle.
_OFFLINE_DISCONNECT_S = 2.0


class SubscriptionRefusedError(MqttRequestError):
    """The broker refused a subscription in its SUBACK (return code 0x80)."""


@dataclass(slots=True)
class _Filter:
    qos: int
    handlers: tuple[MessageHandler, ...] = field(default=())  # replaced, never mutated: read from CRT threads


class _LinkSubscription:
    def __init__(self, link: MqttIoTCoreLink, topic_filter: str, handler: MessageHandler) -> None:
        self._release: Callable[[], Any] | None = partial(link._unsubscribe, topic_filter, handler)

    async def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            await release()


class MqttIoTCoreLink:
    """``async with MqttIoTCoreLink("fan-001", broker.endpoint_for("fan-001"), spooler=...) as link``."""

    def __init__(
        self,
        thing_name: str,
        endpoint: BrokerEndpoint,
        *,
        spooler: Spooler | None = None,
        max_in_flight: int = 5,
        max_publish_retries: int = 100,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 32,
        keep_alive_s: int = 60,
        operation_timeout_s: float = 30.0,
    ) -> None:
        self.thing_name = check_thing_name(thing_name)
        self.endpoint = endpoint
        self.spooler = spooler if spooler is not None else Spooler(MemoryStorage())
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if not 1 <= reconnect_min_s <= reconnect_max_s:
            raise ValueError("reconnect delays must satisfy 1 <= reconnect_min_s <= reconnect_max_s")
        self.max_in_flight = max_in_flight
        self.max_publish_retries = max_publish_retries  # -1: retry for ever (the nucleus' maxPublishRetry)
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._operation_timeout_s = operation_timeout_s
        self._connection = self._make_connection(keep_alive_s)
        self._filters: dict[str, _Filter] = {}
        self._retries: dict[int, int] = {}
        self._ready = asyncio.Event()  # connected, and every subscription restored
        self._work = asyncio.Event()  # something was spooled
        self._idle = asyncio.Event()  # the spooler was found empty
        self._generation = 0  # counts connection changes, so a stale restore never marks the link ready
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def _make_connection(self, keep_alive_s: int) -> mqtt.Connection:
        tls = None
        if self.endpoint.ca_file is not None:
            client = self.endpoint.client
            options = (
                io.TlsContextOptions.create_client_with_mtls_from_path(
                    str(client.cert_file), str(client.key_file)
                )
                if client is not None
                else io.TlsContextOptions()
            )
            options.override_default_trust_store_from_path(None, str(self.endpoint.ca_file))
            options.min_tls_ver = io.TlsVersion.TLSv1_2
            tls = io.ClientTlsContext(options)
        return mqtt.Connection(
            mqtt.Client(None, tls),
            self.endpoint.host,
            self.endpoint.port,
            self.thing_name,
            clean_session=True,
            username=self.endpoint.login.username if self.endpoint.login else None,
            password=self.endpoint.login.password if self.endpoint.login else None,
            reconnect_min_timeout_secs=self._reconnect[0],
            reconnect_max_timeout_secs=self._reconnect[1],
            keep_alive_secs=keep_alive_s,
            ping_timeout_ms=min(30_000, keep_alive_s * 500),
            protocol_operation_timeout_ms=int(self._operation_timeout_s * 1000),
            on_connection_success=self._from_crt(self._up, "callback_data"),
            on_connection_interrupted=self._from_crt(self._down, "error"),
            disable_metrics=True,
        )

    def _from_crt(self, callback: Callable[[Any], None], argument: str) -> Callable[..., None]:
        """awscrt calls back on its own threads, with keyword arguments; the state belongs to the loop."""

        def relay(**kwargs: Any) -> None:
            if self._loop is not None and not self._closed:
                with contextlib.suppress(RuntimeError):  # the loop closed under us: nothing to tell
                    self._loop.call_soon_threadsafe(callback, kwargs.get(argument))

        return relay

    # -- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Begin connecting and draining; returns at once (a broker that is down only delays delivery)."""
        if self._loop is not None:
            raise RuntimeError("the link was already started")
        self._loop = asyncio.get_running_loop()
        self._spawn(self._connect_first(), "connect")
        self._spawn(self._drain(), "drain")

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(work, name=f"mqtt-{what}-{self.thing_name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def online(self) -> bool:
        """Connected, with every subscription restored: what 'online' means to the spooler."""
        return self._ready.is_set()

    async def wait_online(self) -> None:
        await self._ready.wait()

    async def flush(self) -> None:
        """Wait until the spooler is empty (every QoS 1 message acknowledged); wrap in a timeout."""
        while len(self.spooler):
            self._idle.clear()
            self._work.set()
            await self._idle.wait()

    async def close(self) -> None:
        """Disconnect cleanly; what is still spooled stays in the spooler (on disk, for a Disk spool)."""
        if self._closed:
            return
        self._closed = True
        # offline, there is no session to end: waiting for DISCONNECT's answer would only sit out the
        # operation timeout (30 s a core, one after another, while the broker was down)
        disconnect_wait = self._operation_timeout_s if self._ready.is_set() else _OFFLINE_DISCONNECT_S
        self._ready.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(self._connection.disconnect()), disconnect_wait)
        left = len(self.spooler)
        persistent = self.spooler.persistent
        self.spooler.close()
        if left and not persistent:
            log.warning(
                "%s: link closed: %d message(s) still in the Memory spooler are LOST "
                "(a Disk spooler keeps them across restarts)",
                self.thing_name,
                left,
            )
        else:
            log.info("%s: link closed, %d message(s) kept in the Disk spooler", self.thing_name, left)

    async def _connect_first(self) -> None:
        delay = float(self._reconnect[0])
        while True:
            try:
                await asyncio.wrap_future(self._connection.connect())
                return  # from now on awscrt reconnects by itself
            except Exception as error:
                log.warning(
                    "%s: cannot connect to %s (%s); retrying in %.1f s",
                    self.thing_name,
                    self.endpoint.url,
                    error,
                    delay,
                )
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))  # jitter: a fleet does not retry in step
            delay = min(delay * 2, float(self._reconnect[1]))

    def _up(self, _data: Any) -> None:
        self._generation += 1
        self._spawn(self._restore(self._generation), "restore")

    def _down(self, error: Any) -> None:
        self._generation += 1
        self._ready.clear()
        dropped = self.spooler.drop_qos0()
        log.warning(
            "%s: connection to %s lost (%s); %d messages spooled%s",
            self.thing_name,
            self.endpoint.url,
            error,
            len(self.spooler),
            f", {dropped} QoS 0 messages dropped" if dropped else "",
        )

    async def _restore(self, generation: int) -> None:
        """Subscribe again to every filter (a clean session starts with none), then let the spooler drain."""
        restored: set[str] = set()
        # until none is left: a component may subscribe while the others are being restored
        while pending := [f for f in self._filters if f not in restored]:
            for topic_filter in pending:
                restored.add(topic_filter)
                entry = self._filters.get(topic_filter)
                if entry is None:
                    continue  # unsubscribed meanwhile
                try:
                    await self._broker_subscribe(topic_filter, entry.qos)
                except SubscriptionRefusedError as refused:
                    log.error("%s: %s", self.thing_name, refused)
                except Exception as error:  # the connection went again; the next one restores everything
                    log.warning(
                        "%s: restoring the subscription to %r failed: %s",
                        self.thing_name,
                        topic_filter,
                        error,
                    )
                    return
                if generation != self._generation:
                    return
        if generation == self._generation and not self._closed:
            log.info(
                "%s: connected to %s (%d subscriptions restored, %d messages spooled)",
                self.thing_name,
                self.endpoint.url,
                len(self._filters),
                len(self.spooler),
            )
            self._ready.set()

    # -- publishing -----------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        """Spool a message for IoT Core; returns once it is spooled, not when it is acknowledged.

        Raises MqttRequestError for what IoT Core would refuse, OfflineError for QoS 0 while
        offline (unless ``keepQos0WhenOffline``) and SpoolFullError when there is no room.
        """
        if self._closed:
            raise OfflineError(f"{self.thing_name}: the link to IoT Core is closed")
        check_message(topic, payload, qos)
        if qos == 0 and not self.online and not self.spooler.keep_qos0_when_offline:
            raise OfflineError(f"offline: QoS 0 message on {topic!r} dropped (keepQos0WhenOffline is false)")
        self.spooler.add(topic, bytes(payload), qos, retain=retain)
        self._idle.clear()
        self._work.set()

    async def _drain(self) -> None:
        """Keep up to ``max_in_flight`` of the oldest messages in flight whenever the link is online.

        A sliding window, not batches: with batches of unacknowledged publishes, TCP's small-packet
        coalescing stalls each batch for tens of milliseconds.
        """
        window: deque[tuple[SpooledMessage, asyncio.Future[Any]]] = deque()
        last_sent = -1
        try:
            while True:
                if not window:
                    await self._ready.wait()
                if self.online:
                    for message in self.spooler.oldest(self.max_in_flight - len(window), after=last_sent):
                        window.append((message, self._send(message)))
                        last_sent = message.id
                if not window:
                    self._work.clear()
                    self._idle.set()
                    await self._work.wait()
                    continue
                try:
                    await window[0][1]  # the oldest in flight
                except Exception:
                    # start again from the oldest unacknowledged message, once everything in flight settled
                    outcomes = await asyncio.gather(*(f for _, f in window), return_exceptions=True)
                    acknowledged = []
                    for (message, _), outcome in zip(window, outcomes, strict=True):
                        if isinstance(outcome, BaseException):
                            self._failed(message, outcome)
                        else:
                            acknowledged.append(message.id)
                            self._retries.pop(message.id, None)
                    self.spooler.remove(acknowledged)
                    window.clear()
                    last_sent = -1
                    if self.online:
                        await asyncio.sleep(0.5)  # not a dropped connection: do not retry in a tight loop
                    continue
                delivered = []
                while window and window[0][1].done() and window[0][1].exception() is None:
                    delivered.append(window.popleft()[0].id)
                for message_id in delivered:
                    self._retries.pop(message_id, None)
                self.spooler.remove(delivered)  # one commit for all: a Disk spool syncs once
        finally:
            for _, sent in window:
                sent.cancel()  # so a late answer from awscrt never reaches a closed loop

    def _send(self, message: SpooledMessage) -> asyncio.Future[Any]:
        future, _packet_id = self._connection.publish(
            message.topic, message.payload, mqtt.QoS(message.qos), message.retain
        )
        return asyncio.wrap_future(future)

    def _failed(self, message: SpooledMessage, error: BaseException) -> None:
        retries = self._retries[message.id] = self._retries.get(message.id, 0) + 1
        if 0 <= self.max_publish_retries < retries:
            log.error(
                "%s: dropping message %d on %r after %d failed attempts: %s",
                self.thing_name,
                message.id,
                message.topic,
                retries,
                error,
            )
            self.spooler.remove([message.id])
            del self._retries[message.id]
        else:
            log.info(
                "%s: publish of message %d on %r failed (%s); will retry",
                self.thing_name,
                message.id,
                message.topic,
                error,
            )

    # -- subscribing ----------------------------------------------------------------------------------

    async def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> _LinkSubscription:
        """Deliver messages matching ``topic_filter`` to ``handler`` (on an awscrt thread) until closed.

        While offline the subscription is recorded and made when the connection comes up; a broker
        that refuses it raises SubscriptionRefusedError.
        """
        if self._closed:
            raise OfflineError(f"{self.thing_name}: the link to IoT Core is closed")
        check_topic_filter(topic_filter, qos)
        entry = self._filters.get(topic_filter)
        fresh = entry is None
        if entry is None:
            entry = self._filters[topic_filter] = _Filter(qos)
        upgrade = qos > entry.qos
        entry.qos = max(entry.qos, qos)
        entry.handlers = (*entry.handlers, handler)
        if (fresh or upgrade) and self.online:
            try:
                await self._broker_subscribe(topic_filter, entry.qos)
            except SubscriptionRefusedError:
                self._forget(topic_filter, handler)  # nothing to unsubscribe from: the broker said no
                raise
            except Exception as error:  # the connection dropped meanwhile: restored on reconnect
                log.info(
                    "%s: subscribing to %r deferred until reconnected (%s)",
                    self.thing_name,
                    topic_filter,
                    error,
                )
        return _LinkSubscription(self, topic_filter, handler)

    async def _broker_subscribe(self, topic_filter: str, qos: int) -> None:
        future, _packet_id = self._connection.subscribe(
            topic_filter, mqtt.QoS(qos), partial(self._deliver, topic_filter)
        )
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), self._operation_timeout_s)
        except mqtt.SubscribeError as refused:
            raise SubscriptionRefusedError(
                f"the broker refused the subscription to {topic_filter!r}"
            ) from refused

    def _deliver(self, topic_filter: str, topic: str, payload: bytes, **_: Any) -> None:
        entry = self._filters.get(topic_filter)
        for handler in entry.handlers if entry else ():
            try:
                handler(topic, payload)
            except Exception:
                log.exception(
                    "%s: a handler of %r failed on a message from %r", self.thing_name, topic_filter, topic
                )

    def _forget(self, topic_filter: str, handler: MessageHandler) -> bool:
        """Drop ``handler`` from ``topic_filter``; True when that was the filter's last handler."""
        entry = self._filters.get(topic_filter)
        if entry is None or handler not in entry.handlers:
            return False
        remaining = list(entry.handlers)
        remaining.remove(handler)
        entry.handlers = tuple(remaining)
        if remaining:
            return False
        del self._filters[topic_filter]
        return True

    async def _unsubscribe(self, topic_filter: str, handler: MessageHandler) -> None:
        if self._forget(topic_filter, handler) and self.online:
            future, _packet_id = self._connection.unsubscribe(topic_filter)
            with contextlib.suppress(Exception):  # offline: the next clean session will not have it anyway
                await asyncio.wait_for(asyncio.wrap_future(future), self._operation_timeout_s)
