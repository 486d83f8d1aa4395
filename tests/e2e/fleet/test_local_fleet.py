"""The proof on a local fleet: 20 cores in two thing groups, a bad release caught by the canary, a good one
rolled out in stages, a configuration change that loses nothing, and a rollback.

Everything goes through ``fanwatch fleet`` as a user types it, against the local control plane, with
real cores running the probe component as real processes that publish through the real IPC client and
MQTT link; the test reads the telemetry from the broker, as IoT Core's rules would. Fleet time runs 60
times faster than the wall clock, so a 1-minute soak takes a second.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from fanwatch.core.fleet import Fleet
from fanwatch.fleet.local import LocalFleet
from fanwatch.fleet.timescale import TimeScale

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(900)]

FLEET, CANARY = "fanwatch-fleet", "fanwatch-canary"
THINGS = Fleet.names(20)
CANARIES = THINGS[:2]
OTHERS = THINGS[2:]
#: Slow enough that the stages show: 1 device a (fleet) minute, doubling after every 2 notified.
STAGED = {
    "jobExecutionsRolloutConfig": {
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        },
        "maximumPerMinute": 100,
    },
    "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
}


def _largest_gap(readings: list[tuple[float, dict[str, Any]]]) -> float:
    """The longest silence between two readings, by the device's clock (when it sent them)."""
    times = [r["at"] for _, r in readings]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _contiguous(seqs: list[int]) -> bool:
    """Every sequence number from the first to the last arrived (QoS 1 may deliver one twice)."""
    return sorted(set(seqs)) == list(range(min(seqs), max(seqs) + 1))


def _boots(readings: list[tuple[float, dict[str, Any]]]) -> list[str]:
    boots: list[str] = []
    for _, reading in readings:
        if not boots or boots[-1] != reading["boot"]:
            boots.append(reading["boot"])
    return boots


