"""Every served operation, driven by the real GreengrassCoreIPCClientV2 against the real server."""

from __future__ import annotations

import datetime
import json
import logging
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from awsiot.eventstreamrpc import AccessDeniedError
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from fanwatch.core.ipc.local_pubsub import LocalMessage
from fanwatch.core.ports import ComponentState, SpoolFullError

THING = "fan-001"
TACH = "fanwatch.Tachometer"
FILTER = "fanwatch.EdgeFilter"
MQTT = "aws.greengrass.ipc.mqttproxy"
PUBSUB = "aws.greengrass.ipc.pubsub"
CLI = "aws.greengrass.Cli"
WAIT = 5.0


def policy(operations: list[str], resources: list[str]) -> dict[str, Any]:
    return {"policyDescription": "test", "operations": operations, "resources": resources}


TACH_CONFIG: dict[str, Any] = {
    "pulsesPerRev": 2,
    "fans": {"fan0": {"pin": 17}},
    "_internal": "hidden from GetConfiguration",
    "accessControl": {
        PUBSUB: {"tach:1": policy(["aws.greengrass#PublishToTopic"], ["fanwatch/raw/*"])},
    },
}
FILTER_CONFIG: dict[str, Any] = {
    "deadbandRpm": 30,
    "accessControl": {
        PUBSUB: {"filter:1": policy(["aws.greengrass#SubscribeToTopic"], ["fanwatch/raw/+"])},
        MQTT: {
            "filter:2": policy(
                ["aws.greengrass#PublishToIoTCore", "aws.greengrass#SubscribeToIoTCore"],
                ["fanwatch/fan-001/+", "fanwatch/commands/#"],
            )
        },
        CLI: {
            "filter:3": policy(["aws.greengrass#ListComponents", "aws.greengrass#GetComponentDetails"], ["*"])
        },
    },
}


@pytest.fixture
def tach(core: Any) -> GreengrassCoreIPCClientV2:
    return core.client(core.nucleus.add(TACH, TACH_CONFIG))


@pytest.fixture
def edge_filter(core: Any) -> GreengrassCoreIPCClientV2:
    return core.client(core.nucleus.add(FILTER, FILTER_CONFIG))


def next_event(events: queue.Queue[Any]) -> Any:
    return events.get(timeout=WAIT)


def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- connecting ----------------------------------------------------------------------------------


