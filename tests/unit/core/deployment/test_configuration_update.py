"""RESET then defaults then MERGE, from the running configuration, as the nucleus resolves it."""

from __future__ import annotations

import pytest

from fanwatch.core.deployment.configuration_update import (
    ConfigurationUpdate,
    parse_pointer,
    pointer_for,
    resolve_configuration,
    stale_keys,
)

V1_DEFAULTS = {"interval": 5, "legacyTopic": "fans/old", "filter": {"window": 3, "spike": 2.0}, "tags": ["a"]}
V2_DEFAULTS = {"interval": 5, "filter": {"window": 3}, "tags": ["a"], "newKey": True}


def test_first_deployment_takes_the_defaults() -> None:
    assert resolve_configuration(None, V1_DEFAULTS, None) == V1_DEFAULTS


def test_running_values_survive_a_version_change_and_go_stale() -> None:
    running = resolve_configuration(None, V1_DEFAULTS, ConfigurationUpdate(merge={"interval": 10}))
    upgraded = resolve_configuration(running, V2_DEFAULTS, None)
    assert upgraded == {
        "interval": 10,  # the deployment's value, not the default
        "legacyTopic": "fans/old",  # stale: v2 no longer has it
        "filter": {"window": 3, "spike": 2.0},
        "tags": ["a"],
        "newKey": True,
    }
    assert stale_keys(upgraded, V2_DEFAULTS) == [("/legacyTopic", "fans/old"), ("/filter/spike", 2.0)]


def test_reset_removes_stale_keys_and_restores_defaults() -> None:
    running = {"interval": 10, "legacyTopic": "fans/old", "filter": {"window": 9, "spike": 2.0}}
    update = ConfigurationUpdate(reset=("/legacyTopic", "/filter/spike", "/interval"))
    assert resolve_configuration(running, V2_DEFAULTS, update) == {
        "interval": 5,
        "filter": {"window": 9},
        "tags": ["a"],
        "newKey": True,
    }
    everything = resolve_configuration(running, V2_DEFAULTS, ConfigurationUpdate(reset=("",)))
    assert everything == V2_DEFAULTS
    assert stale_keys(everything, V2_DEFAULTS) == []


def test_reset_happens_before_merge_and_merge_replaces_lists() -> None:
    running = {"tags": ["a", "b"], "filter": {"window": 9}}
    update = ConfigurationUpdate(merge={"filter": {"window": 4}, "tags": ["z"]}, reset=("/filter",))
    assert resolve_configuration(running, V2_DEFAULTS, update)["filter"] == {"window": 4}
    assert resolve_configuration(running, V2_DEFAULTS, update)["tags"] == ["z"]


def test_keys_match_case_insensitively() -> None:
    running = {"Interval": 7}
    update = ConfigurationUpdate(merge={"INTERVAL": 8}, reset=())
    assert resolve_configuration(running, {"interval": 5}, update) == {"Interval": 8}
    assert resolve_configuration(running, {"interval": 5}, ConfigurationUpdate(reset=("/interval",))) == {
        "interval": 5
    }


def test_merge_turns_a_value_into_an_object() -> None:
    assert resolve_configuration({"a": 1}, {}, ConfigurationUpdate(merge={"a": {"b": 2}})) == {"a": {"b": 2}}


def test_parse_accepts_api_and_document_shapes() -> None:
    as_api = ConfigurationUpdate.parse({"merge": '{"interval": 3}', "reset": ["/x"]})
    as_doc = ConfigurationUpdate.parse({"MERGE": {"interval": 3}, "RESET": ["/x"]})
    assert as_api == as_doc
    assert as_api.to_dict() == {"merge": {"interval": 3}, "reset": ["/x"]}
    assert ConfigurationUpdate.parse(None) == ConfigurationUpdate()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"merge": "{not json"}, "merge: not valid JSON"),
        ({"merge": [1, 2]}, "expected a JSON object"),
        ({"reset": "/x"}, "expected a list of JSON pointers"),
        ({"reset": ["x"]}, "must be empty or start with '/'"),
        ({"reset": ["/a~2"]}, "'~' must be followed by 0 or 1"),
        ({"reset": ["/tags/0"]}, "points into a list"),
        ({"replace": {}}, "unknown field"),
        ("merge", "expected an object"),
    ],
)
def test_bad_updates_are_refused(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConfigurationUpdate.parse(data)


def test_pointer_round_trip() -> None:
    path = ["a/b", "c~d", ""]
    assert parse_pointer(pointer_for(path)) == path
    assert parse_pointer("") == []


def test_a_dropped_access_policy_survives_the_upgrade_and_is_flagged() -> None:
    policy = {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": ["*"]}
    v1 = {"accessControl": {"aws.greengrass.ipc.mqttproxy": {"app:mqttproxy:1": policy}}}
    v2 = {"accessControl": {"aws.greengrass.ipc.pubsub": {"app:pubsub:1": policy}}}
    upgraded = resolve_configuration(resolve_configuration(None, v1, None), v2, None)
    assert upgraded["accessControl"]["aws.greengrass.ipc.mqttproxy"] == {
        "app:mqttproxy:1": policy
    }  # still grants
    assert stale_keys(upgraded, v2) == [
        ("/accessControl/aws.greengrass.ipc.mqttproxy", {"app:mqttproxy:1": policy})
    ]
