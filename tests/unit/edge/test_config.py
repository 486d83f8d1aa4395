"""Configuration validation: the recipes' defaults pass, and every refusal names the key."""

from __future__ import annotations

from typing import Any

import pytest

from fanwatch.demo.scenario import default_configuration
from fanwatch.edge.config import (
    ConfigError,
    FilterConfig,
    TachConfig,
    config_digest,
    parse_filter_config,
    parse_tach_config,
)
from fanwatch.limits import MAX_MESSAGE_BYTES


def test_the_recipe_defaults_are_valid_and_match_the_code_defaults() -> None:
    tach = parse_tach_config(default_configuration("fanwatch.Tachometer"))
    assert tach == TachConfig()  # what the recipe says is what the code assumes
    flt = parse_filter_config(default_configuration("fanwatch.EdgeFilter"))
    assert flt == FilterConfig()
    assert flt.max_message_bytes == MAX_MESSAGE_BYTES


def test_a_simulated_fleet_with_faults() -> None:
    config = parse_tach_config(
        {
            "backend": "simulated",
            "fans": {
                "b": {"targetRpm": 2000.0, "faults": [{"kind": "stall", "startSeconds": 5, "endSeconds": 9}]},
                "a": {"pin": 27.0, "pulsesPerRev": 4},  # Greengrass may hand integers back as floats
                "c": {"pin": 22, "setpoints": [{"atSeconds": 60, "rpm": 2200}, {"atSeconds": 90, "rpm": 0}]},
            },
        }
    )
    assert config.fans[2].setpoints == ((60.0, 2200.0), (90.0, 0.0))
    assert [f.id for f in config.fans] == ["a", "b", "c"]
    assert config.fans[0].pin == 27 and config.fans[0].pulses_per_rev == 4
    assert config.fans[1].faults[0].kind == "stall" and config.fans[1].faults[0].end_s == 9


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        ({"backend": "serial"}, "backend", "'serial' is not one of gpio, simulated, replay"),
        ({"windowSecond": 1}, "windowSecond", "unknown key"),
        ({"maxRpm": "fast"}, "maxRpm", "expected a number"),
        ({"maxRpm": True}, "maxRpm", "expected a number"),
        ({"maxRpm": 50}, "maxRpm", "50 is out of range [100, 100000]"),
        ({"pulsesPerRev": 1.5}, "pulsesPerRev", "expected an integer"),
        ({"windowSeconds": 3, "stallTimeoutSeconds": 2}, "stallTimeoutSeconds", "shorter than windowSeconds"),
        ({"fans": []}, "fans", "expected an object"),
        ({"fans": {}}, "fans", "0 fans"),
        ({"fans": {"bad id": {}}}, "fans.bad id", "does not match"),
        ({"fans": {"a": {"pin": 60}}}, "fans.a.pin", "out of range"),
        ({"fans": {"a": {"colour": "red"}}}, "fans.a.colour", "unknown key"),
        ({"fans": {"a": {"pin": 17}, "b": {"pin": 17}}}, "fans", "pin 17 is used by more than one fan"),
        ({"backend": "replay", "fans": {"a": {}}}, "fans.a.replayFile", "missing"),
        ({"fans": {"a": {"faults": {}}}}, "fans.a.faults", "expected a list"),
        ({"fans": {"a": {"faults": [{"startSeconds": 1}]}}}, "fans.a.faults[0].kind", "missing"),
        ({"fans": {"a": {"faults": [{"kind": "fire"}]}}}, "fans.a.faults[0].kind", "'fire' is not one of"),
        (
            {"fans": {"a": {"faults": [{"kind": "stall", "startSeconds": 5, "endSeconds": 2}]}}},
            "fans.a.faults[0].endSeconds",
            "is not after startSeconds",
        ),
        ({"fans": {"a": {"setpoints": {"atSeconds": 1}}}}, "fans.a.setpoints", "expected a list"),
        ({"fans": {"a": {"setpoints": [{"atSeconds": 1}]}}}, "fans.a.setpoints[0].rpm", "missing"),
        (
            {"fans": {"a": {"setpoints": [{"atSeconds": 1, "rpm": -5}]}}},
            "fans.a.setpoints[0].rpm",
            "out of range",
        ),
        (
            {"fans": {"a": {"setpoints": [{"atSeconds": 9, "rpm": 1}, {"atSeconds": 9, "rpm": 2}]}}},
            "fans.a.setpoints[1].atSeconds",
            "is not after the setpoint before it",
        ),
        ({"timeScale": 10}, "timeScale", "timeScale must be 1 with the gpio backend"),
        ({"replayLoop": "yes"}, "replayLoop", "expected true or false"),
    ],
)
def test_tachometer_refusals_name_the_key(raw: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_tach_config(raw)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        ({"batchSize": 601}, "batchSize", "601 is out of range [1, 600]"),
        ({"batchSize": 0}, "batchSize", "out of range"),
        ({"maxMessageBytes": 200_000}, "maxMessageBytes", "out of range [1024, 131072]"),
        ({"spikeWindow": 8}, "spikeWindow", "is even"),
        ({"heartbeatSeconds": float("nan")}, "heartbeatSeconds", "expected a number"),
        ({"underSpeedRpm": 50, "stallRpm": 100}, "underSpeedRpm", "must be above stallRpm"),
        ({"underSpeedRpm": 2000, "overSpeedRpm": 1500}, "overSpeedRpm", "must be above underSpeedRpm"),
        ({"deadband": 5}, "deadband", "unknown key"),
        ([], "$", "expected an object"),
    ],
)
def test_filter_refusals_name_the_key(raw: Any, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_filter_config(raw)
    assert (info.value.key, problem in info.value.problem) == (key, True), str(info.value)


def test_access_control_is_left_to_the_nucleus() -> None:
    assert parse_filter_config({"accessControl": {"aws.greengrass.ipc.pubsub": {}}}) == FilterConfig()


def test_the_digest_is_stable_and_follows_every_value() -> None:
    a = parse_filter_config({"batchSize": 10})
    assert a.digest == parse_filter_config({"batchSize": 10.0}).digest == config_digest(a)
    assert a.digest != parse_filter_config({"batchSize": 11}).digest
    assert len(a.digest) == 16
