"""A local core running real component processes that use the real awsiotsdk IPC client: deployments,
configuration updates without restart, upgrades with stale keys, BROKEN components and rollback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fanwatch.core.ports import ComponentState
from fanwatch.core.runtime import LocalCore

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

PROBE = "test.Probe"


def deployment(
    version: str = "1.0.0", *, merge: dict | None = None, reset: list | None = None, **extra
) -> dict:
    update: dict = {}
    if merge is not None:
        update["merge"] = merge
    if reset is not None:
        update["reset"] = reset
    components = {PROBE: {"componentVersion": version, "configurationUpdate": update}}
    components.update(extra.pop("components", {}))
    return {"components": components, **extra}


async def test_component_publishes_through_the_core_and_a_denied_call_is_refused(
    core: LocalCore, builds, recipe, link, events, until, caplog: pytest.LogCaptureFixture
) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    core.add_sources([builds.folder])
    caplog.set_level(logging.INFO)
    result = await core.deploy(deployment())
    assert result.status == "SUCCESSFUL", result.detail
    assert result.states == {PROBE: "RUNNING"}
    readings = await until(lambda: len(link.messages("probe/out")) >= 3 and link.messages("probe/out"))
    assert [m["n"] for m in readings[:3]] == [0, 1, 2]
    assert all(qos == 1 for topic, _, qos in link.published)
    denied = await until(lambda: [e for e in events(core, PROBE) if e["event"] == "denied-publish"])
    assert denied[0]["result"] == "UnauthorizedError"
    assert all(topic == "probe/out" for topic, _, _ in link.published)  # nothing reached other/topic
    started = next(e for e in events(core, PROBE) if e["event"] == "started")
    assert started["thing"] == "fan-001"
    assert started["config"]["tag"] == "v1"
    denial_logs = [r.getMessage() for r in caplog.records if "other/topic" in r.getMessage()]
    assert any(PROBE in line and "PublishToIoTCore" in line for line in denial_logs), denial_logs
    core_log = core.layout.core_log.read_text()  # the core's own greengrass.log has the denial too
    assert "IPC call denied" in core_log and "other/topic" in core_log
    info = {c.name: c for c in core.components()}
    assert info[PROBE].state is ComponentState.RUNNING
    assert info["aws.greengrass.Nucleus"].state is ComponentState.FINISHED
    assert (core.layout.log_path(PROBE)).read_text().count("(lifecycle)") >= 3


async def test_configuration_change_reaches_the_running_component_without_restart(
    core: LocalCore, builds, recipe, link, events, until
) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    core.add_sources([builds.folder])
    assert (await core.deploy(deployment())).succeeded
    first = await until(lambda: [e for e in events(core, PROBE) if e["event"] == "started"])
    result = await core.deploy(deployment(merge={"tag": "v2"}))
    assert result.status == "SUCCESSFUL", result.detail
    update = await until(lambda: [e for e in events(core, PROBE) if e["event"] == "update"])
    assert update[0]["key_path"] == ["tag"]
    assert update[0]["config"]["tag"] == "v2"
    assert update[0]["pid"] == first[0]["pid"]  # the same process: no restart
    assert len([e for e in events(core, PROBE) if e["event"] == "started"]) == 1
    await until(lambda: any(m["tag"] == "v2" for m in link.messages("probe/out")))


async def test_upgrade_restarts_keeps_running_values_and_flags_stale_keys(
    core: LocalCore, builds, recipe, events, until
) -> None:
    builds.add(recipe(PROBE, "1.0.0", legacyTopic="fans/old"))
    v2 = recipe(PROBE, "2.0.0")
    builds.add(v2)
    core.add_sources([builds.folder])
    assert (await core.deploy(deployment("1.0.0", merge={"tag": "custom"}))).succeeded
    await until(lambda: events(core, PROBE))
    result = await core.deploy(deployment("2.0.0"))
    assert result.status == "SUCCESSFUL", result.detail
    starts = await until(
        lambda: len([e for e in events(core, PROBE) if e["event"] == "started"]) == 2 and events(core, PROBE)
    )
    pids = {e["pid"] for e in starts if e["event"] == "started"}
    assert len(pids) == 2  # a new version is a new process
    status = core.status()
    (probe,) = status["components"]
    assert probe["version"] == "2.0.0"
    assert probe["configuration"]["tag"] == "custom"  # the running value survived the upgrade
    assert probe["staleKeys"] == [
        {
            "pointer": "/legacyTopic",
            "value": "fans/old",
            "removeWith": {"configurationUpdate": {"reset": ["/legacyTopic"]}},
        }
    ]
    assert probe["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    cleaned = await core.deploy(deployment("2.0.0", reset=["/legacyTopic"]))
    assert cleaned.succeeded
    assert core.status()["components"][0]["staleKeys"] == []


async def test_a_broken_component_rolls_the_deployment_back(
    tmp_path: Path, builds, recipe, link, events, until
) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    builds.add(recipe(PROBE, "1.1.0", exitCode=3, count=1))  # publishes once, then exits 3: every time
    # The deployment must not settle while the probe's crash loop is under way: each run starts Python and
    # connects over IPC before it exits, which takes well over a second on a loaded two-core CI machine.
    core = LocalCore("fan-001", tmp_path / "fan-001", iot=link, stable_seconds=5.0)
    core.add_sources([builds.folder])
    await core.start()
    try:
        assert (await core.deploy(deployment("1.0.0", merge={"tag": "before"}))).succeeded
        result = await core.deploy(deployment("1.1.0", merge={"tag": "after"}))
        assert result.status == "FAILED_ROLLBACK_COMPLETE", result.detail
        assert "test.Probe" in result.detail and "BROKEN" in result.detail
        (probe,) = core.status()["components"]
        assert (probe["version"], probe["state"]) == ("1.0.0", "RUNNING")
        assert probe["configuration"]["tag"] == "before"  # configuration rolled back too
        log = core.layout.log_path(PROBE).read_text()
        assert log.count("run exited with 3") == 3
    finally:
        await core.stop()


async def test_do_nothing_leaves_the_broken_component(core: LocalCore, builds, recipe) -> None:
    builds.add(recipe(PROBE, "1.0.0", lifecycle={"Run": "echo failing >&2; exit 1"}))
    core.add_sources([builds.folder])
    result = await core.deploy(
        {**deployment(), "deploymentPolicies": {"failureHandlingPolicy": "DO_NOTHING"}}
    )
    assert result.status == "FAILED_ROLLBACK_NOT_REQUESTED"
    assert result.states == {PROBE: "BROKEN"}
    assert "exit code 1" in result.detail


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"components": {PROBE: {"componentVersion": "9.9.9"}}},
            "test.Probe 9.9.9 is not in the component store",
        ),
        (
            {"components": {PROBE: {"componentVersion": "1.0.0", "configurationUpdate": {"reset": ["x"]}}}},
            "JSON pointer",
        ),
        ({"components": {PROBE: {}}}, "componentVersion: missing"),
        ({"components": []}, "components: expected an object"),
        ({"components": {}, "failureHandlingPolicy": "PANIC"}, "ROLLBACK or DO_NOTHING"),
    ],
)
async def test_invalid_deployments_change_nothing(core: LocalCore, builds, recipe, document, message) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    core.add_sources([builds.folder])
    result = await core.deploy(document)
    assert result.status == "FAILED_NO_STATE_CHANGE"
    assert message in result.detail
    assert core.status()["components"] == []


async def test_dependencies_resolve_and_start_first(core: LocalCore, builds, recipe, until, events) -> None:
    builds.add(recipe("test.Base", "1.2.0"))
    builds.add(recipe("test.Base", "2.0.0"))
    builds.add(
        recipe(
            PROBE,
            "1.0.0",
            dependencies={
                "test.Base": {"VersionRequirement": "^1.0.0", "DependencyType": "HARD"},
                "aws.greengrass.Nucleus": {"VersionRequirement": ">=2.6.0 <3.0.0", "DependencyType": "SOFT"},
            },
            lifecycle={
                "Run": "echo base at {test.Base:artifacts:path} tag {test.Base:configuration:/tag}; sleep 30"
            },
        )
    )
    core.add_sources([builds.folder])
    result = await core.deploy(deployment())
    assert result.status == "SUCCESSFUL", result.detail
    status = {c["name"]: c for c in core.status()["components"]}
    assert status["test.Base"]["version"] == "1.2.0"  # the highest that ^1.0.0 allows
    assert status["test.Base"]["root"] is False
    log = core.layout.log_path(PROBE).read_text()
    assert f"base at {core.layout.artifact_path('test.Base', '1.2.0')} tag v1" in log
    # removing the root removes the dependency it brought
    assert (await core.deploy({"components": {}})).succeeded
    assert core.status()["components"] == []


async def test_unsatisfiable_dependency_and_cycles(core: LocalCore, builds, recipe) -> None:
    builds.add(recipe(PROBE, "1.0.0", dependencies={"test.Missing": {"VersionRequirement": ">=1.0.0"}}))
    builds.add(recipe("test.A", "1.0.0", dependencies={"test.B": {"VersionRequirement": "*"}}))
    builds.add(recipe("test.B", "1.0.0", dependencies={"test.A": {"VersionRequirement": "*"}}))
    builds.add(
        recipe("test.Old", "1.0.0", dependencies={"aws.greengrass.Nucleus": {"VersionRequirement": "<2.0.0"}})
    )
    core.add_sources([builds.folder])
    missing = await core.deploy(deployment())
    assert "test.Missing (>=1.0.0, a HARD dependency of test.Probe): no such version" in missing.detail
    cycle = await core.deploy({"components": {"test.A": {"componentVersion": "1.0.0"}}})
    assert "dependency cycle: test.A -> test.B -> test.A" in cycle.detail
    old = await core.deploy({"components": {"test.Old": {"componentVersion": "1.0.0"}}})
    assert "the local core is nucleus 2.15.0" in old.detail


async def test_restart_of_the_core_restores_components_and_configuration(
    tmp_path: Path, builds, recipe, link, events, until
) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    core = LocalCore("fan-002", tmp_path / "fan-002", iot=link, stable_seconds=0.2)
    core.add_sources([builds.folder])
    await core.start()
    assert (await core.deploy(deployment(merge={"tag": "kept"}))).succeeded
    await until(lambda: events(core, PROBE))
    await core.stop()
    again = LocalCore("fan-002", tmp_path / "fan-002", iot=link, stable_seconds=0.2)  # an empty store
    await again.start()
    try:
        (probe,) = again.status()["components"]
        assert (probe["version"], probe["state"], probe["configuration"]["tag"]) == (
            "1.0.0",
            "RUNNING",
            "kept",
        )
        await until(lambda: len([e for e in events(again, PROBE) if e["event"] == "started"]) == 2)
    finally:
        await again.stop()


async def test_status_names_what_will_not_work_as_meant(core: LocalCore, builds, recipe) -> None:
    access = {
        "aws.greengrass.ipc.mqttproxy": {
            f"{PROBE}:mqttproxy:1": {
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": ["fans/{iot:thingName}/out"],
            }
        }
    }
    lifecycle = {"Run": "echo {configuration:/tpyo}; sleep 30"}
    builds.add(recipe(PROBE, "1.0.0", accessControl=access, lifecycle=lifecycle))
    core.add_sources([builds.folder])
    assert (await core.deploy(deployment())).succeeded
    (probe,) = core.status()["components"]
    assert probe["problems"] == [
        "{configuration:/tpyo}: no configuration value at '/tpyo'",
        "accessControl resource 'fans/{iot:thingName}/out' never matches: "
        "set interpolateComponentConfiguration to true in aws.greengrass.Nucleus's configuration",
    ]
    assert "{configuration:/tpyo}" in core.layout.log_path(PROBE).read_text()  # the script saw it unchanged
    nucleus = {
        "componentVersion": "2.15.0",
        "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
    }
    assert (await core.deploy(deployment(components={"aws.greengrass.Nucleus": nucleus}))).succeeded
    (probe,) = core.status()["components"]
    policy = probe["accessControl"]["aws.greengrass.ipc.mqttproxy"][f"{PROBE}:mqttproxy:1"]
    assert policy["resources"] == ["fans/fan-001/out"]
    assert probe["problems"] == ["{configuration:/tpyo}: no configuration value at '/tpyo'"]


async def test_a_change_to_a_value_the_lifecycle_uses_restarts_the_component(
    core: LocalCore, builds, recipe
) -> None:
    builds.add(recipe(PROBE, "1.0.0", lifecycle={"Run": "echo tag is {configuration:/tag}; sleep 30"}))
    core.add_sources([builds.folder])
    assert (await core.deploy(deployment())).succeeded
    assert (await core.deploy(deployment(merge={"tag": "v2"}))).succeeded
    log = core.layout.log_path(PROBE).read_text()
    assert "tag is v1" in log and "tag is v2" in log  # the script itself changed: a restart, as on a device
    assert log.count("STARTING -> RUNNING") == 2


async def test_a_bad_artifact_is_found_before_any_running_component_is_stopped(
    core: LocalCore, builds, recipe, events, until
) -> None:
    """Issue 14: the deployment stopped the running version first, then found the bad artifact and
    rolled back; the docs say nothing is touched before the plan passes."""
    builds.add(recipe(PROBE, "1.0.0"))
    bad = recipe(PROBE, "2.0.0")
    bad["Manifests"][0]["Artifacts"][0].update({"Digest": "AAAA", "Algorithm": "SHA-256"})
    builds.add(bad)
    core.add_sources([builds.folder])
    assert (await core.deploy(deployment("1.0.0"))).succeeded
    await until(lambda: [e for e in events(core, PROBE) if e["event"] == "started"])
    result = await core.deploy(deployment("2.0.0"))
    assert result.status == "FAILED_NO_STATE_CHANGE", result.detail
    assert "does not match its recipe Digest" in result.detail
    (probe,) = core.status()["components"]
    assert (probe["version"], probe["state"]) == ("1.0.0", "RUNNING")
    assert [e["event"] for e in events(core, PROBE)].count("started") == 1  # never stopped, never restarted


async def test_a_build_folder_moved_away_is_skipped_with_a_warning(
    core: LocalCore, builds, recipe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: a source given once stayed required: every deployment failed until it came back."""
    builds.add(recipe(PROBE, "1.0.0"))
    other = type(builds)(tmp_path / "other-build")
    other.add(recipe("test.Other", "1.0.0"))
    core.add_sources([builds.folder, other.folder])
    assert (await core.deploy(deployment("1.0.0"))).succeeded
    other.folder.rename(tmp_path / "moved-away")
    caplog.set_level(logging.WARNING)
    result = await core.deploy(deployment("1.0.0", merge={"tag": "again"}))
    assert result.succeeded, result.detail
    assert any("other-build" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records)
