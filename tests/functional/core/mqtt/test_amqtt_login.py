"""The embedded broker with a login, for a machine others share: a client without it is refused; the
core's link and the demo's observer (real awscrt and paho clients) get in with it."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from fanwatch.core.mqtt import AmqttBroker, Login, MqttIoTCoreLink
from fanwatch.demo.observations import Observations
from fanwatch.demo.observer import BrokerObserver
from fanwatch.environment import BROKER_PASSWORD_VARIABLE, BROKER_USERNAME_VARIABLE
from fanwatch.telemetry import topic_for

LOGIN = Login("fanwatch", "correct horse battery staple")
THING = "fan-001"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[AmqttBroker]:
    with AmqttBroker(tmp_path / "amqtt", login=LOGIN) as broker:
        yield broker


def connack(broker: AmqttBroker, login: tuple[str, str] | None) -> str:
    """The broker's answer to a bare paho CONNECT with ``login`` (user name, password)."""
    answered = threading.Event()
    answer: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe")
    if login is not None:
        client.username_pw_set(*login)

    def connected(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        answer.append(str(reason))
        answered.set()

    client.on_connect = connected
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


def test_with_a_login_the_embedded_broker_refuses_anyone_without_it(guarded: AmqttBroker) -> None:
    """Issue 14: any local process could subscribe to ``#`` and publish a forged alert."""
    assert connack(guarded, None) != "Success"
    assert connack(guarded, (LOGIN.username, "wrong")) != "Success"
    assert connack(guarded, ("someone", LOGIN.password)) != "Success"
    assert connack(guarded, (LOGIN.username, LOGIN.password)) == "Success"
    assert stat.S_IMODE(guarded.password_file.stat().st_mode) == 0o600
    assert LOGIN.password not in guarded.password_file.read_text()  # a hash, not the password


@pytest.mark.asyncio
async def test_the_core_link_and_the_demo_observer_log_in_and_exchange_messages(guarded: AmqttBroker) -> None:
    observations = Observations(scale=1.0)
    endpoint = guarded.observer_endpoint()
    assert endpoint.login == LOGIN and guarded.endpoint_for(THING).login == LOGIN
    with BrokerObserver(endpoint.host, endpoint.port, observations, login=endpoint.login):
        async with MqttIoTCoreLink(THING, guarded.endpoint_for(THING)) as link:
            await link.publish(topic_for("status", THING), b'{"not": "a status"}', 1)
            await asyncio.wait_for(link.flush(), 10)
        for _ in range(500):
            if observations.count:
                break
            await asyncio.sleep(0.01)
    assert observations.received == [(topic_for("status", THING), b'{"not": "a status"}')]


def test_the_demo_observer_without_the_login_is_told_it_was_refused(guarded: AmqttBroker) -> None:
    with pytest.raises(ConnectionError, match="refused the connection"):
        BrokerObserver(guarded.host, guarded.port, Observations(scale=1.0), timeout=5).__enter__()


def test_the_login_comes_from_the_environment_both_or_neither() -> None:
    env = {BROKER_USERNAME_VARIABLE: "fanwatch", BROKER_PASSWORD_VARIABLE: "s3cret"}
    assert Login.from_environment(env) == Login("fanwatch", "s3cret")
    assert Login.from_environment({}) is None
    with pytest.raises(ValueError, match="or neither"):
        Login.from_environment({BROKER_USERNAME_VARIABLE: "fanwatch"})
    with pytest.raises(ValueError, match="hold ':'"):
        Login("fan:watch", "s3cret")
    assert "s3cret" not in repr(Login("fanwatch", "s3cret"))
