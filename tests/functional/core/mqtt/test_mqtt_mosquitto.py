"""mosquitto as IoT Core: only certificates from its CA get in, and a thing's certificate only reaches
its own topics. mosquitto acknowledges a denied QoS 1 publish and drops it, so isolation is checked
where it matters: at a subscriber, after a later message from the same client has arrived."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from awscrt import exceptions, io, mqtt

from fanwatch.core.mqtt import BrokerEndpoint, MosquittoBroker, MqttIoTCoreLink
from fanwatch.core.mqtt.broker import Observer
from fanwatch.core.mqtt.certs import CertificateAuthority
from fanwatch.telemetry import topic_for

pytestmark = [pytest.mark.mosquitto, pytest.mark.asyncio]

THING, OTHER = "fan-001", "fan-002"


def raw_connection(broker: MosquittoBroker, tls: io.TlsContextOptions, client_id: str) -> mqtt.Connection:
    """A bare awscrt client, to see the broker's answer to a handshake without the link's retries."""
    tls.override_default_trust_store_from_path(None, str(broker.ca.cert_file))
    return mqtt.Connection(mqtt.Client(None, io.ClientTlsContext(tls)), broker.host, broker.port, client_id)


@pytest.mark.parametrize("credential", ["none", "another CA's"])
async def test_mtls_refuses_a_client_without_a_certificate_from_the_broker_ca(
    mosquitto: MosquittoBroker, credential: str, tmp_path: Any, until: Any
) -> None:
    if credential == "none":
        tls = io.TlsContextOptions()
        refusal = "peer did not return a certificate"
    else:  # a rogue CA issuing a certificate with the right thing name
        rogue = CertificateAuthority(tmp_path / "rogue").issue_client(THING)
        tls = io.TlsContextOptions.create_client_with_mtls_from_path(
            str(rogue.cert_file), str(rogue.key_file)
        )
        refusal = "certificate verify failed"
    connection = raw_connection(mosquitto, tls, THING)
    with pytest.raises(exceptions.AwsCrtError, match="TLS"):
        await asyncio.wait_for(asyncio.wrap_future(connection.connect()), 10)
    await until(lambda: refusal in mosquitto.log_file.read_text(), f"mosquitto logs {refusal!r}")

    rogue_endpoint = BrokerEndpoint(mosquitto.host, mosquitto.port, mosquitto.ca.cert_file)
    async with MqttIoTCoreLink(THING, rogue_endpoint) as link:  # the link keeps trying, and never gets in
        await asyncio.sleep(1.5)
        assert not link.online


async def test_one_things_certificate_cannot_reach_another_things_topics(
    mosquitto: MosquittoBroker, inbox: Any, until: Any
) -> None:
    cloud, stolen = inbox(), inbox()
    mine_topic, other_topic = topic_for("telemetry", THING), topic_for("telemetry", OTHER)
    async with (
        MqttIoTCoreLink("observer", mosquitto.observer_endpoint()) as observer,
        MqttIoTCoreLink(THING, mosquitto.endpoint_for(THING)) as mine,
    ):
        await until(lambda: observer.online and mine.online, "connected")
        await observer.subscribe("fanwatch/#", 1, cloud)
        await mine.subscribe(f"fanwatch/{OTHER}/#", 1, stolen)  # granted by mosquitto, but never fed

        async with MqttIoTCoreLink(OTHER, mosquitto.endpoint_for(OTHER)) as other:
            await until(lambda: other.online, "fan-002 connected")
            await mine.publish(other_topic, b"forged by fan-001", 1)
            await other.publish(other_topic, b"fan-002's own", 1)
            # after the forgery on the same connection: once this arrives, the forgery would have
            await mine.publish(mine_topic, b"fan-001's own", 1)
            await asyncio.wait_for(mine.flush(), 10)  # the forgery was acknowledged, and dropped
            await cloud.wait_for(2)

        # fan-001's certificate under fan-002's client id: see the test after this one

        # the observer's identity may only read: mosquitto routes (or drops) a publish as it arrives,
        # so once its PUBACK is in, a marker published afterwards arrives after it, had it been routed
        await observer.publish(topic_for("status", THING), b"written by the observer", 1)
        await asyncio.wait_for(observer.flush(), 10)
        await mine.publish(topic_for("status", THING), b"marker", 1)
        await cloud.wait_for(3)

    assert sorted(cloud.messages) == sorted(
        [
            (other_topic, b"fan-002's own"),
            (mine_topic, b"fan-001's own"),
            (topic_for("status", THING), b"marker"),
        ]
    )
    assert stolen.messages == []


async def test_the_client_id_is_the_thing_name_and_close_says_goodbye(
    mosquitto: MosquittoBroker, until: Any
) -> None:
    async with MqttIoTCoreLink(THING, mosquitto.endpoint_for(THING)) as link:
        await until(lambda: link.online, "connected")
    await until(lambda: f"Client {THING} disconnected." in mosquitto.log_file.read_text(), "a DISCONNECT")
    log = mosquitto.log_file.read_text()
    assert f"as {THING} (" in log and f"u'{THING}'" in log  # client id and certificate identity
    assert f"Client {THING} closed its connection" not in log  # a clean MQTT DISCONNECT, not a dropped socket


async def test_a_things_certificate_under_another_things_client_id_cannot_knock_it_off(
    mosquitto: MosquittoBroker, inbox: Any, until: Any
) -> None:
    """Issue 14: fan-001's certificate connecting as client id fan-002 took over fan-002's session, and
    knocked fan-002's core off again and again. IoT Core ties the client id to the thing; so does the
    stand-in now: the broker takes the certificate's identity as the client id, whatever was asked."""
    received = inbox()
    async with MqttIoTCoreLink(OTHER, mosquitto.endpoint_for(OTHER)) as victim:
        await until(lambda: victim.online, "fan-002 connected")
        await victim.subscribe(topic_for("status", OTHER), 1, received)
        for attempt in range(3):
            impostor = raw_connection(mosquitto, _tls(mosquitto.endpoint_for(THING)), OTHER)
            await asyncio.wait_for(asyncio.wrap_future(impostor.connect()), 10)
            # the victim's own round trip after the impostor's CONNACK: it is still connected
            await victim.publish(topic_for("status", OTHER), f"still here {attempt}".encode(), 1)
            await received.wait_for(attempt + 1)
            await asyncio.wait_for(asyncio.wrap_future(impostor.disconnect()), 10)
        assert victim.online
    log = mosquitto.log_file.read_text()
    assert f"Client {OTHER} already connected, closing old connection" not in log
    assert f"as {THING} (" in log  # the impostor's connection went under its own identity


async def test_observers_each_have_an_identity_so_they_do_not_knock_each_other_off(
    mosquitto: MosquittoBroker, until: Any
) -> None:
    """With the identity as the client id, two observers under one identity would take turns."""
    identities = {mosquitto.observer_endpoint(o).client for o in Observer}
    assert len(identities) == len(Observer)
    async with (
        MqttIoTCoreLink("cloud", mosquitto.observer_endpoint(Observer.RULES)) as rules,
        MqttIoTCoreLink("cloud", mosquitto.observer_endpoint(Observer.DEMO)) as demo,
        MqttIoTCoreLink("cloud", mosquitto.observer_endpoint()) as person,
    ):
        await until(lambda: rules.online and demo.online and person.online, "all three connected")
        await asyncio.sleep(0.5)
        assert rules.online and demo.online and person.online
    assert "already connected, closing old connection" not in mosquitto.log_file.read_text()


def _tls(endpoint: BrokerEndpoint) -> io.TlsContextOptions:
    assert endpoint.client is not None
    return io.TlsContextOptions.create_client_with_mtls_from_path(
        str(endpoint.client.cert_file), str(endpoint.client.key_file)
    )
