"""``fanwatch fleet deploy`` and ``rollback``: a canary first, then the thing group, watching devices.

A deployment goes out in two stages when a canary is given:

1. **Canary.** A thing group inside the fleet's group (``--canary G``, or ``--canary-percent N``, which
   puts N % of the group's things into ``<group>-canary``) gets the deployment as a *subdeployment*
   of the group, so its devices file it under the group's own deployment and nothing conflicts on
   them. A canary group outside the fleet's group gets an ordinary deployment. The command waits until
   every canary device ran its job and reported SUCCEEDED, then *soaks*: each must stay HEALTHY, with
   no component BROKEN, for ``--soak``. If a job fails, a device turns UNHEALTHY, or the canary does not
   finish in ``--timeout``, the canary gets the group's current deployment back, the rollout stops and
   the group is never touched.
2. **Group.** The group gets the deployment, rolled out by its IoT job (exponential rate, abort
   criteria, per-device timeout: :mod:`.deployment_file`). The command follows it until every device
   finished or the job aborted.

``rollback --group G`` deploys the group's previous deployment again: the newest earlier one that asked
for something else and was not aborted.

Durations are in fleet time (:class:`~fanwatch.fleet.timescale.TimeScale`); the command polls the
service every ``poll`` wall seconds and prints a line whenever the picture changes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.core.lifecycle.states import FAILING
from fanwatch.fleet.api import FleetApi, FleetError
from fanwatch.fleet.deployment_file import DeploymentFile
from fanwatch.fleet.states import FAILED_EXECUTIONS, DeploymentStatus, DeviceHealth, ExecutionStatus
from fanwatch.fleet.timescale import TimeScale

__all__ = ["Deployer", "Outcome", "StageReport"]

_COPIED: Final = ("components", "deploymentPolicies", "iotJobConfiguration")


@dataclass(frozen=True, slots=True)
class StageReport:
    """Where one stage's devices are: job status per device and device health."""

    jobs: Mapping[str, str]  # thing -> SUCCEEDED | FAILED | IN_PROGRESS | QUEUED | WAITING ...
    health: Mapping[str, str]  # thing -> HEALTHY | UNHEALTHY | UNKNOWN
    reasons: Mapping[str, str]  # thing -> why its job failed, with its BROKEN components
    status: str  # the deployment's status

    def counts(self) -> Counter[str]:
        return Counter(self.jobs.values())

    def line(self) -> str:
        counts = self.counts()
        parts = [f"{counts[s]} {s.lower().replace('_', ' ')}" for s in sorted(counts)]
        unhealthy = sorted(t for t, h in self.health.items() if h == DeviceHealth.UNHEALTHY)
        tail = f"; UNHEALTHY: {', '.join(unhealthy)}" if unhealthy else ""
        return f"{len(self.jobs)} devices: {', '.join(parts)}{tail}"


@dataclass(slots=True)
class Outcome:
    """How a rollout or rollback ended, in a sentence, with the deployments it created."""

    ok: bool
    message: str
    deployments: list[str] = field(default_factory=list)


