"""A thing in several thing groups runs the merge of their deployments, as the nucleus computes it.

fan-001 is in both groups, fan-002 only in ``line-a``: each group's deployment brings its components,
two groups asking for different versions of one component fail on the device with the nucleus'
words and change nothing there, and a group the thing has left takes its components away with the
next deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fanwatch.fleet.local import LocalFleet
from fanwatch.fleet.timescale import TimeScale

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(300)]

OTHER = "com.example.OtherProbe"


def _running(fleet: LocalFleet, thing: str) -> dict[str, str]:
    status: dict[str, Any] = fleet.status()[thing]
    return {c["name"]: c["version"] for c in status["components"] if c["state"] == "RUNNING"}


async def test_deployments_of_two_groups_merge_and_conflict_as_on_a_device(
    tmp_path: Path, builds, fleet_command
) -> None:
    groups = {"line-a": ["fan-001", "fan-002"], "line-b": ["fan-001"]}
    async with LocalFleet(
        tmp_path / "fleet", groups=groups, scale=TimeScale(60.0), poll_seconds=0.3
    ) as fleet:
        fleet_cli = fleet_command(fleet.environment())
        for build in (builds.build("1.0.0"), builds.build("2.0.0"), builds.build("1.0.0", name=OTHER)):
            assert (await fleet_cli("publish", "--build-dir", str(build))).code == 0
        probe = "com.example.FleetProbe"

        assert (
            await fleet_cli("deploy", str(builds.deployment("1.0.0")), "--group", "line-a", "--poll", "0.3")
        ).code == 0
        other = builds.deployment("1.0.0", name=OTHER)
        assert (await fleet_cli("deploy", str(other), "--group", "line-b", "--poll", "0.3")).code == 0
        assert _running(fleet, "fan-001") == {probe: "1.0.0", OTHER: "1.0.0"}  # both groups' components
        assert _running(fleet, "fan-002") == {probe: "1.0.0"}

        conflict = await fleet_cli(
            "deploy", str(builds.deployment("2.0.0")), "--group", "line-b", "--poll", "0.3"
        )
        assert conflict.code == 1, conflict.out
        assert (
            "version constraints: thinggroup/line-a requires =1.0.0, thinggroup/line-b requires =2.0.0"
            in conflict.out
        )
        assert _running(fleet, "fan-001") == {probe: "1.0.0", OTHER: "1.0.0"}  # nothing changed there

        fleet.plane.client("iot").remove_thing_from_thing_group(thingGroupName="line-b", thingName="fan-001")
        again = builds.deployment("1.0.0", threshold=2800)
        assert (await fleet_cli("deploy", str(again), "--group", "line-a", "--poll", "0.3")).code == 0
        assert _running(fleet, "fan-001") == {probe: "1.0.0"}  # line-b's component left with line-b