async def test_a_canary_catches_a_bad_release_and_a_good_one_rolls_out_in_stages(
    tmp_path: Path, builds, telemetry_factory, fleet_command, eventually
) -> None:
    groups = {FLEET: THINGS, CANARY: CANARIES}
    async with LocalFleet(
        tmp_path / "fleet", groups=groups, scale=TimeScale(60.0), status_interval=30.0, poll_seconds=0.3
    ) as fleet:
        telemetry = telemetry_factory(fleet.observer.host, fleet.observer.port)
        fleet_cli = fleet_command(fleet.environment())

        # v1 everywhere, without a canary (the group has no deployment to fall back to yet)
        assert (await fleet_cli("publish", "--build-dir", str(builds.build("1.0.0")))).code == 0
        done = await fleet_cli("deploy", str(builds.deployment("1.0.0")), "--group", FLEET, "--poll", "0.3")
        assert done.code == 0, done.out
        await eventually(
            lambda: all((telemetry.latest(t) or {}).get("version") == "1.0.0" for t in THINGS),
            60,
            "v1 everywhere",
        )
        v1_boot = {t: telemetry.latest(t)["boot"] for t in THINGS}  # type: ignore[index]

        # a v2 that cannot start: the canary goes BROKEN, the rollout stops, the canary is rolled back
        assert (await fleet_cli("publish", "--build-dir", str(builds.build("2.0.0", crash=True)))).code == 0
        bad_started = time.time()
        done = await fleet_cli(
            "deploy", str(builds.deployment("2.0.0")), "--group", FLEET, "--canary", CANARY, "--soak", "1m",
            "--poll", "0.3",
        )  # fmt: skip
        assert done.code == 1, done.out
        assert done.lines("BROKEN") and done.lines("canary: rolling back"), done.out
        assert f"{FLEET} was not touched" in done.out
        await eventually(
            lambda: all(
                (telemetry.latest(t) or {}).get("version") == "1.0.0"
                and telemetry.latest(t)["boot"] != v1_boot[t]
                for t in CANARIES
            ),  # type: ignore[index]
            30,
            "the canary back on v1",
        )
        for thing in OTHERS:  # never left v1, never restarted, never stopped sending
            seen = telemetry.of(thing, since=bad_started)
            assert {r["version"] for _, r in seen} == {"1.0.0"}
            assert _boots(seen) == [v1_boot[thing]]
            assert _contiguous([r["seq"] for _, r in seen]), thing  # not a reading lost
            assert _largest_gap(seen) < 10.0, thing  # readings every 0.5 s; slack for a loaded machine
        status = await fleet_cli("status", "--group", FLEET)
        assert status.code == 0 and status.out.startswith(f"{len(THINGS)} devices: {len(THINGS)} HEALTHY"), (
            status.out
        )

        # a good v2.1: canary, soak, then the whole group in stages, telemetry going on
        assert (await fleet_cli("publish", "--build-dir", str(builds.build("2.1.0")))).code == 0
        good_started = time.time()
        done = await fleet_cli(
            "deploy", str(builds.deployment("2.1.0", job=STAGED)), "--group", FLEET, "--canary", CANARY,
            "--soak", "1m", "--poll", "0.3",
        )  # fmt: skip
        assert done.code == 0, done.out
        assert done.lines("every device stayed HEALTHY for 1.0m")
        switched: dict[str, float] = {}
        for thing in THINGS:
            seen = telemetry.of(thing, since=good_started)
            first = next(r["at"] for _, r in seen if r["version"] == "2.1.0")
            switched[thing] = first
            assert _largest_gap(seen) < 20.0, thing  # a restart (a new process), not an outage
        canary_done = max(switched[t] for t in CANARIES)
        assert all(switched[t] > canary_done for t in OTHERS)  # the group only after the canary's soak
        # the job reached the devices in stages, at its exponential rate (when each was notified)
        gg, jobs = fleet.plane.client("greengrassv2"), fleet.plane.client("iot-jobs-data")
        (latest,) = gg.list_deployments(targetArn=fleet.plane.endpoint.arn("iot", f"thinggroup/{FLEET}"))[
            "deployments"
        ]
        job = gg.get_deployment(deploymentId=latest["deploymentId"])["iotJobId"]
        queued = sorted(
            jobs.describe_job_execution(thingName=t, jobId=job)["execution"]["queuedAt"] for t in THINGS
        )
        assert len(set(queued)) >= 3 and queued[-1] - queued[0] >= 2, queued
        progress = [line for line in done.lines(f"group {FLEET}:") if " waiting" in line]
        assert progress, done.out  # devices the rollout had not reached yet, while others ran it

        # a configuration-only deployment: the new threshold reaches running components, nothing is lost
        before = {t: telemetry.latest(t) for t in THINGS}
        done = await fleet_cli(
            "deploy", str(builds.deployment("2.1.0", threshold=2500)), "--group", FLEET, "--poll", "0.3"
        )
        assert done.code == 0, done.out
        await eventually(
            lambda: all((telemetry.latest(t) or {}).get("threshold") == 2500 for t in THINGS),
            60,
            "threshold 2500",
        )
        for thing in THINGS:
            boot = before[thing]["boot"]  # type: ignore[index]
            mine = [r for _, r in telemetry.of(thing) if r["boot"] == boot]
            assert mine[-1]["threshold"] == 2500, thing  # the same process: no restart
            assert _contiguous([r["seq"] for r in mine]), thing  # not a reading lost

        # rollback redeploys the previous deployment file
        done = await fleet_cli("rollback", "--group", FLEET, "--poll", "0.3")
        assert done.code == 0, done.out
        assert "probe-2.1.0-3000.json" in done.out
        await eventually(
            lambda: all((telemetry.latest(t) or {}).get("threshold") == 3000 for t in THINGS),
            60,
            "threshold back",
        )
    print("\n".join(fleet_cli.log))
