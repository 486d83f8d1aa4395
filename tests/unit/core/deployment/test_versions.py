"""Semantic versions and npm-style VersionRequirement ranges."""

from __future__ import annotations

import pytest

from fanwatch.core.deployment.versions import Requirement, Version


def test_ordering_follows_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
    ]
    versions = [Version.parse(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert str(Version.parse("2.3.4-rc.1+build.5")) == "2.3.4-rc.1"


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0.0", "NEXT_PATCH", "", "v1.0.0"])
def test_invalid_versions(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)


@pytest.mark.parametrize(
    ("requirement", "allowed", "refused"),
    [
        (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0"]),
        ("^1.2.0", ["1.2.0", "1.9.0"], ["1.1.9", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("~1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("1.x", ["1.0.0", "1.5.1"], ["2.0.0"]),
        ("*", ["0.0.1", "9.9.9"], []),
        ("1.0.0", ["1.0.0"], ["1.0.1"]),
        ("1.0.0 - 1.4.0", ["1.0.0", "1.4.0"], ["1.4.1"]),
        ("<1.0.0 || >=3.0.0", ["0.5.0", "3.1.0"], ["1.0.0", "2.9.9"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ],
)
def test_requirements(requirement: str, allowed: list[str], refused: list[str]) -> None:
    req = Requirement(requirement)
    assert all(req.allows(v) for v in allowed)
    assert not any(req.allows(v) for v in refused)


@pytest.mark.parametrize("text", [">=banana", "1.0.0 <", "^^1"])
def test_unreadable_requirements(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read version"):
        Requirement(text)
