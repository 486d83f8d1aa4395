"""The facts several packages check against agree wherever they are checked: a recipe of exactly
16,000 bytes passes both the build and the core (gdk's rule), one byte more fails both; a thing name
with a trailing newline is refused everywhere a thing name is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from fanwatch import build
from fanwatch.core.deployment.recipe import RecipeError, read_recipe_document
from fanwatch.core.mqtt.topics import MqttRequestError, check_message, check_thing_name
from fanwatch.core.runtime import LocalCore
from fanwatch.edge.config import ConfigError, parse_tach_config
from fanwatch.limits import (
    FAN_PATTERN,
    MAX_MESSAGE_BYTES,
    MAX_RECIPE_BYTES,
    is_thing_name,
    recipe_size_problem,
)


def _recipe_text(size: int) -> str:
    head = "RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Sized\n# "
    return head + "x" * (size - len(head) - 1) + "\n"


@pytest.mark.parametrize(("size", "accepted"), [(MAX_RECIPE_BYTES, True), (MAX_RECIPE_BYTES + 1, False)])
def test_build_and_core_agree_on_the_recipe_size_limit(tmp_path: Path, size: int, accepted: bool) -> None:
    text = _recipe_text(size)
    assert len(text.encode()) == size
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    build_refuses = any("at most 16,000" in p for p in build.check_recipe({}, text))
    try:
        read_recipe_document(path)
        core_refuses = False
    except RecipeError as exc:
        assert "at most 16,000" in str(exc)
        core_refuses = True
    assert (build_refuses, core_refuses) == (not accepted, not accepted)
    assert (recipe_size_problem(size) is None) is accepted


@pytest.mark.parametrize("name", ["fan-001\n", "fan/001", "fan+", "#", "", "x" * 129, "fän"])
def test_a_bad_thing_name_is_refused_everywhere(tmp_path: Path, name: str) -> None:
    assert not is_thing_name(name)
    with pytest.raises(MqttRequestError, match="not a valid AWS IoT thing name"):
        check_thing_name(name)
    with pytest.raises(ValueError, match="not a valid AWS IoT thing name"):
        LocalCore(name, tmp_path, iot=None)  # type: ignore[arg-type]  # refused before the link is used


def test_the_longest_thing_name_is_accepted() -> None:
    assert is_thing_name("a" * 128) and check_thing_name("A:b_c-1") == "A:b_c-1"


def test_a_fan_id_with_a_trailing_newline_is_refused() -> None:
    assert FAN_PATTERN.fullmatch("fan0") and not FAN_PATTERN.fullmatch("fan0\n")
    with pytest.raises(ConfigError, match="does not match"):
        parse_tach_config({"backend": "simulated", "fans": {"fan0\n": {}}})


def test_the_message_limit_is_iot_cores() -> None:
    check_message("t", b"x" * MAX_MESSAGE_BYTES, 1)
    with pytest.raises(MqttRequestError, match="exceeds IoT Core's limit"):
        check_message("t", b"x" * (MAX_MESSAGE_BYTES + 1), 1)
