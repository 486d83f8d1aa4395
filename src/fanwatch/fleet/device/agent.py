"""The cloud side of a local core: what the nucleus' deployment and fleet status services do on a device.

A :class:`DeviceAgent` runs beside a :class:`~fanwatch.core.runtime.LocalCore` and talks to the
Greengrass service (AWS's or the local control plane) the way a core device does:

- it takes the next deployment job from the IoT jobs data plane, fetches the deployment
  (``GetDeployment``), downloads the component versions it names (``GetComponent``, artifacts from
  S3; the core checks their digests) and applies it to the core;
- it merges deployments as the nucleus does: the device keeps the root components of the last
  deployment of each *group* (each thing group it belongs to, its own thing, a subdeployment counting
  as its parent's group), a new deployment replaces its group's components and keeps the others', and
  two groups that ask for different versions of one component fail the deployment with the nucleus'
  words ("version constraints: thinggroup/A requires =1.0.0, thinggroup/B requires =2.0.0");
  groups the thing has left lose their components at the next deployment;
- it reports the job's outcome with the nucleus' status details (``detailed-deployment-status``,
  ``deployment-failure-cause``) and publishes *fleet status* messages (when it starts, after each
  deployment, when a component becomes BROKEN, and every ``status_interval`` of fleet time).

It keeps what it must remember (each group's components, the message sequence number) in
``fleet-agent.json`` in the core's folder, so a restarted device carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.core.deployment import Requirement, Version
from fanwatch.core.deployment.document import DetailedDeploymentStatus
from fanwatch.core.ports import ComponentState
from fanwatch.core.runtime import NUCLEUS_VERSION, LocalCore
from fanwatch.errors import FanwatchError
from fanwatch.fleet.arns import TargetArn, component_arn, component_version_arn
from fanwatch.fleet.controlplane.devices import FLEET_STATUS_TOPIC
from fanwatch.fleet.states import DeviceHealth, ExecutionStatus
from fanwatch.fleet.timescale import TimeScale
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = ["AgentClients", "DeviceAgent"]

log = logging.getLogger(__name__)

#: The nucleus publishes its fleet status every 24 h unless configured otherwise.
DEFAULT_STATUS_INTERVAL: Final = 86_400.0
_UNHEALTHY: Final = frozenset({ComponentState.BROKEN, ComponentState.ERRORED})
_STATE_FILE: Final = "fleet-agent.json"


@dataclass(frozen=True, slots=True)
class AgentClients:
    """boto3 clients the agents of one fleet share (clients are thread-safe; making one is slow)."""

    greengrass: Any
    jobs: Any
    iot_data: Any
    iot: Any
    s3: Any
    region: str
    account: str


class DeploymentFailure(FanwatchError):
    """A deployment the device could not apply; ``status`` is the nucleus' detailed status."""

    def __init__(self, status: DetailedDeploymentStatus, cause: str, errors: list[str] | None = None) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause
        self.errors = errors or []


