"""Authorization: the nucleus' wildcard matching and its policy-loading rules."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fanwatch.core.config import ConfigStore
from fanwatch.core.ipc.authz import (
    Authorizer,
    NotAuthorizedError,
    ResourcePattern,
)
from fanwatch.limits import MQTT_PROXY_SERVICE, PUBSUB_SERVICE

PUBLISH_IOT = "aws.greengrass#PublishToIoTCore"
SUBSCRIBE_IOT = "aws.greengrass#SubscribeToIoTCore"
PUBLISH_LOCAL = "aws.greengrass#PublishToTopic"

# (patterns, mqtt, matching resources, non-matching resources): how the nucleus' WildcardTrie decides.
MATCHING_FACTS: list[tuple[list[str], bool, list[str], list[str]]] = [
    (["nowildcard"], False, ["nowildcard"], ["topic", "nowildcard/x", ""]),
    (
        ["abc*xy*z"],
        False,
        ["abcxyz", "abcxy/ 7895z", "abc123xy90zABCxyABCz", "abc123x123xyz"],
        ["ab789xyz123", "abc789xy56z123", "abc123yx90z", ""],
    ),
    (["*qwe*90*"], True, ["qwe90", "789qwe-+9qwe-+90ABC"], ["789qwe-+9A", "ABC89078"]),
    (["ab/*/c"], True, ["ab/12/c", "ab/1/3/2/c"], ["ab/1/34/2/c/"]),
    (["*"], True, ["123werX", "9999/88", "a/b/c"], []),
    (["**/abc"], False, ["78/abc", "7/8/abc"], []),
    (["abc/#"], True, ["abc/1/2/3", "abc", "abc/", "abc/4/5/6"], ["abcd/e/f123/4/5/6"]),
    (["abc/#"], False, ["abc/#"], ["abc/1/2/3", "abc", "abc/"]),
    (["123/#/xyz/#"], True, ["123/#/xyz", "123/#/xyz/1/2/345"], ["123/4/5/6/xyz/abc"]),
    (["#/zzz/45"], True, ["#/zzz/45"], ["x/zzz/45"]),
    (["#"], True, ["asdu76/asdas/23", "**90io"], []),
    (["#"], False, ["#"], ["asdu76/asdas/23"]),
    (["/#"], True, ["", "/a/b/c/d/e"], ["a/b/c/d", "asd"]),
    (["w/qqq#", "12/#/", "##"], True, ["w/qqq#", "12/#/", "##"], ["w/qqq/e/r", "12/4/5/6", "abcd"]),
    (["abc/+/123"], True, ["abc/def/123"], ["abc/def/g/123"]),
    (["abc/+/123"], False, ["abc/+/123"], ["abc/def/123"]),
    (["+/56"], True, ["123/56"], ["89/1/56"]),
    (["xyz/+/abcd/+/1"], True, ["xyz/ghj/abcd//1"], []),
    (["89/+/+/+/90"], True, ["89/1/2/3/90", "89/1/2//90"], ["89/1/2/90", "89/1/2/3/4/90"]),
    (["+"], True, ["abc"], ["/123"]),
    (["+", "+/+"], True, ["/123"], ["/123/"]),
    (
        ["ax/qwe+/123", "12/+23", "/+/++"],
        True,
        ["ax/qwe+/123", "/zz/++"],
        ["ax/qwert/123", "12/x23", "/33/ty"],
    ),
    (
        ["xyz*/+/*room/#"],
        True,
        ["xyzzzz/89/bedroom/light/5", "xyzzzz/89/fan2/bedroom/light/5"],
        [],
    ),
    (["12/*#"], True, ["12/345#", "12/34/5#"], ["12/45/67"]),
    (["x*ui/+/#"], True, ["xyzzzzui/89/fan2/bedroom/light/5", "xyz/zz34ui/matchPlus/23"], ["xyzzz34"]),
    (["a/+/+/#/+"], True, ["a/b/c/#/d"], ["a/b/c/d/e"]),
    (["2131/#/#/+/ui/#"], True, ["2131/#/#/z/ui/1/56"], ["2131/x/y/z/ui/1"]),
    (["a/*bc/#"], True, ["a/xyzbc", "a/xyzbc/", "a/xyzbc/1/2", "a/xyzbcnt/bc"], []),
    (["a/+/#"], True, ["a/xyz", "a/xyz/", "a/xyz/nt", "a/"], ["a"]),
    (
        ["acv/rt${*}mk", "${$}/begin", "end/${?}"],
        True,
        ["acv/rt*mk", "$/begin", "end/?"],
        ["acv/rt${*}mk", "acv/rt123mk", "${$}/begin", "end/${?}"],
    ),
    (["${*}"], False, ["*"], ["*ab", "12/3"]),
    (["abc${", "123$", "456$*"], False, ["abc${", "123$", "456$123/abc"], ["abc", "456*"]),
]


@pytest.mark.parametrize(("patterns", "mqtt", "matching", "refused"), MATCHING_FACTS)
def test_resource_patterns_match_as_the_nucleus_does(
    patterns: list[str], mqtt: bool, matching: list[str], refused: list[str]
) -> None:
    pattern = ResourcePattern(patterns)
    for resource in matching:
        assert pattern.matches(resource, mqtt=mqtt), f"{patterns} should match {resource!r}"
    for resource in refused:
        assert not pattern.matches(resource, mqtt=mqtt), f"{patterns} should not match {resource!r}"


def test_a_subscription_filter_is_matched_as_a_literal_topic() -> None:
    # The nucleus checks the requested filter itself against the patterns: a "+" policy covers "#".
    assert ResourcePattern(["fans/+"]).matches("fans/#", mqtt=True)
    assert ResourcePattern(["fans/#"]).matches("fans/+/rpm", mqtt=True)
    assert not ResourcePattern(["fans/fan-001/rpm"]).matches("fans/+/rpm", mqtt=True)


THING = "fan-001"


def policy(operations: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"policyDescription": "test", "operations": operations, "resources": resources, **extra}


def make(access_control: Any, *, interpolate: bool | None = None) -> tuple[ConfigStore, Authorizer]:
    store = ConfigStore()
    store.set_tree("fan.Tach", {"accessControl": access_control})
    store.set_tree("fan.Other", {})
    if interpolate is not None:
        store.set_tree("aws.greengrass.Nucleus", {"interpolateComponentConfiguration": interpolate})
    return store, Authorizer(store, thing_name=THING)


def test_allows_listed_operation_and_resource_and_logs_each_denial(caplog: pytest.LogCaptureFixture) -> None:
    _, authz = make({MQTT_PROXY_SERVICE: {"p1": policy([PUBLISH_IOT], ["fans/+/telemetry"])}})
    authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "fans/fan-001/telemetry", mqtt=True)
    with caplog.at_level(logging.WARNING), pytest.raises(NotAuthorizedError) as denied:
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, SUBSCRIBE_IOT, "fans/fan-001/telemetry", mqtt=True)
    expected = (
        "Principal fan.Tach is not authorized to perform "
        "aws.greengrass.ipc.mqttproxy:aws.greengrass#SubscribeToIoTCore on resource fans/fan-001/telemetry"
    )
    assert str(denied.value) == expected
    assert expected in caplog.text


def test_star_operation_and_star_resource() -> None:
    _, authz = make({PUBSUB_SERVICE: {"all": policy(["*"], ["*"])}})
    authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, "any/topic/at/all")
    authz.check("fan.Tach", PUBSUB_SERVICE, "aws.greengrass#SubscribeToTopic", "x")


def test_mqtt_wildcards_are_literal_for_local_pubsub() -> None:
    _, authz = make({PUBSUB_SERVICE: {"p": policy([PUBLISH_LOCAL], ["fans/+/rpm", "alerts/#"])}})
    authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, "fans/+/rpm")
    for topic in ("fans/fan-001/rpm", "alerts/x", "alerts"):
        with pytest.raises(NotAuthorizedError):
            authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, topic)


def test_a_policy_grants_only_the_component_that_declares_it() -> None:
    _, authz = make({MQTT_PROXY_SERVICE: {"p": policy(["*"], ["*"])}})
    with pytest.raises(NotAuthorizedError, match=r"Principal fan\.Other"):
        authz.check("fan.Other", MQTT_PROXY_SERVICE, PUBLISH_IOT, "t", mqtt=True)
    with pytest.raises(NotAuthorizedError):
        authz.check("unknown.Component", MQTT_PROXY_SERVICE, PUBLISH_IOT, "t", mqtt=True)


def test_an_operation_of_another_service_is_never_granted() -> None:
    _, authz = make({MQTT_PROXY_SERVICE: {"p": policy([PUBLISH_LOCAL], ["*"])}})
    with pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_LOCAL, "t", mqtt=True)


def test_one_unknown_field_drops_every_policy_of_the_component(caplog: pytest.LogCaptureFixture) -> None:
    access = {
        MQTT_PROXY_SERVICE: {
            "good": policy([PUBLISH_IOT], ["*"]),
            "typo": {"operations": [PUBLISH_IOT], "resource": ["x"]},
        }
    }
    _, authz = make(access)
    with caplog.at_level(logging.ERROR), pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "t", mqtt=True)
    assert "unrecognized field 'resource'" in caplog.text
    assert "whole accessControl is ignored" in caplog.text


@pytest.mark.parametrize(
    "broken",
    [
        {MQTT_PROXY_SERVICE: {"p": policy(PUBLISH_IOT, ["*"])}},  # type: ignore[arg-type]
        {MQTT_PROXY_SERVICE: {"p": policy([PUBLISH_IOT], "*")}},  # type: ignore[arg-type]
        {MQTT_PROXY_SERVICE: ["not", "a", "map"]},
        {MQTT_PROXY_SERVICE: {"p": "not a policy"}},
        "{not json",
        ["a", "list"],
    ],
)
def test_malformed_access_control_grants_nothing(broken: Any) -> None:
    _, authz = make(broken)
    with pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "t", mqtt=True)


def test_field_names_are_case_insensitive_but_policy_types_are_not(caplog: pytest.LogCaptureFixture) -> None:
    _, authz = make(
        {
            MQTT_PROXY_SERVICE: {"p": {"Operations": [PUBLISH_IOT], "RESOURCES": ["a"]}},
            "aws.greengrass.ipc.PubSub": {"p": policy(["*"], ["*"])},
        }
    )
    authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "a", mqtt=True)
    with caplog.at_level(logging.ERROR), pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, "a")
    assert "'aws.greengrass.ipc.PubSub', which is no IPC service" in caplog.text


def test_misspelt_operations_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    _, authz = make({MQTT_PROXY_SERVICE: {"p": policy(["aws.greengrass#PublishToIotCore"], ["*"])}})
    with caplog.at_level(logging.ERROR), pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "a", mqtt=True)
    assert "aws.greengrass#PublishToIotCore, which aws.greengrass.ipc.mqttproxy does not have" in caplog.text


def test_policy_without_operations_is_skipped_and_bad_resources_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access = {
        MQTT_PROXY_SERVICE: {
            "empty": policy([], ["*"]),
            "p": policy([PUBLISH_IOT], ["what?", "bad${x}", "", "ok/topic", "lit${?}"]),
        }
    }
    _, authz = make(access)
    with caplog.at_level(logging.ERROR):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "ok/topic", mqtt=True)
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "lit?", mqtt=True)
        for resource in ("what?", "bad${x}", "other"):
            with pytest.raises(NotAuthorizedError):
                authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, resource, mqtt=True)
    assert "operations are missing or empty" in caplog.text
    assert "'?' in 'what?' is not a wildcard" in caplog.text
    assert "invalid escape sequence in 'bad${x}'" in caplog.text


def test_thing_name_is_replaced_only_when_the_nucleus_interpolates(caplog: pytest.LogCaptureFixture) -> None:
    access = {MQTT_PROXY_SERVICE: {"p": policy([PUBLISH_IOT], ["fans/{iot:thingName}/telemetry"])}}
    _, literal = make(access)
    with caplog.at_level(logging.WARNING), pytest.raises(NotAuthorizedError):
        literal.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "fans/fan-001/telemetry", mqtt=True)
    assert "interpolateComponentConfiguration: true" in caplog.text
    literal.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "fans/{iot:thingName}/telemetry", mqtt=True)

    _, interpolating = make(access, interpolate=True)
    interpolating.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "fans/fan-001/telemetry", mqtt=True)
    with pytest.raises(NotAuthorizedError):
        interpolating.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "fans/fan-002/telemetry", mqtt=True)


def test_policies_follow_configuration_changes() -> None:
    store, authz = make({MQTT_PROXY_SERVICE: {"p": policy([PUBLISH_IOT], ["a"])}})
    authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "a", mqtt=True)
    store.set_tree("fan.Tach", {"accessControl": {MQTT_PROXY_SERVICE: {"p": policy([PUBLISH_IOT], ["b"])}}})
    authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "b", mqtt=True)
    with pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "a", mqtt=True)


def test_json_string_access_control_and_hidden_keys() -> None:
    as_json = '{"aws.greengrass.ipc.mqttproxy": {"p": {"operations": ["*"], "resources": ["x"]}}}'
    _, authz = make(as_json)
    authz.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "x", mqtt=True)
    _, hidden = make({MQTT_PROXY_SERVICE: {"_draft": policy(["*"], ["*"])}})
    with pytest.raises(NotAuthorizedError):
        hidden.check("fan.Tach", MQTT_PROXY_SERVICE, PUBLISH_IOT, "x", mqtt=True)


def test_a_call_without_a_resource_needs_only_the_operation() -> None:
    _, authz = make({PUBSUB_SERVICE: {"p": policy([PUBLISH_LOCAL], [])}})
    authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, None)
    with pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", PUBSUB_SERVICE, PUBLISH_LOCAL, "t")
    with pytest.raises(NotAuthorizedError):
        authz.check("fan.Tach", PUBSUB_SERVICE, "aws.greengrass#SubscribeToTopic", None)
