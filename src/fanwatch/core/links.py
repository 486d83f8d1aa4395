"""The broker that stands in for AWS IoT Core, and each thing's connection to it, for ``fanwatch core run``.

``embedded`` starts amqtt (pip only; plain TCP on the loopback address, anonymous unless
``FANWATCH_BROKER_USERNAME``/``_PASSWORD`` give it a login); ``mosquitto`` starts mosquitto
with mutual TLS and a per-thing ACL (each thing gets its own certificate, CN = thing name); a URL
(``mqtt://host:1883``, ``mqtts://host:8883``) uses a broker that is already running, with the
certificates in ``--certs`` (``ca.crt``, ``<thing>.crt``, ``<thing>.key``) for mqtts, and the login
from the environment where one is set.

Each thing's spooler is set up from the ``mqtt.spooler`` settings that its last deployment left in the
aws.greengrass.Nucleus configuration (a ``Disk`` spool lives in the core's root and survives a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fanwatch.core.fleet import LinkFactory
from fanwatch.core.layout import CoreLayout
from fanwatch.core.mqtt.amqtt_broker import AmqttBroker
from fanwatch.core.mqtt.broker import LocalBroker
from fanwatch.core.mqtt.endpoint import BrokerEndpoint, KeyPair, Login
from fanwatch.core.mqtt.link import MqttIoTCoreLink
from fanwatch.core.mqtt.mosquitto_broker import MosquittoBroker
from fanwatch.core.mqtt.spooler import Spooler, SpoolerConfig
from fanwatch.telemetry import TOPIC_ROOT

__all__ = ["broker_links", "saved_spooler_settings", "subscribe_command"]

log = logging.getLogger(__name__)


def saved_spooler_settings(core_root: Path) -> dict[str, Any] | None:
    """``mqtt.spooler`` of the Nucleus configuration the core saved when it last stopped, if any."""
    try:
        saved = json.loads(CoreLayout(core_root).deployment_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    spooler = ((saved.get("nucleus") or {}).get("mqtt") or {}).get("spooler")
    return spooler if isinstance(spooler, dict) else None


def subscribe_command(broker: LocalBroker, topic: str = f"{TOPIC_ROOT}/#") -> str:
    """A command line that shows what reaches ``broker`` on ``topic``, as an observer may read it."""
    endpoint = broker.observer_endpoint()
    if endpoint.ca_file is None or endpoint.client is None:
        return f"amqtt_sub --url {endpoint.url} -t '{topic}'"
    return (
        f"mosquitto_sub -h {endpoint.host} -p {endpoint.port} --cafile {endpoint.ca_file} "
        f"--cert {endpoint.client.cert_file} --key {endpoint.client.key_file} -t '{topic}' -v"
    )


def _external(url: str, certs: Path | None) -> Callable[[str], BrokerEndpoint]:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise ValueError(
            f"--broker: expected embedded, mosquitto, mqtt://HOST:PORT or mqtts://..., got {url!r}"
        )
    host, port = parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    login = Login.from_environment()
    if parts.scheme == "mqtt":
        return lambda thing: BrokerEndpoint(host, port, login=login)
    if certs is None:
        raise ValueError("--broker mqtts://...: give --certs DIR with ca.crt and <thing>.crt/.key per thing")
    return lambda thing: BrokerEndpoint(
        host, port, certs / "ca.crt", KeyPair(certs / f"{thing}.crt", certs / f"{thing}.key"), login
    )


@contextlib.asynccontextmanager
async def broker_links(
    broker: str,
    *,
    certs: Path | None,
    root: Path,
    port: int = 0,
    started: Callable[[LocalBroker], None] | None = None,
) -> AsyncIterator[LinkFactory]:
    """A fleet's ``links`` for ``broker``; a broker started here (on ``port``, or a free one) stops when
    the block ends, and ``started`` hears of it once it runs."""
    local: LocalBroker | None = None
    if broker == "embedded":
        local = AmqttBroker(root / "broker", port=port, login=Login.from_environment())
    elif broker == "mosquitto":
        local = MosquittoBroker(root / "broker", port=port)
    if local is not None:
        await asyncio.to_thread(local.start)
        endpoint_for: Callable[[str], BrokerEndpoint] = local.endpoint_for
        observer = local.observer_endpoint()
        log.info("broker: %s on %s (its log: %s)", local.name, observer.url, local.log_file)
        if started is not None:
            started(local)
    else:
        endpoint_for = _external(broker, certs)

    def links(thing: str, core_root: Path) -> MqttIoTCoreLink:
        config = SpoolerConfig.from_nucleus(saved_spooler_settings(core_root))
        return MqttIoTCoreLink(thing, endpoint_for(thing), spooler=Spooler.open(config, core_root=core_root))

    try:
        yield links
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)
