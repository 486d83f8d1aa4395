"""Recipe variables, replaced (or left alone) as the nucleus does."""

from __future__ import annotations

from pathlib import Path

from fanwatch.core.deployment.interpolation import Interpolator, config_text, resolve_pointer
from fanwatch.core.layout import CoreLayout


def make(tmp_path: Path, problems: list[tuple[str, str]]) -> Interpolator:
    return Interpolator(
        layout=CoreLayout(tmp_path),
        thing_name="fan-001",
        versions={"app": "1.0.0", "base": "2.1.0"},
        configurations={
            "app": {
                "Interval": 5,
                "ratio": 0.5,
                "on": True,
                "nothing": None,
                "tags": ["a", "b"],
                "sub": {"b": 1, "a": 2},
            },
            "base": {"port": 8080},
        },
        report=lambda component, problem: problems.append((component, problem)),
    )


def test_every_system_variable(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    interp = make(tmp_path, problems)
    text = "{artifacts:path}|{artifacts:decompressedPath}|{work:path}|{kernel:rootPath}|{iot:thingName}"
    assert interp.interpolate(text, "app", set()).split("|") == [
        f"{tmp_path}/packages/artifacts/app/1.0.0",
        f"{tmp_path}/packages/artifacts-unarchived/app/1.0.0",
        f"{tmp_path}/work/app",
        str(tmp_path),
        "fan-001",
    ]
    assert problems == []


def test_configuration_values_as_text(tmp_path: Path) -> None:
    interp = make(tmp_path, [])
    got = interp.interpolate(
        "{configuration:/interval} {configuration:/ratio} {configuration:/on} {configuration:/nothing} "
        "{configuration:/tags} {configuration:/sub} {configuration:/tags/1}",
        "app",
        set(),
    )
    assert got == '5 0.5 true null ["a","b"] {"a":2,"b":1} b'


def test_cross_component_only_for_direct_dependencies(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    interp = make(tmp_path, problems)
    text = "{base:configuration:/port} {base:artifacts:path} {base:work:path}"
    assert interp.interpolate(text, "app", {"base"}) == (
        f"8080 {tmp_path}/packages/artifacts/base/2.1.0 {tmp_path}/work/base"
    )
    assert interp.interpolate("{base:configuration:/port}", "app", set()) == "{base:configuration:/port}"
    assert problems == [("app", "{base:configuration:/port}: base is not a direct dependency of app")]


def test_unresolvable_variables_stay_and_are_reported(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    interp = make(tmp_path, problems)
    text = '{configuration:/typo} {secrets:key} {iot:certificate} json {"a": 1}'
    assert interp.interpolate(text, "app", set()) == text
    assert [p for _, p in problems] == [
        "{configuration:/typo}: no configuration value at '/typo'",
        "{secrets:key}: unrecognized namespace 'secrets'",
        "{iot:certificate}: unknown key 'certificate' in namespace 'iot'",
    ]


def test_nested_structures_are_walked(tmp_path: Path) -> None:
    interp = make(tmp_path, [])
    lifecycle = {"run": {"script": "x {iot:thingName}", "setenv": {"N": "{configuration:/Interval}"}}, "n": 3}
    assert interp.interpolate(lifecycle, "app", set()) == {
        "run": {"script": "x fan-001", "setenv": {"N": "5"}},
        "n": 3,
    }


def test_pointer_escapes_and_case() -> None:
    doc = {"a/b": {"c~d": 1}, "Mixed": 2}
    assert resolve_pointer(doc, "/a~1b/c~0d") == 1
    assert resolve_pointer(doc, "/mixed") == 2
    assert resolve_pointer(doc, "") == doc
    assert config_text(1.0) == "1.0"
