"""GreengrassBus turns the bus calls into IPC client V2 requests with the real awsiotsdk models.

The local core (which speaks the IPC protocol to the real client) is the place for end-to-end tests;
here a recording stand-in of the client checks the requests and feeds the callbacks real event models.
"""

from __future__ import annotations

from typing import Any

from awsiot.greengrasscoreipc import model

from fanwatch.edge.ipc import GreengrassBus


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.handlers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name.startswith("subscribe"):
                self.handlers[name] = kwargs["on_stream_event"]
                return object(), self
            if name == "get_configuration":
                return model.GetConfigurationResponse(component_name="c", value={"batchSize": 5})
            return None

        return call


def test_requests_use_the_ipc_models_qos1_and_the_whole_configuration() -> None:
    client = RecordingClient()
    bus = GreengrassBus(client)
    bus.publish_local("fanwatch/raw/fan0", b"{}")
    bus.publish_iot("fanwatch/pi/telemetry", b"[1]")
    bus.report_state("RUNNING")
    assert bus.get_configuration() == {"batchSize": 5}
    (n1, local), (n2, iot), (n3, state), (n4, get) = client.calls
    assert n1 == "publish_to_topic" and local["publish_message"].binary_message.message == b"{}"
    assert (n2, iot) == (
        "publish_to_iot_core",
        {"topic_name": "fanwatch/pi/telemetry", "qos": "1", "payload": b"[1]"},
    )
    assert (n3, state, n4, get) == (
        "update_state",
        {"state": "RUNNING"},
        "get_configuration",
        {"key_path": []},
    )


def test_subscription_events_reach_the_handler_with_their_topic() -> None:
    client = RecordingClient()
    bus = GreengrassBus(client)
    got: list[tuple[str, bytes]] = []
    bus.subscribe_local("fanwatch/raw/+", lambda topic, payload: got.append((topic, payload)))
    updates: list[int] = []
    bus.on_configuration_update(lambda: updates.append(1))
    on_message = client.handlers["subscribe_to_topic"]
    on_message(
        model.SubscriptionResponseMessage(
            binary_message=model.BinaryMessage(
                message=b"raw", context=model.MessageContext(topic="fanwatch/raw/fan3")
            )
        )
    )
    on_message(
        model.SubscriptionResponseMessage(
            json_message=model.JsonMessage(
                message={"a": 1}, context=model.MessageContext(topic="fanwatch/raw/fan4")
            )
        )
    )
    client.handlers["subscribe_to_configuration_update"](
        model.ConfigurationUpdateEvents(
            configuration_update_event=model.ConfigurationUpdateEvent(
                component_name="c", key_path=["batchSize"]
            )
        )
    )
    assert got == [("fanwatch/raw/fan3", b"raw"), ("fanwatch/raw/fan4", b'{"a":1}')]
    assert updates == [1]
    assert (client.calls[0][0], client.calls[0][1]["topic"]) == ("subscribe_to_topic", "fanwatch/raw/+")