class Deployer:
    """Runs ``deploy`` and ``rollback`` as the module docstring describes, against a
    :class:`~fanwatch.fleet.api.FleetApi`; ``say`` prints its progress, ``sleep`` and ``clock`` let a
    test run it without waiting."""

    def __init__(
        self,
        api: FleetApi,
        *,
        scale: TimeScale | None = None,
        poll: float = 1.0,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.scale = scale or TimeScale()
        self.poll = poll
        self.say = say
        self._sleep = sleep
        self._clock = clock

    # -- checks before anything changes -------------------------------------------------------------

    def check(self, file: DeploymentFile) -> None:
        """Every component of the file is published (in the account, or public)."""
        missing = []
        for name, spec in sorted(file.components.items()):
            version = str(spec["componentVersion"])
            if not self.api.component_exists(name, version):
                have = self.api.versions(name)
                known = f"published: {', '.join(have[:5])}" if have else "no version of it is published"
                missing.append(f"{name} {version} is not published in {self.api.region} ({known})")
        if missing:
            raise FleetError(f"{file.path}: nothing deployed:\n  " + "\n  ".join(missing))

    def _canary_group(
        self, group: str, canary: str | None, percent: float | None, members: list[str]
    ) -> str | None:
        if canary and percent is not None:
            raise FleetError("give --canary or --canary-percent, not both")
        if percent is None:
            return canary
        if not 0 < percent < 100:
            raise FleetError(f"--canary-percent must be between 0 and 100, got {percent:g}")
        count = max(1, math.ceil(len(members) * percent / 100))
        step = len(members) / count
        chosen = [members[int(i * step)] for i in range(count)]  # spread over the group, same each time
        name = f"{group}-canary"
        self.api.set_members(name, chosen)
        self.say(f"canary {name}: {', '.join(chosen)} ({percent:g} % of {group})")
        return name

    # -- deploy ---------------------------------------------------------------------------------------

    def deploy(
        self,
        file: DeploymentFile,
        group: str,
        *,
        canary: str | None = None,
        canary_percent: float | None = None,
        soak: float = 600.0,
        timeout: float = 1800.0,
    ) -> Outcome:
        group_arn = self.api.group_arn(group)
        self.check(file)
        members = self.api.members(group)
        if not members:
            raise FleetError(f"thing group {group!r} has no things: nothing to deploy to")
        canary = self._canary_group(group, canary, canary_percent, members)
        created: list[str] = []
        if canary:
            canary_arn = self.api.group_arn(canary)
            canary_things = self.api.members(canary)
            if not canary_things:
                raise FleetError(f"canary group {canary!r} has no things")
            inside = set(canary_things) <= set(members)
            outside = not set(canary_things) & set(members)
            if not (inside or outside):
                stray = sorted(set(canary_things) - set(members))
                raise FleetError(
                    f"canary group {canary!r} is partly inside {group!r}: {', '.join(stray)} are not in it. "
                    "Use a canary group inside the fleet's group (a subdeployment) or wholly outside it"
                )
            parent = self.api.latest(group_arn) if inside else None
            if inside and parent is None:
                raise FleetError(
                    f"{group!r} has no deployment yet, so a canary inside it has nothing to fall back to: "
                    "deploy to the group once without a canary"
                )
            request = file.request(canary_arn, parent_arn=group_arn if inside else None)
            request["deploymentName"] = f"{request['deploymentName']} (canary)"
            previous = parent if inside else self.api.latest(canary_arn)
            deployment_id = self.api.create(request)
            created.append(deployment_id)
            self.say(f"canary {canary}: deployment {deployment_id} to {len(canary_things)} devices")
            failure = self._watch(
                deployment_id, canary_things, canary_arn, f"canary {canary}", timeout=timeout, soak=soak
            )
            if failure is not None:
                self.say(f"canary {canary} failed: {failure}")
                rolled = self._restore(
                    canary_arn, group_arn if inside else None, previous, canary_things, timeout
                )
                created += rolled
                return Outcome(
                    False, f"the rollout stopped at the canary ({failure}); {group} was not touched", created
                )
        deployment_id = self.api.create(file.request(group_arn))
        created.append(deployment_id)
        self.say(f"group {group}: deployment {deployment_id} to {len(members)} devices")
        failure = self._follow_group(deployment_id, group, group_arn, members, timeout)
        if failure is not None:
            return Outcome(False, f"{group}: {failure}", created)
        return Outcome(True, f"{group}: every device runs {file.path.name}", created)

    def _restore(
        self,
        target_arn: str,
        parent_arn: str | None,
        previous: Mapping[str, Any] | None,
        things: list[str],
        timeout: float,
    ) -> list[str]:
        """Give the canary what it ran before (the group's deployment, or its own previous one)."""
        if previous is None:
            self.say("the canary had no deployment before: nothing to restore")
            return []
        request: dict[str, Any] = {key: previous[key] for key in _COPIED if key in previous}
        request.update(
            targetArn=target_arn,
            deploymentName=f"{previous.get('deploymentName') or 'previous'} (canary rollback)",
        )
        if parent_arn:
            request["parentTargetArn"] = parent_arn
        deployment_id = self.api.create(request)
        self.say(f"canary: rolling back with deployment {deployment_id} ({_versions(previous)})")
        failure = self._watch(deployment_id, things, target_arn, "canary rollback", timeout=timeout, soak=0.0)
        self.say(f"canary rollback: {'done' if failure is None else failure}")
        return [deployment_id]

    # -- rollback -------------------------------------------------------------------------------------

    def rollback(self, group: str, *, timeout: float = 1800.0) -> Outcome:
        group_arn = self.api.group_arn(group)
        history = [d for d in self.api.deployments(group_arn) if "parentTargetArn" not in d]
        if not history:
            raise FleetError(f"{group!r} has no deployment to roll back")
        current = self.api.deployment(history[0]["deploymentId"])
        previous = None
        for summary in history[1:]:
            candidate = self.api.deployment(summary["deploymentId"])
            if candidate["deploymentStatus"] != "FAILED" and candidate.get("components") != current.get(
                "components"
            ):
                previous = candidate
                break
        if previous is None:
            raise FleetError(f"{group!r} has no earlier deployment that asked for something else")
        file = (previous.get("tags") or {}).get("fanwatch:file", previous.get("deploymentName", "?"))
        request: dict[str, Any] = {key: previous[key] for key in _COPIED if key in previous}
        tags = {**(previous.get("tags") or {}), "fanwatch:rollback-of": current["deploymentId"]}
        request.update(
            targetArn=group_arn, deploymentName=f"{previous.get('deploymentName')} (rollback)", tags=tags
        )
        self.say(
            f"{group}: rolling back from {_versions(current)} to {_versions(previous)} "
            f"({file}, deployment {previous['deploymentId']})"
        )
        deployment_id = self.api.create(request)
        failure = self._follow_group(deployment_id, group, group_arn, self.api.members(group), timeout)
        if failure is not None:
            return Outcome(False, f"{group}: rollback {failure}", [deployment_id])
        return Outcome(True, f"{group}: back on {file}", [deployment_id])

    # -- watching -------------------------------------------------------------------------------------

    def report(self, deployment_id: str, things: Sequence[str], group_arn: str) -> StageReport:
        jobs: dict[str, str] = {}
        reasons: dict[str, str] = {}
        known = self.api.health(group_arn)
        health = {thing: known.get(thing, "UNKNOWN") for thing in things}
        deployment = self.api.deployment(deployment_id)
        reached = self.api.job_statuses(deployment["iotJobId"])  # two listings, however large the fleet
        for thing in things:
            jobs[thing] = reached.get(thing, "WAITING")
            # the few that need the details
            if jobs[thing] in FAILED_EXECUTIONS or health[thing] == DeviceHealth.UNHEALTHY:
                entry = next(
                    (e for e in self.api.effective(thing) if e["deploymentId"] == deployment_id), None
                )
                broken = [
                    f"{c['componentName']} {c['componentVersion']} {c['lifecycleState']}"
                    for c in self.api.installed(thing)
                    if c.get("lifecycleState") in FAILING
                ]
                reason = (entry or {}).get("reason", "")
                reasons[thing] = "; ".join(x for x in (reason, ", ".join(broken)) if x)
        return StageReport(jobs, health, reasons, deployment["deploymentStatus"])

    def _follow_group(
        self, deployment_id: str, group: str, group_arn: str, members: Sequence[str], timeout: float
    ) -> str | None:
        """A group's deployment to its end: every device, not only the first failure (the job's abort
        criteria decide when to stop)."""
        label = f"group {group}"
        return self._watch(
            deployment_id, members, group_arn, label, timeout=timeout, soak=0.0, stop_on_failure=False
        )

    def _watch(
        self,
        deployment_id: str,
        things: Sequence[str],
        group_arn: str,
        label: str,
        *,
        timeout: float,
        soak: float,
        stop_on_failure: bool = True,
    ) -> str | None:
        """None once every device succeeded (and stayed healthy for ``soak``), else what went wrong."""
        start = self._clock()
        soak_start: float | None = None
        last_line = ""
        while True:
            report = self.report(deployment_id, things, group_arn)
            now = self._clock()
            failed = {t: s for t, s in report.jobs.items() if s in FAILED_EXECUTIONS}
            unhealthy = sorted(
                t
                for t, h in report.health.items()
                if h == DeviceHealth.UNHEALTHY and report.jobs[t] == ExecutionStatus.SUCCEEDED
            )
            done = all(s == ExecutionStatus.SUCCEEDED for s in report.jobs.values())
            line = f"{label}: {report.line()}"
            if soak_start is not None:
                line += f"; soak {_fleet(self.scale.fleet(now - soak_start))} of {_fleet(soak)}"
            if line != last_line or soak_start is not None:
                self.say(line)
                last_line = line
            if failed and (
                stop_on_failure
                or all(s in FAILED_EXECUTIONS | {ExecutionStatus.SUCCEEDED} for s in report.jobs.values())
            ):
                detail = "; ".join(
                    f"{t} {s}: {report.reasons.get(t, '')}".rstrip(": ") for t, s in sorted(failed.items())
                )
                return f"{len(failed)} of {len(things)} devices failed ({detail})"
            if report.status in {DeploymentStatus.FAILED, DeploymentStatus.CANCELED}:
                return f"the deployment is {report.status} (its job stopped: abort criteria or a cancel)"
            if unhealthy:
                detail = "; ".join(f"{t}: {report.reasons.get(t, 'UNHEALTHY')}" for t in unhealthy)
                return f"{len(unhealthy)} devices turned UNHEALTHY after the deployment ({detail})"
            if done:
                if soak <= 0:
                    return None
                soak_start = soak_start if soak_start is not None else now
                if self.scale.fleet(now - soak_start) >= soak:
                    self.say(f"{label}: every device stayed HEALTHY for {_fleet(soak)}")
                    return None
            elif soak_start is not None:
                return "a device's job changed during the soak"
            if self.scale.fleet(now - start) > timeout:
                waiting = ", ".join(
                    f"{t} {s}" for t, s in sorted(report.jobs.items()) if s != ExecutionStatus.SUCCEEDED
                )
                return f"not finished within {_fleet(timeout)} ({waiting})"
            self._sleep(self.poll)


def _fleet(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.0f}s"


def _versions(deployment: Mapping[str, Any]) -> str:
    components = deployment.get("components") or {}
    return ", ".join(
        f"{n} {s.get('componentVersion')}" for n, s in sorted(components.items()) if not n.startswith("aws.")
    )
