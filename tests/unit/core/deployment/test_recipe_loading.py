"""Recipes: case-insensitive keys, manifest selection as the nucleus matches platforms, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fanwatch.core.deployment.recipe import (
    Lifecycle,
    Recipe,
    RecipeError,
    current_platform,
    load_recipe,
    parse_recipe,
    read_recipe_document,
)

LINUX_AMD64 = {"os": "linux", "architecture": "amd64"}
PI = {"os": "linux", "architecture": "arm", "architecture.detail": "armv7l"}

YAML_RECIPE = """\
RecipeFormatVersion: '2020-01-25'
componentName: com.example.Hello
COMPONENTVERSION: 1.2.3
ComponentConfiguration:
  DefaultConfiguration:
    Interval: 5
    accessControl:
      aws.greengrass.ipc.mqttproxy:
        com.example.Hello:mqttproxy:1:
          operations: [aws.greengrass#PublishToIoTCore]
          resources: ['fanwatch/{iot:thingName}/telemetry']
componentDependencies:
  com.example.Base:
    versionRequirement: '>=1.0.0 <2.0.0'
    dependencyType: soft
Manifests:
  - platform:
      os: linux
      architecture: /arm|aarch64/
    lifecycle:
      run: echo pi
  - Platform:
      os: linux
    Lifecycle:
      Setenv:
        GREETING: hi
      Install:
        Script: echo install
        Timeout: 30
        RequiresPrivilege: true
        SkipIf: onpath true
      Run: python3 -u {artifacts:decompressedPath}/hello/main.py
    Artifacts:
      - uri: s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/hello.zip
        unarchive: zip
        permission:
          read: all
          execute: owner
"""


def test_yaml_keys_match_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(YAML_RECIPE)
    recipe = load_recipe(path)
    assert (recipe.name, recipe.version) == ("com.example.Hello", "1.2.3")
    assert recipe.default_configuration["Interval"] == 5
    dep = recipe.dependencies["com.example.Base"]
    assert (dep.version_requirement, dep.dependency_type) == (">=1.0.0 <2.0.0", "SOFT")
    manifest = recipe.manifest_for(LINUX_AMD64)
    (artifact,) = manifest.artifacts
    assert (artifact.unarchive, artifact.read, artifact.execute) == ("ZIP", "ALL", "OWNER")
    assert artifact.file_name == "hello.zip"
    lifecycle = Lifecycle.from_mapping(manifest.lifecycle)
    assert lifecycle.setenv == {"GREETING": "hi"}
    install = lifecycle.steps["install"]
    assert (install.script, install.timeout, install.requires_privilege, install.skipif) == (
        "echo install",
        30.0,
        True,
        "onpath true",
    )
    assert lifecycle.steps["run"].script.startswith("python3 -u {artifacts:decompressedPath}")


def from_text(text: str, source: str = "recipe") -> Recipe:
    return parse_recipe(yaml.safe_load(text), source=source)


def test_json_recipe_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(yaml.safe_load(YAML_RECIPE)))
    assert load_recipe(path) == from_text(YAML_RECIPE, str(path))


def test_first_matching_manifest_wins_and_regex_must_match_whole_label() -> None:
    recipe = from_text(YAML_RECIPE)
    assert recipe.manifest_for(PI).lifecycle == {"run": "echo pi"}
    assert recipe.manifest_for({"os": "linux", "architecture": "aarch64"}).lifecycle == {"run": "echo pi"}
    # "/arm|aarch64/" must match the whole label: "armv7" is not "arm"
    assert "install" in recipe.manifest_for({"os": "linux", "architecture": "armv7"}).lifecycle


@pytest.mark.parametrize(
    ("platform_req", "device", "matches"),
    [
        ({"os": "*"}, {"os": "windows"}, True),
        ({"os": "all", "architecture": "any"}, LINUX_AMD64, True),
        ({"architecture.detail": "armv7l"}, LINUX_AMD64, False),  # the device has no such label
        ({"architecture.detail": "armv7l"}, PI, True),
        ({"os": "darwin"}, LINUX_AMD64, False),
        ({"os": "~linux"}, LINUX_AMD64, False),  # special labels are reserved: never match
        ({}, PI, True),
    ],
)
def test_platform_labels(platform_req: dict, device: dict, matches: bool) -> None:
    recipe = parse_recipe(
        {"ComponentName": "a.b", "ComponentVersion": "1.0.0", "Manifests": [{"Platform": platform_req}]}
    )
    if matches:
        recipe.manifest_for(device)
    else:
        with pytest.raises(RecipeError, match="no manifest matches this platform"):
            recipe.manifest_for(device)


def test_selections_filter_the_recipe_level_lifecycle() -> None:
    recipe = parse_recipe(
        {
            "ComponentName": "a.b",
            "ComponentVersion": "1.0.0",
            "Manifests": [
                {"Platform": {"os": "windows"}, "Selections": ["windows"]},
                {"Platform": {"os": "linux"}, "Selections": ["linux"]},
            ],
            "Lifecycle": {
                "linux": {"Run": "echo linux"},
                "windows": {"Run": "echo win"},
                "all": {"Run": "x"},
            },
        }
    )
    assert recipe.manifest_for(LINUX_AMD64).lifecycle == {"run": "echo linux"}


def test_current_platform_detects_and_overrides() -> None:
    detected = current_platform()
    assert detected["os"] in {"linux", "darwin", "windows"}
    assert current_platform({"architecture": "aarch64"})["architecture"] == "aarch64"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"ComponentVersion": "1.0.0", "Manifests": [{}]}, "ComponentName"),
        (
            {"ComponentName": "a", "ComponentVersion": "NEXT_PATCH", "Manifests": [{}]},
            "not a semantic version",
        ),
        ({"ComponentName": "a", "ComponentVersion": "1.0.0"}, "at least one manifest"),
        ({"ComponentName": "a", "componentname": "b", "ComponentVersion": "1.0.0"}, "appears twice"),
        (
            {
                "ComponentName": "a",
                "ComponentVersion": "1.0.0",
                "Manifests": [{"Artifacts": [{"Unarchive": "ZIP"}]}],
            },
            r"Artifacts\[0\]\.URI: missing",
        ),
        (
            {
                "ComponentName": "a",
                "ComponentVersion": "1.0.0",
                "Manifests": [{"Artifacts": [{"URI": "x", "Unarchive": "TAR"}]}],
            },
            "expected NONE or ZIP",
        ),
        (
            {
                "ComponentName": "a",
                "ComponentVersion": "1.0.0",
                "Manifests": [{}],
                "ComponentDependencies": {"b": {"DependencyType": "HARD"}},
            },
            "VersionRequirement: missing",
        ),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_bad_recipes_name_the_field(doc: object, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_recipe(doc)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"Timeout": 5}, "Script: missing"),
        ({"Script": "x", "Timeout": "soon"}, "expected seconds"),
        ({"Script": "x", "Timeout": -1}, "must be positive"),
        (42, "expected a script or a mapping"),
    ],
)
def test_bad_steps_are_refused(step: object, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        Lifecycle.from_mapping({"run": step})


def test_unreadable_or_oversized_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("ComponentName: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML or JSON"):
        load_recipe(broken)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 16_000)
    with pytest.raises(RecipeError, match="accepts at most 16,000"):
        load_recipe(big)


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("com.example.Hello\n", "1.0.0", "ComponentName: expected a component name"),
        ("..", "1.0.0", "ComponentName: expected a component name"),
        (".", "1.0.0", "ComponentName: expected a component name"),
        ("com.example.Hello", "1.0.0\n", "is not a semantic version"),
        ("com.example.Hello", " 1.0.0", "is not a semantic version"),
    ],
)
def test_names_and_versions_are_matched_whole(name: str, version: str, message: str) -> None:
    """Issue 14: a trailing newline passed the `$` patterns, and `..` ran with the core root as work."""
    with pytest.raises(RecipeError, match=message):
        parse_recipe({"ComponentName": name, "ComponentVersion": version, "Manifests": [{}]})


ALIAS_BOMB = """\
ComponentName: com.example.Bomb
ComponentVersion: 1.0.0
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
Manifests: [{}]
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, r"aliases \(\*a\) are not allowed"),
        ("ComponentName: " + "[" * 5000 + "]" * 5000, "nested too deeply|maximum nesting depth"),
        ("ComponentName: " + "[" * 40 + "]" * 40, "nested deeper than 32 levels"),
        ("ComponentVersion: " + "9" * 5000, "not a readable recipe"),
    ],
    ids=["alias bomb", "nested 5000 deep", "nested 40 deep", "5000-digit integer"],
)
def test_a_recipe_is_bounded_before_it_is_processed(tmp_path: Path, text: str, message: str) -> None:
    """Issue 14: a 668-byte alias bomb took the core 2 minutes and 4.3 GB; deep nesting was RecursionError."""
    file = tmp_path / "recipe.yaml"
    file.write_text(text)
    with pytest.raises(RecipeError, match=message):
        read_recipe_document(file)
