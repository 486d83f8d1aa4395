"""The IPC server with the real IoT link and the embedded broker: what a component publishes over IPC
arrives on the broker, and what the broker delivers reaches the component's subscription."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc import model

amqtt_broker = pytest.importorskip(
    "fanwatch.core.mqtt.amqtt_broker", reason="the MQTT engineer's embedded broker has not landed yet"
)
link_module = pytest.importorskip(
    "fanwatch.core.mqtt.link", reason="the MQTT engineer's link has not landed yet"
)
paho = pytest.importorskip("paho.mqtt.client")

THING = "fan-001"
COMPONENT = "fanwatch.EdgeFilter"
WAIT = 10.0
POLICY = {
    "aws.greengrass.ipc.mqttproxy": {
        "filter:1": {
            "policyDescription": "telemetry out, commands in",
            "operations": ["aws.greengrass#PublishToIoTCore", "aws.greengrass#SubscribeToIoTCore"],
            "resources": ["fanwatch/{iot:thingName}/#"],
        }
    }
}


class Observer:
    """A plain MQTT client on the broker, standing where the cloud would."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="observer")
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()

    def watch(self, topic_filter: str) -> None:
        self.client.subscribe(topic_filter, qos=1)
        assert self.subscribed.wait(WAIT)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(short_dir: Path) -> Iterator[Any]:
    with amqtt_broker.AmqttBroker(short_dir / "broker") as running:
        yield running


@pytest.fixture
def observer(broker: Any) -> Iterator[Observer]:
    endpoint = broker.observer_endpoint()
    watcher = Observer(endpoint.host, endpoint.port)
    yield watcher
    watcher.close()


@pytest.fixture
def linked_core(core: Any, broker: Any, loop_thread: Any) -> Iterator[Any]:
    link = link_module.MqttIoTCoreLink(THING, broker.endpoint_for(THING))
    loop_thread.run(link.start())
    loop_thread.run(link.wait_online())
    core.nucleus.iot = link
    # {iot:thingName} in accessControl needs the nucleus' interpolation switch, as on a device
    core.nucleus.config.set_tree("aws.greengrass.Nucleus", {"interpolateComponentConfiguration": True})
    yield core
    loop_thread.run(link.close())


def test_a_component_publish_arrives_on_the_broker(linked_core: Any, observer: Observer) -> None:
    observer.watch(f"fanwatch/{THING}/#")
    client = linked_core.client(linked_core.nucleus.add(COMPONENT, {"accessControl": POLICY}))
    for n in range(3):
        client.publish_to_iot_core(
            topic_name=f"fanwatch/{THING}/telemetry", qos=model.QOS.AT_LEAST_ONCE, payload=b'{"n": %d}' % n
        )
    received = [observer.messages.get(timeout=WAIT) for _ in range(3)]
    assert received == [(f"fanwatch/{THING}/telemetry", b'{"n": %d}' % n) for n in range(3)]
    with pytest.raises(model.UnauthorizedError):
        client.publish_to_iot_core(topic_name="fanwatch/fan-002/telemetry", qos="1", payload=b"x")


def test_a_broker_message_reaches_the_component_subscription(linked_core: Any, observer: Observer) -> None:
    client = linked_core.client(linked_core.nucleus.add(COMPONENT, {"accessControl": POLICY}))
    events: queue.Queue[model.IoTCoreMessage] = queue.Queue()
    _, operation = client.subscribe_to_iot_core(
        topic_name=f"fanwatch/{THING}/commands/#", qos=model.QOS.AT_LEAST_ONCE, on_stream_event=events.put
    )
    observer.client.publish(f"fanwatch/{THING}/commands/fan0", b'{"pwm": 40}', qos=1).wait_for_publish(WAIT)
    message = events.get(timeout=WAIT).message
    assert (message.topic_name, message.payload) == (f"fanwatch/{THING}/commands/fan0", b'{"pwm": 40}')
    operation.close().result(WAIT)
