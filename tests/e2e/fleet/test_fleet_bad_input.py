"""Bad input gets a clear error, exit code 2, and changes nothing: no upload, no version, no deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanwatch.fleet.controlplane import LocalControlPlane
from fanwatch.fleet.names import artifacts_bucket

pytestmark = pytest.mark.asyncio

GROUP = "fanwatch-fleet"


@pytest.fixture(scope="module")
def running() -> Iterator[LocalControlPlane]:
    with LocalControlPlane() as plane:
        yield plane


@pytest.fixture
def plane(running: LocalControlPlane) -> LocalControlPlane:
    running.reset()
    iot, s3 = running.client("iot"), running.client("s3")
    iot.create_thing_group(thingGroupName=GROUP)
    iot.create_thing(thingName="fan-001")
    iot.add_thing_to_thing_group(thingGroupName=GROUP, thingName="fan-001")
    s3.create_bucket(Bucket=artifacts_bucket(running.region, running.account))
    return running


def _nothing_changed(plane: LocalControlPlane) -> None:
    gg, s3 = plane.client("greengrassv2"), plane.client("s3")
    assert gg.list_components()["components"] == []
    assert gg.list_deployments(historyFilter="ALL")["deployments"] == []
    bucket = artifacts_bucket(plane.region, plane.account)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


async def _run(fleet_command, plane: LocalControlPlane, *args: str) -> Any:
    return await fleet_command(plane.environment())(*args)


async def test_an_unknown_group(plane, fleet_command, builds) -> None:
    done = await _run(
        fleet_command, plane, "deploy", str(builds.deployment("1.0.0")), "--group", "no-such-group"
    )
    assert done.code == 2 and "thing group 'no-such-group' does not exist" in done.out, done.out
    _nothing_changed(plane)


async def test_a_missing_build(plane, fleet_command, tmp_path: Path) -> None:
    done = await _run(fleet_command, plane, "publish", "--build-dir", str(tmp_path / "greengrass-build"))
    assert done.code == 2 and "no gdk build in" in done.out and "gdk component build" in done.out, done.out
    _nothing_changed(plane)


async def test_a_recipe_over_16_kb(plane, fleet_command, builds) -> None:
    build = builds.build("1.0.0", padding="x" * 16_000)
    done = await _run(fleet_command, plane, "publish", "--build-dir", str(build))
    assert done.code == 2 and "Greengrass takes at most 16000" in done.out, done.out
    _nothing_changed(plane)


async def test_a_version_that_exists_is_refused_before_anything_is_uploaded(
    plane, fleet_command, builds
) -> None:
    first = builds.build("1.0.0")
    assert (await _run(fleet_command, plane, "publish", "--build-dir", str(first))).code == 0
    s3 = plane.client("s3")
    bucket = artifacts_bucket(plane.region, plane.account)
    key = "com.example.FleetProbe/1.0.0/fleet_probe.py"
    before = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    changed = builds.build("1.0.0", crash=True)  # another build under the same version
    done = await _run(fleet_command, plane, "publish", "--build-dir", str(changed))
    assert done.code == 2 and "com.example.FleetProbe 1.0.0 already exists" in done.out, done.out
    assert "uploading" not in done.out
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before  # devices still get what was pinned
    # NEXT_PATCH resolves against the account instead
    done = await _run(fleet_command, plane, "publish", "--build-dir", str(builds.build("NEXT_PATCH")))
    assert done.code == 0 and "com.example.FleetProbe 1.0.1" in done.out, done.out


async def test_a_deployment_file_naming_an_unpublished_component(plane, fleet_command, builds) -> None:
    done = await _run(fleet_command, plane, "deploy", str(builds.deployment("3.1.4")), "--group", GROUP)
    assert done.code == 2, done.out
    assert (
        "com.example.FleetProbe 3.1.4 is not published in us-east-1 (no version of it is published)"
        in done.out
    )
    _nothing_changed(plane)


async def test_a_deployment_file_aws_would_refuse(plane, fleet_command, tmp_path: Path) -> None:
    file = tmp_path / "object-merge.json"
    file.write_text(
        json.dumps(
            {"components": {"x": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": {"a": 1}}}}}
        )
    )
    done = await _run(fleet_command, plane, "deploy", str(file), "--group", GROUP)
    assert done.code == 2 and "at 'components.x.configurationUpdate.merge'" in done.out, done.out
    assert "Member must be a string" in done.out
    file.write_text(json.dumps({"components": {"x": {"componentVersion": "1.0.0"}}, "target": "oops"}))
    done = await _run(fleet_command, plane, "deploy", str(file), "--group", GROUP)
    assert done.code == 2 and "unknown key 'target'" in done.out, done.out
    _nothing_changed(plane)


async def test_a_canary_needs_a_group_deployment_to_fall_back_to(plane, fleet_command, builds) -> None:
    assert (await _run(fleet_command, plane, "publish", "--build-dir", str(builds.build("1.0.0")))).code == 0
    plane.client("iot").create_thing_group(thingGroupName="fanwatch-canary")
    plane.client("iot").add_thing_to_thing_group(thingGroupName="fanwatch-canary", thingName="fan-001")
    done = await _run(
        fleet_command,
        plane,
        "deploy",
        str(builds.deployment("1.0.0")),
        "--group",
        GROUP,
        "--canary",
        "fanwatch-canary",
    )
    assert done.code == 2 and "deploy to the group once without a canary" in done.out, done.out
    assert plane.client("greengrassv2").list_deployments(historyFilter="ALL")["deployments"] == []
