"""Starting and stopping the local brokers: one that cannot start says why; out-of-turn calls are safe."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fanwatch.core.mqtt import AmqttBroker, BrokerError, LocalBroker, MosquittoBroker


def test_a_broker_that_cannot_listen_says_why(broker: LocalBroker, tmp_path: Path) -> None:
    second: LocalBroker = (  # on the port the running broker holds
        AmqttBroker(tmp_path / "second", port=broker.port)
        if isinstance(broker, AmqttBroker)
        else MosquittoBroker(tmp_path / "second", port=broker.port)
    )
    with pytest.raises(BrokerError, match=r"did not start(.|\n)*(in use|Address already)"):
        second.start()
    assert not second.running


def test_start_stop_freeze_are_refused_or_harmless_out_of_turn(amqtt: AmqttBroker) -> None:
    with pytest.raises(BrokerError, match="already running"):
        amqtt.start()
    amqtt.stop()
    amqtt.stop()  # twice is harmless
    assert not amqtt.running
    with pytest.raises(BrokerError, match="not running"):
        amqtt.freeze()
    amqtt.thaw()  # nothing to thaw: harmless
    amqtt.start()  # and it comes back on the same port
    with socket.create_connection((amqtt.host, amqtt.port)):
        pass


def test_mosquitto_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MosquittoBroker, "find_binary", staticmethod(lambda: None))  # a machine without it
    with pytest.raises(BrokerError, match="apt-get install -y mosquitto"):
        MosquittoBroker(tmp_path / "broker")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_the_embedded_broker_never_listens_beyond_the_loopback_address(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback address only"):
        AmqttBroker(tmp_path / "broker", host=host)
