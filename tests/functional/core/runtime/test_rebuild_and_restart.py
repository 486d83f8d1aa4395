"""The developer loop across core restarts: edit, ``gdk component build`` (the same version, or
NEXT_PATCH), deploy again. A restart with no new deployment brings back exactly what was installed; the
next deployment runs the fresh build, as ``greengrass-cli deployment create --recipeDir --artifactDir``
does on a device (it copies the build into the nucleus' store, replacing the same version)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanwatch.core.fleet import Fleet

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

PROBE = "test.Probe"
THING = "fan-001"


def build(builds: Any, recipe: Callable[..., dict[str, Any]], version: str, marker: str) -> None:
    """A build whose Run step prints which build it is, read from one of its artifacts."""
    document = recipe(
        PROBE, version, lifecycle={"Run": "echo running $(cat {artifacts:path}/build.txt); sleep 60"}
    )
    document["Manifests"][0]["Artifacts"].append(
        {"URI": "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/build.txt"}
    )
    builds.add(document)
    (builds.folder / "artifacts" / PROBE / version / "build.txt").write_text(marker)


def ran(fleet: Fleet) -> list[str]:
    """Which build each start of the component ran, in order (the component log survives restarts)."""
    log = fleet.cores[THING].layout.log_path(PROBE)
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split("running ", 1)[1].strip() for line in lines if "running build-" in line]


def fleet_on(tmp_path: Path, builds: Any, link_factory: Any) -> Fleet:
    """A fleet of one core on the same root every time: stopping and starting it restarts the core."""
    return Fleet(
        tmp_path / "cores", [THING], links=link_factory, build_dirs=[builds.folder], stable_seconds=0.2
    )


async def deploy(fleet: Fleet, version: str, until: Callable[..., Any], *, then_ran: list[str]) -> None:
    """Deploy ``version`` and wait until the component log shows the starts in ``then_ran``."""
    result = (await fleet.deploy({"components": {PROBE: {"componentVersion": version}}}))[THING]
    assert result.succeeded, result.detail
    await until(lambda: ran(fleet) == then_ran)


async def test_a_same_version_rebuild_runs_on_the_next_deployment_after_a_core_restart(
    tmp_path: Path, builds, recipe, link_factory, until
) -> None:
    build(builds, recipe, "1.0.0", "build-1")
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        await deploy(fleet, "1.0.0", until, then_ran=["build-1"])
    build(builds, recipe, "1.0.0", "build-2")  # edit, gdk component build: the same version again
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        await until(lambda: ran(fleet) == ["build-1", "build-1"])  # the restart: exactly what was installed
        await deploy(fleet, "1.0.0", until, then_ran=["build-1", "build-1", "build-2"])  # the fresh build
        installed = fleet.cores[THING].layout.artifact_path(PROBE, "1.0.0") / "build.txt"
        assert installed.read_text() == "build-2"
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        after_restart = ["build-1", "build-1", "build-2", "build-2"]  # what the last deployment installed
        await until(lambda: ran(fleet) == after_restart)
        await deploy(fleet, "1.0.0", until, then_ran=after_restart)  # an unchanged build: no restart
        (probe,) = fleet.status()[THING]["components"]
        assert (probe["version"], probe["state"]) == ("1.0.0", "RUNNING")
        log = fleet.cores[THING].layout.log_path(PROBE).read_text()
        assert ran(fleet) == after_restart and log.count("STARTING -> RUNNING") == 4


async def test_a_next_patch_rebuild_after_a_core_restart_is_the_next_version(
    tmp_path: Path, builds, recipe, link_factory, until
) -> None:
    build(builds, recipe, "NEXT_PATCH", "build-1")
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        latest = fleet.cores[THING].store.latest(PROBE)
        assert latest is not None and latest.version == "1.0.0"
        await deploy(fleet, "1.0.0", until, then_ran=["build-1"])
    build(builds, recipe, "NEXT_PATCH", "build-2")
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        await until(lambda: ran(fleet) == ["build-1", "build-1"])  # the restart: 1.0.0 as installed
        store = fleet.cores[THING].store
        assert [(c.version, c.fingerprint == store.get(PROBE, "1.0.0").fingerprint) for c in store] == [
            ("1.0.0", True),
            ("1.0.1", False),  # the rebuild: the number gdk component publish would give it
        ]
        await deploy(fleet, "1.0.1", until, then_ran=["build-1", "build-1", "build-2"])
        await deploy(fleet, "1.0.0", until, then_ran=["build-1", "build-1", "build-2", "build-1"])  # and back


async def test_a_same_version_rebuild_runs_on_the_next_deployment_of_a_running_core(
    tmp_path: Path, builds, recipe, link_factory, until
) -> None:
    build(builds, recipe, "1.0.0", "build-1")
    async with fleet_on(tmp_path, builds, link_factory) as fleet:
        await deploy(fleet, "1.0.0", until, then_ran=["build-1"])
        build(builds, recipe, "1.0.0", "build-2")
        await deploy(fleet, "1.0.0", until, then_ran=["build-1", "build-2"])  # the build folder is read again
