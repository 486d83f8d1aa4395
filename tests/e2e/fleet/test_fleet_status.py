"""``fanwatch fleet status`` on a local fleet where one device went offline: silent, and its job stuck."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fanwatch.fleet.local import LocalFleet
from fanwatch.fleet.timescale import TimeScale

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(300)]

GROUP = "fanwatch-fleet"


async def test_a_silent_device_and_its_stuck_job(tmp_path: Path, builds, fleet_command) -> None:
    things = ["fan-001", "fan-002", "fan-003"]
    async with LocalFleet(
        tmp_path / "fleet",
        groups={GROUP: things},
        scale=TimeScale(60.0),
        status_interval=30.0,
        poll_seconds=0.3,
    ) as fleet:
        fleet_cli = fleet_command(fleet.environment())
        assert (await fleet_cli("publish", "--build-dir", str(builds.build("1.0.0")))).code == 0
        done = await fleet_cli("deploy", str(builds.deployment("1.0.0")), "--group", GROUP, "--poll", "0.3")
        assert done.code == 0, done.out
        healthy = await fleet_cli("status", "--group", GROUP)
        assert healthy.out.splitlines()[0] == "3 devices: 3 HEALTHY", healthy.out
        assert "need a look" not in healthy.out

        await fleet.disconnect("fan-003")  # offline: no more jobs taken, no more status sent
        done = await fleet_cli(
            "deploy", str(builds.deployment("1.0.0", threshold=2000)), "--group", GROUP, "--timeout", "2m",
            "--poll", "0.3",
        )  # fmt: skip
        assert done.code == 1 and "not finished within 2.0m (fan-003 QUEUED)" in done.out, done.out
        await asyncio.sleep(2.5)  # with the deploy's 2 minutes, fan-003 is silent for over 4 fleet minutes
        # the others report every 30 fleet seconds: 3 minutes leaves room for a slow machine
        report = await fleet_cli("status", "--group", GROUP, "--silent-after", "3m", "--stuck-after", "1m")
        lines = report.out.splitlines()
        assert lines[0] == "3 devices: 3 HEALTHY; 1 silent", report.out
        (device,) = [line for line in lines if line.startswith("  fan-003 ")]
        assert "SILENT for" in device and "fleet probe 1.0.0: QUEUED" in device
        assert "stuck deployments (the runbook: README.md, Fleets; docs/fleet.md):" in lines
        (stuck,) = [line for line in lines if line.startswith("  fan-003: ")]
        assert "QUEUED for" in stuck
        as_json = json.loads(
            (await fleet_cli("status", "--group", GROUP, "--json", "--stuck-after", "1m")).out
        )
        assert [s["thing"] for s in as_json["stuck"]] == ["fan-003"]
