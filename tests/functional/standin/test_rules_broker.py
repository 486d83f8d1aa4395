"""The rules engine on real brokers: what reaches it, what is acknowledged, and Basic Ingest."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from fanwatch.core.mqtt import AmqttBroker, BrokerEndpoint, Login, MosquittoBroker
from fanwatch.standin import EmbeddedAws

THING = "pi-lab-01"


def _client(endpoint: BrokerEndpoint, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if endpoint.ca_file is not None and endpoint.client is not None:
        client.tls_set(str(endpoint.ca_file), str(endpoint.client.cert_file), str(endpoint.client.key_file))
    if endpoint.login is not None:
        client.username_pw_set(endpoint.login.username, endpoint.login.password)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    return client


def _until_received(aws: EmbeddedAws, count: int, *, within: float) -> None:
    """Wait (at most ``within`` seconds) until the rules engine has received ``count`` messages."""
    assert aws.rules is not None
    deadline = time.monotonic() + within
    while aws.rules.stats.received < count and time.monotonic() < deadline:
        time.sleep(0.05)


def _records(aws: EmbeddedAws) -> list[dict[str, object]]:
    assert aws.names is not None
    kinesis = aws.client("kinesis")
    out = []
    for shard in kinesis.list_shards(StreamName=aws.names.telemetry_stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=aws.names.telemetry_stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out += kinesis.get_records(ShardIterator=iterator)["Records"]
    return out


@pytest.mark.mosquitto
def test_basic_ingest_through_mosquitto_reaches_the_named_rule_with_the_prefix_stripped(
    start_aws: Callable[..., EmbeddedAws], tmp_path: Path, events_dir: Path
) -> None:
    if MosquittoBroker.find_binary() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto; CI installs it)")
    acl = ("fanwatch/%u/#", "$aws/rules/+/fanwatch/%u/#")  # a device may Basic-Ingest its own topics
    with MosquittoBroker(
        tmp_path / "mosquitto", acl=acl, observer_topics=("fanwatch/#", "$aws/rules/#")
    ) as broker:
        aws = start_aws(broker=broker.observer_endpoint())
        assert aws.rules is not None and aws.rules.refused_subscriptions == []
        device = _client(broker.endpoint_for(THING), THING)
        payload = (events_dir / "mqtt" / "telemetry.json").read_bytes()
        device.publish(
            f"$aws/rules/fanwatch_telemetry/fanwatch/{THING}/telemetry", payload, qos=1
        ).wait_for_publish(10)
        device.publish(
            f"$aws/rules/fanwatch_alerts/fanwatch/{THING}/telemetry", payload, qos=1
        ).wait_for_publish(10)
        _until_received(aws, 2, within=20)
        device.disconnect()
        device.loop_stop()
    assert dict(aws.rules.stats.fired) == {"fanwatch_telemetry": 1, "fanwatch_alerts": 1}  # no FROM check
    telemetry = _records(aws)
    assert [(r["PartitionKey"], json.loads(r["Data"])["seq"]) for r in telemetry] == [(THING, 0)]


def test_amqtt_drops_basic_ingest_publishes_and_silently_loses_that_connections_later_messages(
    start_aws: Callable[..., EmbeddedAws], tmp_path: Path, events_dir: Path
) -> None:
    """amqtt 0.12 acknowledges a publish to ``$aws/rules/...`` and drops it ([MQTT-4.7.2-1] in its log);
    worse, the same connection's later publishes are acknowledged and never delivered. So with amqtt,
    devices must not use Basic Ingest; the engine's ``ingest`` is the way to exercise those rules."""
    payload = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    with AmqttBroker(tmp_path / "amqtt") as broker:
        aws = start_aws(broker=broker.observer_endpoint())
        assert aws.rules is not None
        device = _client(broker.endpoint_for(THING), THING)
        ingest = device.publish(f"$aws/rules/fanwatch_telemetry/fanwatch/{THING}/telemetry", payload, qos=1)
        ingest.wait_for_publish(10)
        later = device.publish(f"fanwatch/{THING}/telemetry", payload, qos=1)
        later.wait_for_publish(10)
        other = _client(broker.endpoint_for("pi-lab-02"), "pi-lab-02")
        other.publish("fanwatch/pi-lab-02/telemetry", payload, qos=1).wait_for_publish(10)
        _until_received(aws, 1, within=10)
        time.sleep(1.0)
        for client in (device, other):
            client.disconnect()
            client.loop_stop()
        assert "cannot use a topic with a leading $" in broker.log_file.read_text()
    assert ingest.is_published() and later.is_published()  # both acknowledged...
    assert aws.rules.stats.received == 1  # ...but only the other connection's message arrived
    assert [r["PartitionKey"] for r in _records(aws)] == ["pi-lab-02"]
    aws.rules.ingest(f"$aws/rules/fanwatch_telemetry/fanwatch/{THING}/telemetry", payload)
    assert sorted(r["PartitionKey"] for r in _records(aws)) == ["pi-lab-01", "pi-lab-02"]


def test_a_rule_the_engine_cannot_run_is_refused_when_the_stand_in_starts(
    start_aws: Callable[..., EmbeddedAws],
) -> None:
    from fanwatch.standin.template import TEMPLATE, load_template

    template = load_template(TEMPLATE)
    rule = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IoT::TopicRule")
    rule["Properties"]["TopicRulePayload"]["Sql"] = "SELECT get_thing_shadow('x') FROM 'fanwatch/+/telemetry'"
    with pytest.raises(ValueError, match=r"get_thing_shadow\(\) is not supported"):
        start_aws(template=template)


def test_the_rules_engine_logs_in_to_an_embedded_broker_that_has_a_login(
    start_aws: Callable[..., EmbeddedAws], tmp_path: Path, events_dir: Path
) -> None:
    """Issue 14: for a shared machine the embedded broker refuses anonymous clients; the engine, as
    IoT Core's rules, must still read what devices publish (and say plainly when it is refused)."""
    login = Login("fanwatch", "correct horse battery staple")
    with AmqttBroker(tmp_path / "amqtt", login=login) as broker:
        anonymous = dataclasses.replace(broker.observer_endpoint(), login=None)
        with pytest.raises(ConnectionError, match="refused the connection"):
            start_aws(broker=anonymous)
        aws = start_aws(broker=broker.observer_endpoint())
        assert aws.rules is not None and aws.rules.refused_subscriptions == []
        device = _client(broker.endpoint_for(THING), THING)
        device.publish(
            f"fanwatch/{THING}/telemetry", (events_dir / "mqtt" / "telemetry.json").read_bytes(), qos=1
        ).wait_for_publish(10)
        _until_received(aws, 1, within=10)
        device.disconnect()
        device.loop_stop()
    assert [json.loads(r["Data"])["seq"] for r in _records(aws)] == [0]