class DeviceAgent:
    """Deployments in, status out, for one core; ``await agent.run()`` until cancelled."""

    def __init__(
        self,
        core: LocalCore,
        clients: AgentClients,
        *,
        scale: TimeScale | None = None,
        poll_seconds: float = 0.5,
        status_interval: float = DEFAULT_STATUS_INTERVAL,
    ) -> None:
        self.core = core
        self.thing = core.thing_name
        self._clients = clients
        self._scale = scale or TimeScale()
        self._poll = poll_seconds
        self._status_interval = status_interval  # fleet seconds
        self._downloads = core.layout.root / "fleet-downloads"
        self._state_file = core.layout.root / _STATE_FILE
        state = self._load()
        self._groups: dict[str, dict[str, Any]] = state.get("groups", {})
        self._sequence = int(state.get("sequence", 0))
        self._last_report: tuple[Any, ...] | None = None
        self._last_sent = 0.0
        self._lock = asyncio.Lock()

    # -- persistence ----------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            log.error(
                "%s: cannot read %s (%s): starting without group state", self.thing, self._state_file, exc
            )
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"groups": self._groups, "sequence": self._sequence}, indent=2))
        temporary.replace(self._state_file)

    # -- the loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        (self._downloads / "recipes").mkdir(parents=True, exist_ok=True)
        (self._downloads / "artifacts").mkdir(parents=True, exist_ok=True)
        self.core.add_sources([self._downloads])
        watcher = asyncio.create_task(self._watch(), name=f"fleet-status-{self.thing}")
        try:
            await self._report("NUCLEUS_LAUNCH")
            while True:
                try:
                    await self._next_job()
                except (ClientError, BotoCoreError) as exc:
                    log.warning("%s: the Greengrass service did not answer: %s", self.thing, exc)
                await asyncio.sleep(self._poll)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        """Report when a component becomes BROKEN or the device's health changes, and on the cadence."""
        while True:
            await asyncio.sleep(min(self._poll, 0.25))
            broken = {c.name for c in self.core.components() if c.state is ComponentState.BROKEN}
            previous = self._last_report
            was_broken = {
                n for n, _, s in (previous[1] if previous else ()) if s == ComponentState.BROKEN.value
            }
            due = self._scale.fleet(time.monotonic() - self._last_sent) >= self._status_interval
            try:
                if broken - was_broken:
                    await self._report("BROKEN_COMPONENT")
                elif due:
                    await self._report("CADENCE")
            except (ClientError, BotoCoreError) as exc:
                log.warning("%s: fleet status not sent: %s", self.thing, exc)

    async def _next_job(self) -> None:
        jobs = self._clients.jobs
        started = await asyncio.to_thread(jobs.start_next_pending_job_execution, thingName=self.thing)
        execution = started.get("execution")
        if not execution:
            return
        job_id = execution["jobId"]
        deployment_id = json.loads(execution["jobDocument"])["deploymentId"]
        deployment = await asyncio.to_thread(
            self._clients.greengrass.get_deployment, deploymentId=deployment_id
        )
        target = TargetArn.parse(deployment["targetArn"])
        group = (
            TargetArn.parse(deployment["parentTargetArn"]) if deployment.get("parentTargetArn") else target
        )
        log.info(
            "%s: deployment %s (%s) for %s",
            self.thing,
            deployment_id,
            deployment.get("deploymentName"),
            group.short,
        )
        async with self._lock:
            try:
                status, cause = await self._apply(deployment, group)
                errors: list[str] = []
            except DeploymentFailure as failure:
                status, cause, errors = failure.status, failure.cause, failure.errors
        details = {"detailed-deployment-status": status}
        if cause:
            details["deployment-failure-cause"] = cause[:1000]
        if errors:
            details["deployment-error-stack"] = f"[{', '.join(errors)}]"
        succeeded = status == DetailedDeploymentStatus.SUCCESSFUL
        job_status = ExecutionStatus.SUCCEEDED if succeeded else ExecutionStatus.FAILED
        await asyncio.to_thread(
            jobs.update_job_execution,
            thingName=self.thing,
            jobId=job_id,
            status=job_status,
            statusDetails=details,
        )
        log.info("%s: deployment %s %s %s", self.thing, deployment_id, status, cause)
        trigger = "THING_GROUP_DEPLOYMENT" if group.is_group else "THING_DEPLOYMENT"
        await self._report(trigger, deployment=deployment, status=job_status, detailed=status, cause=cause)

    # -- applying a deployment ------------------------------------------------------------------------

    async def _apply(self, deployment: Mapping[str, Any], group: TargetArn) -> tuple[str, str]:
        requested: dict[str, Any] = dict(deployment.get("components") or {})
        member_of = await asyncio.to_thread(self._memberships)
        others = {
            key: entry
            for key, entry in self._groups.items()
            if key != group.short
            and (key == f"thing/{self.thing}" or key.removeprefix("thinggroup/") in member_of)
        }
        conflicts = []
        for name, spec in requested.items():
            for key, entry in sorted(others.items()):
                pinned = entry["components"].get(name)
                if pinned is not None and pinned != spec["componentVersion"]:
                    conflicts.append(
                        f"Component {name} version constraints: {key} requires ={pinned}, "
                        f"{group.short} requires ={spec['componentVersion']}."
                    )
        if conflicts:
            raise DeploymentFailure(
                DetailedDeploymentStatus.FAILED_NO_STATE_CHANGE,
                "No local or cloud component version satisfies the requirements. " + " ".join(conflicts),
                ["DEPLOYMENT_FAILURE", "NO_AVAILABLE_COMPONENT_VERSION"],
            )
        for name, spec in requested.items():
            if name != NUCLEUS_COMPONENT:
                await asyncio.to_thread(self._download, name, str(spec["componentVersion"]))
        components: dict[str, Any] = {}
        for entry in others.values():
            for name, version in entry["components"].items():
                components[name] = {"componentVersion": version}
        components.update(requested)
        policies = deployment.get("deploymentPolicies") or {}
        document = {
            "deploymentId": deployment["deploymentId"],
            "components": components,
            "deploymentPolicies": {
                "failureHandlingPolicy": policies.get("failureHandlingPolicy", "ROLLBACK")
            },
        }
        result = await self.core.deploy(document)
        if result.status != DetailedDeploymentStatus.SUCCESSFUL:
            errors = ["DEPLOYMENT_FAILURE"]
            if "BROKEN" in result.detail:
                errors.append("COMPONENT_BROKEN")
            raise DeploymentFailure(result.status, result.detail, errors)
        self._groups = {key: entry for key, entry in self._groups.items() if key in others}
        self._groups[group.short] = {
            "deploymentId": deployment["deploymentId"],
            "revision": str(deployment.get("revisionId", "1")),
            "components": {name: str(spec["componentVersion"]) for name, spec in requested.items()},
        }
        self._save()
        return DetailedDeploymentStatus.SUCCESSFUL, ""

    def _memberships(self) -> set[str]:
        """The thing groups this thing is in now, with their ancestors (ListThingGroupsForCoreDevice)."""
        iot = self._clients.iot
        groups: set[str] = set()
        for page in iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=self.thing):
            groups.update(g["groupName"] for g in page.get("thingGroups", []))
        for group in list(groups):
            described = iot.describe_thing_group(thingGroupName=group)
            for ancestor in (described.get("thingGroupMetadata") or {}).get("rootToParentThingGroups", []):
                groups.add(ancestor["groupName"])
        return groups

    def _download(self, name: str, version: str) -> None:
        """The component version's recipe and artifacts into the core's download folder (a gdk-style
        build folder the core's store reads), and the same for its dependencies."""
        recipe_file = self._downloads / "recipes" / f"{name}-{version}.json"
        if recipe_file.exists():
            return
        account = self._clients.account
        greengrass = self._clients.greengrass
        try:
            answer = greengrass.get_component(
                arn=component_version_arn(self._clients.region, account, name, version),
                recipeOutputFormat="JSON",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            raise DeploymentFailure(
                DetailedDeploymentStatus.FAILED_NO_STATE_CHANGE,
                f"No local or cloud component version satisfies the requirements. "
                f"Check whether the component exists in your AWS account: {name} requires ={version}.",
                ["DEPLOYMENT_FAILURE", "NO_AVAILABLE_COMPONENT_VERSION"],
            ) from None
        recipe = json.loads(answer["recipe"])
        folder = self._downloads / "artifacts" / name / version
        folder.mkdir(parents=True, exist_ok=True)
        for manifest in _field(recipe, "Manifests") or []:
            for artifact in _field(manifest, "Artifacts") or []:
                uri = str(_field(artifact, "URI") or "")
                if not uri.startswith("s3://"):
                    continue
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                target = folder / key.rsplit("/", 1)[-1]
                if not target.exists():
                    try:
                        self._clients.s3.download_file(bucket, key, str(target))
                    except (ClientError, BotoCoreError) as exc:
                        raise DeploymentFailure(
                            DetailedDeploymentStatus.FAILED_NO_STATE_CHANGE,
                            f"{name} {version}: cannot download {uri}: {exc}",
                            ["DEPLOYMENT_FAILURE", "S3_RESOURCE_NOT_FOUND"],
                        ) from None
        for dependency, spec in (_field(recipe, "ComponentDependencies") or {}).items():
            if dependency == NUCLEUS_COMPONENT:
                continue
            requirement = Requirement(str(_field(spec, "VersionRequirement") or "*"))
            listed = greengrass.list_component_versions(
                arn=component_arn(self._clients.region, account, dependency)
            )
            allowed = [
                v["componentVersion"]
                for v in listed["componentVersions"]
                if requirement.allows(v["componentVersion"])
            ]
            if allowed:
                self._download(dependency, str(max(allowed, key=Version.parse)))
        recipe_file.write_text(json.dumps(recipe, indent=2))  # last: its presence means "complete"

    # -- fleet status ---------------------------------------------------------------------------------

    async def _report(self, trigger: str, **deployment: Any) -> None:
        roots = {name for entry in self._groups.values() for name in entry["components"]}
        sources = {
            name: f"arn:aws:greengrass:{self._clients.region}:{self._clients.account}:configuration:"
            f"{key}:{entry.get('revision', '1')}"
            for key, entry in self._groups.items()
            for name in entry["components"]
        }
        infos = self.core.components()
        healthy = not any(c.state in _UNHEALTHY for c in infos)
        components = [
            {
                "componentName": c.name,
                "version": NUCLEUS_VERSION if c.name == NUCLEUS_COMPONENT else c.version,
                "status": c.state.value,
                "isRoot": c.name in roots,
                "fleetConfigArns": [sources[c.name]] if c.name in sources else [],
                "statusDetails": {
                    "statusCodes": ["RUN_ERROR"] if c.state is ComponentState.BROKEN else [],
                    "statusReason": "",
                },
            }
            for c in infos
        ]
        self._sequence += 1
        message: dict[str, Any] = {
            "ggcVersion": NUCLEUS_VERSION,
            "platform": str(self.core.platform.get("os", "linux")),
            "architecture": str(self.core.platform.get("architecture", "amd64")),
            "runtime": "aws_nucleus_classic",
            "thing": self.thing,
            "sequenceNumber": self._sequence,
            "timestamp": int(time.time() * 1000),
            "messageType": "COMPLETE",
            "trigger": trigger,
            "overallDeviceStatus": DeviceHealth.HEALTHY if healthy else DeviceHealth.UNHEALTHY,
            "components": components,
        }
        if deployment:
            info = deployment["deployment"]
            message["deploymentInformation"] = {
                "status": deployment["status"],
                "deploymentId": info["deploymentId"],
                "statusDetails": {
                    "detailedStatus": deployment["detailed"],
                    "failureCause": deployment["cause"],
                },
            }
        self._save()
        self._last_report = (
            healthy,
            tuple((c["componentName"], c["version"], c["status"]) for c in components),
        )
        self._last_sent = time.monotonic()
        await asyncio.to_thread(
            self._clients.iot_data.publish,
            topic=FLEET_STATUS_TOPIC.format(thing=self.thing),
            qos=1,
            payload=json.dumps(message).encode(),
        )


def _field(data: object, name: str) -> Any:
    if not isinstance(data, Mapping):
        return None
    return next((v for k, v in data.items() if str(k).lower() == name.lower()), None)