def test_client_connects_from_the_environment_a_component_gets(
    core: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = core.nucleus.add(TACH, TACH_CONFIG)
    monkeypatch.setenv("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", str(core.socket_path))
    monkeypatch.setenv("SVCUID", token)
    client = GreengrassCoreIPCClientV2()
    core.clients.append(client)
    assert client.get_configuration(key_path=["pulsesPerRev"]).value == {"pulsesPerRev": 2}


def test_a_token_nobody_holds_is_refused_and_the_server_keeps_serving(
    core: Any, tach: GreengrassCoreIPCClientV2, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(AccessDeniedError):
        core.client("not-a-token")
    assert "refused a connection: its authToken (SVCUID) belongs to no component" in caplog.text
    assert "not-a-token" not in caplog.text, "tokens never reach the log"
    assert tach.get_configuration(key_path=["pulsesPerRev"]).value == {"pulsesPerRev": 2}


def test_each_component_is_identified_by_its_own_token(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    assert tach.get_configuration().component_name == TACH
    assert edge_filter.get_configuration().component_name == FILTER


# -- PublishToIoTCore / SubscribeToIoTCore --------------------------------------------------------


def test_publish_to_iot_core_hands_the_message_to_the_link(
    core: Any, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    edge_filter.publish_to_iot_core(
        topic_name="fanwatch/fan-001/telemetry", qos=model.QOS.AT_LEAST_ONCE, payload=b'{"rpm": 1200}'
    )
    edge_filter.publish_to_iot_core(
        topic_name="fanwatch/fan-001/status", qos=model.QOS.AT_MOST_ONCE, payload=b"up", retain=True
    )
    assert core.nucleus.iot.published == [
        ("fanwatch/fan-001/telemetry", b'{"rpm": 1200}', 1, False),
        ("fanwatch/fan-001/status", b"up", 0, True),
    ]


def test_a_denied_publish_gets_unauthorized_and_a_log_line(
    core: Any, edge_filter: GreengrassCoreIPCClientV2, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(model.UnauthorizedError) as denied:
        edge_filter.publish_to_iot_core(topic_name="fanwatch/fan-002/telemetry", qos="1", payload=b"x")
    assert denied.value.message == "Not Authorized"
    assert (
        "Principal fanwatch.EdgeFilter is not authorized to perform "
        "aws.greengrass.ipc.mqttproxy:aws.greengrass#PublishToIoTCore on resource fanwatch/fan-002/telemetry"
    ) in caplog.text
    assert core.nucleus.iot.published == []


def test_a_component_without_policies_is_denied(core: Any, tach: GreengrassCoreIPCClientV2) -> None:
    with pytest.raises(model.UnauthorizedError):
        tach.publish_to_iot_core(topic_name="fanwatch/fan-001/telemetry", qos="0", payload=b"x")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"qos": "1", "payload": b"x"}, model.InvalidArgumentsError, "Topic is required"),
        (
            {"topic_name": "fanwatch/fan-001/t", "qos": "1"},
            model.InvalidArgumentsError,
            "Payload is required",
        ),
        (
            {"topic_name": "fanwatch/fan-001/t", "payload": b"x"},
            model.InvalidArgumentsError,
            "QoS is required",
        ),
        (
            {"topic_name": "fanwatch/fan-001/t", "qos": "2", "payload": b"x"},
            model.InvalidArgumentsError,
            "Invalid QoS value: 2",
        ),
        (
            {"topic_name": "fanwatch/fan-001/t", "qos": "1", "payload": b"x" * (128 * 1024 + 1)},
            model.ServiceError,
            "exceeds the configured limit of 131072 bytes",
        ),
    ],
)
def test_publish_to_iot_core_validates_as_the_nucleus(
    core: Any,
    edge_filter: GreengrassCoreIPCClientV2,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as refused:
        edge_filter.publish_to_iot_core(**kwargs)
    assert message in refused.value.message  # type: ignore[attr-defined]
    assert core.nucleus.iot.published == []
    edge_filter.publish_to_iot_core(topic_name="fanwatch/fan-001/t", qos="1", payload=b"still connected")


def test_a_payload_of_exactly_128_kb_goes_through(core: Any, edge_filter: GreengrassCoreIPCClientV2) -> None:
    payload = bytes(range(256)) * 512
    edge_filter.publish_to_iot_core(topic_name="fanwatch/fan-001/big", qos="1", payload=payload)
    assert core.nucleus.iot.published[-1][1] == payload


def test_a_full_spool_is_a_service_error(core: Any, edge_filter: GreengrassCoreIPCClientV2) -> None:
    core.nucleus.iot.fail_with = SpoolFullError("spool is full")
    with pytest.raises(model.ServiceError) as failed:
        edge_filter.publish_to_iot_core(topic_name="fanwatch/fan-001/t", qos="1", payload=b"x")
    assert failed.value.message == "Publish to topic fanwatch/fan-001/t failed: spool is full"


def test_subscribe_to_iot_core_streams_messages_until_closed(
    core: Any, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    events: queue.Queue[model.IoTCoreMessage] = queue.Queue()
    _, operation = edge_filter.subscribe_to_iot_core(
        topic_name="fanwatch/commands/#", qos=model.QOS.AT_LEAST_ONCE, on_stream_event=events.put
    )
    [subscription] = core.nucleus.iot.subscriptions
    assert (subscription.topic_filter, subscription.qos) == ("fanwatch/commands/#", 1)
    assert core.nucleus.iot.deliver("fanwatch/commands/fan0/speed", b'{"pwm": 40}') == 1
    message = next_event(events).message
    assert (message.topic_name, message.payload) == ("fanwatch/commands/fan0/speed", b'{"pwm": 40}')
    operation.close().result(WAIT)
    assert subscription.closed.wait(WAIT), "closing the stream unsubscribes from the link"


def test_a_denied_subscription_never_reaches_the_link(
    core: Any, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    with pytest.raises(model.UnauthorizedError):
        edge_filter.subscribe_to_iot_core(topic_name="fanwatch/#", qos="0", on_stream_event=print)
    assert core.nucleus.iot.subscriptions == []


# -- PublishToTopic / SubscribeToTopic ------------------------------------------------------------


def test_local_messages_reach_an_authorized_subscriber(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    events: queue.Queue[model.SubscriptionResponseMessage] = queue.Queue()
    edge_filter.subscribe_to_topic(topic="fanwatch/raw/+", on_stream_event=events.put)
    tach.publish_to_topic(
        topic="fanwatch/raw/fan0",
        publish_message=model.PublishMessage(json_message=model.JsonMessage(message={"rpm": 1180.5})),
    )
    tach.publish_to_topic(
        topic="fanwatch/raw/fan1",
        publish_message=model.PublishMessage(binary_message=model.BinaryMessage(message=b"\x00\x01")),
    )
    first, second = next_event(events), next_event(events)
    assert first.json_message.message == {"rpm": 1180.5}
    assert first.json_message.context.topic == "fanwatch/raw/fan0"
    assert second.binary_message.message == b"\x00\x01"
    assert second.binary_message.context.topic == "fanwatch/raw/fan1"


def test_local_publish_and_subscribe_are_authorized_per_component(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(model.UnauthorizedError) as denied:
        edge_filter.publish_to_topic(
            topic="fanwatch/raw/fan0",
            publish_message=model.PublishMessage(json_message=model.JsonMessage(message={})),
        )
    assert denied.value.message == (
        "Principal fanwatch.EdgeFilter is not authorized to perform "
        "aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource fanwatch/raw/fan0"
    )
    assert denied.value.message in caplog.text
    with pytest.raises(model.UnauthorizedError):
        edge_filter.subscribe_to_topic(topic="fanwatch/raw/#", on_stream_event=print)


def test_local_publish_rules(tach: GreengrassCoreIPCClientV2) -> None:
    binary = model.PublishMessage(binary_message=model.BinaryMessage(message=b""))
    with pytest.raises(model.InvalidArgumentsError) as wildcard:
        tach.publish_to_topic(topic="fanwatch/raw/*", publish_message=binary)
    assert wildcard.value.message == "Publish topic must not contain a wildcard."
    with pytest.raises(model.InvalidArgumentsError) as empty:
        tach.publish_to_topic(topic="fanwatch/raw/fan0", publish_message=model.PublishMessage())
    assert empty.value.message == "publishMessage needs a jsonMessage or a binaryMessage"


def test_closing_a_local_subscription_stops_delivery(
    core: Any, tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    events: queue.Queue[Any] = queue.Queue()
    _, operation = edge_filter.subscribe_to_topic(topic="fanwatch/raw/+", on_stream_event=events.put)
    operation.close().result(WAIT)
    probe = LocalMessage("fanwatch/raw/fan0", json={"probe": True})
    assert eventually(lambda: core.loop.call(lambda: core.server.pubsub.publish(probe, "probe")) == 0)
    message = model.PublishMessage(json_message=model.JsonMessage(message={"rpm": 1}))
    tach.publish_to_topic(topic="fanwatch/raw/fan0", publish_message=message)
    assert events.empty()


# -- configuration --------------------------------------------------------------------------------


def test_get_configuration_whole_leaf_and_other_component(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    whole = tach.get_configuration()
    assert whole.component_name == TACH
    assert "_internal" not in whole.value
    assert whole.value["fans"] == {"fan0": {"pin": 17}}
    assert tach.get_configuration(key_path=["FANS", "fan0", "pin"]).value == {"pin": 17}
    other = tach.get_configuration(component_name=FILTER, key_path=["deadbandRpm"])
    assert (other.component_name, other.value) == (FILTER, {"deadbandRpm": 30})
    with pytest.raises(model.ResourceNotFoundError) as missing:
        tach.get_configuration(key_path=["nope"])
    assert missing.value.message == "Key not found"
    with pytest.raises(model.ResourceNotFoundError):
        tach.get_configuration(component_name="no.Such.Component")


def test_update_configuration_merges_into_the_callers_own_configuration(
    core: Any, tach: GreengrassCoreIPCClientV2
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    tach.update_configuration(key_path=["fans"], timestamp=now, value_to_merge={"fan1": {"pin": 27}})
    assert core.nucleus.config.get(TACH, ["fans"]) == {"fan0": {"pin": 17}, "fan1": {"pin": 27}}
    older = now - datetime.timedelta(seconds=10)
    with pytest.raises(model.FailedUpdateConditionCheckError) as stale:
        tach.update_configuration(key_path=["fans"], timestamp=older, value_to_merge={"fan1": {"pin": 5}})
    assert stale.value.message == "Proposed timestamp is older than the config's latest modified timestamp"
    assert core.nucleus.config.get(TACH, ["fans", "fan1", "pin"]) == 27


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value_to_merge": {"a": 1}}, "Timestamp is required"),
        ({"timestamp": datetime.datetime.now(datetime.UTC)}, "ValueToMerge is required"),
        (
            {
                "timestamp": datetime.datetime.now(datetime.UTC),
                "value_to_merge": {"accessControl": {}},
            },
            "Config update is not allowed for following fields [accessControl]",
        ),
        (
            {
                "key_path": ["AccessControl"],
                "timestamp": datetime.datetime.now(datetime.UTC),
                "value_to_merge": {"aws.greengrass.ipc.mqttproxy": {}},
            },
            "Config update is not allowed for following fields [accessControl]",
        ),
        (
            {
                "key_path": ["pulsesPerRev", "deeper"],
                "timestamp": datetime.datetime.now(datetime.UTC),
                "value_to_merge": {"x": 1},
            },
            "/pulsesPerRev is a value, not a container",
        ),
    ],
)
def test_update_configuration_refusals(
    core: Any, tach: GreengrassCoreIPCClientV2, kwargs: dict[str, Any], message: str
) -> None:
    before = core.nucleus.config.get(TACH)
    with pytest.raises(model.InvalidArgumentsError) as refused:
        tach.update_configuration(**kwargs)
    assert refused.value.message == message
    assert core.nucleus.config.get(TACH) == before


def test_a_deployment_reaches_a_subscribed_component_without_restart(
    core: Any, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    events: queue.Queue[model.ConfigurationUpdateEvents] = queue.Queue()
    edge_filter.subscribe_to_configuration_update(key_path=[], on_stream_event=events.put)
    # the runtime applies a deployment's resolved configuration from its own thread
    core.nucleus.config.set_tree(FILTER, {**FILTER_CONFIG, "deadbandRpm": 45})
    event = next_event(events).configuration_update_event
    assert (event.component_name, event.key_path) == (FILTER, ["deadbandRpm"])
    assert edge_filter.get_configuration(key_path=event.key_path).value == {"deadbandRpm": 45}


def test_watching_another_components_configuration(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    events: queue.Queue[model.ConfigurationUpdateEvents] = queue.Queue()
    edge_filter.subscribe_to_configuration_update(
        component_name=TACH, key_path=["fans"], on_stream_event=events.put
    )
    now = datetime.datetime.now(datetime.UTC)
    tach.update_configuration(key_path=[], timestamp=now, value_to_merge={"pulsesPerRev": 4})
    tach.update_configuration(key_path=["fans", "fan0"], timestamp=now, value_to_merge={"pin": 22})
    event = next_event(events).configuration_update_event
    assert (event.component_name, event.key_path) == (TACH, ["fans", "fan0", "pin"])
    assert events.empty(), "a change outside the watched path is not reported"
    with pytest.raises(model.ResourceNotFoundError):
        edge_filter.subscribe_to_configuration_update(key_path=["missing"], on_stream_event=print)


# -- UpdateState, ListComponents, GetComponentDetails ---------------------------------------------


def test_update_state_reports_to_the_nucleus(core: Any, tach: GreengrassCoreIPCClientV2) -> None:
    tach.update_state(state=model.ReportedLifecycleState.ERRORED)
    tach.update_state(state=model.ReportedLifecycleState.RUNNING)
    assert core.nucleus.reported == [(TACH, ComponentState.ERRORED), (TACH, ComponentState.RUNNING)]
    with pytest.raises(model.InvalidArgumentsError):
        tach.update_state(state="FINISHED")


def test_list_components_and_details_for_an_authorized_component(
    tach: GreengrassCoreIPCClientV2, edge_filter: GreengrassCoreIPCClientV2
) -> None:
    listed = {c.component_name: c for c in edge_filter.list_components().components}
    assert set(listed) == {TACH, FILTER}
    assert (listed[TACH].version, listed[TACH].state) == ("1.0.0", "RUNNING")
    assert listed[TACH].configuration["pulsesPerRev"] == 2
    assert "_internal" not in listed[TACH].configuration
    details = edge_filter.get_component_details(component_name=TACH).component_details
    assert (details.component_name, details.state) == (TACH, "RUNNING")
    with pytest.raises(model.ResourceNotFoundError) as missing:
        edge_filter.get_component_details(component_name="no.Such")
    assert missing.value.message == "Component with name no.Such not found in Greengrass"
    with pytest.raises(model.InvalidArgumentsError):
        edge_filter.get_component_details(component_name="")


def test_cli_operations_need_an_aws_greengrass_cli_policy(tach: GreengrassCoreIPCClientV2) -> None:
    with pytest.raises(model.UnauthorizedError) as denied:
        tach.list_components()
    assert "aws.greengrass.Cli:aws.greengrass#ListComponents on resource *" in denied.value.message
    with pytest.raises(model.UnauthorizedError):
        tach.get_component_details(component_name=TACH)


# -- everything else -----------------------------------------------------------------------------


def test_an_operation_the_core_does_not_serve_gets_the_nucleus_answer(
    tach: GreengrassCoreIPCClientV2,
) -> None:
    with pytest.raises(model.ServiceError) as unsupported:
        tach.get_thing_shadow(thing_name=THING)
    assert (
        unsupported.value.message == "Operation aws.greengrass#GetThingShadow is not supported by Greengrass"
    )
    assert tach.get_configuration(key_path=["pulsesPerRev"]).value == {"pulsesPerRev": 2}


def test_a_configuration_value_nested_600_deep_is_refused_and_nothing_of_it_is_stored(
    core: Any, tach: GreengrassCoreIPCClientV2
) -> None:
    """Issue 14: such a value was partly stored, then every read, save and deployment hit RecursionError."""
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(600):
        deep = {"a": deep}
    before = core.nucleus.config.get(TACH)
    now = datetime.datetime.now(datetime.UTC)
    with pytest.raises(model.InvalidArgumentsError) as refused:
        tach.update_configuration(key_path=["fans"], timestamp=now, value_to_merge={"deep": deep})
    assert "nested deeper than 32 levels" in (refused.value.message or "")
    assert core.nucleus.config.get(TACH) == before
    json.dumps(core.nucleus.config.get(TACH))  # what the core saves
