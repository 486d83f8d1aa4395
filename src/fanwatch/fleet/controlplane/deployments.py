"""Deployments and the IoT jobs that carry them to devices, as the Greengrass service keeps them.

One deployment per target: a new deployment to a thing or thing group replaces the previous one
(``isLatestForTarget`` moves, the old one becomes INACTIVE and its job is cancelled for devices that
have not started it). A *subdeployment* (``parentTargetArn``) targets a thing group inside the parent's
fleet; devices treat it as a revision of the parent group's deployment, so a canary inside the fleet
group does not conflict with the fleet's own deployment. A new deployment to the parent replaces its
subdeployments too.

Each deployment has a job with one execution per device of the target (the target's members when it
was created, and any device that joins later: deployments to groups are continuous). Executions are
held back by the rollout (:mod:`.rollout`) until notified; devices see notified executions through
the IoT jobs data plane (:meth:`pending`, :meth:`start_next`, :meth:`update`).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.fleet.arns import TargetArn
from fanwatch.fleet.controlplane.registry import IotRegistry
from fanwatch.fleet.controlplane.restjson import ApiError
from fanwatch.fleet.controlplane.rollout import AbortCriterion, Rollout, abort_reason
from fanwatch.fleet.states import TERMINAL, DeploymentStatus, ExecutionStatus
from fanwatch.fleet.timescale import TimeScale

__all__ = ["Deployment", "DeploymentBook", "Execution"]

#: What GetDeployment shows for policies the request left out (the service's defaults).
DEFAULT_POLICIES: Final[dict[str, Any]] = {
    "failureHandlingPolicy": "ROLLBACK",
    "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
    "configurationValidationPolicy": {"timeoutInSeconds": 30},
}


@dataclass(slots=True)
class Execution:
    """One device's part of a deployment's job. Until the rollout notifies its device it is only a
    place in the queue: the device, ListEffectiveDeployments and the jobs data plane do not see it."""

    thing: str
    queued_at: float
    status: ExecutionStatus = ExecutionStatus.QUEUED
    notified: bool = False  # the rollout let the device see it
    started_at: float | None = None
    updated_at: float = 0.0
    details: dict[str, str] = field(default_factory=dict)
    version: int = 1

    def summary(self, job_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": job_id,
            "queuedAt": int(self.queued_at),
            "lastUpdatedAt": int(self.updated_at or self.queued_at),
            "versionNumber": self.version,
            "executionNumber": 1,
        }
        if self.started_at is not None:
            out["startedAt"] = int(self.started_at)
        return out


@dataclass(slots=True)
class Deployment:
    """A deployment to a thing or thing group as the control plane keeps it: what it asks for, how it rolls
    out, and the IoT job that carries it."""

    deployment_id: str
    name: str
    target: TargetArn
    parent: TargetArn | None
    components: dict[str, Any]
    policies: dict[str, Any]
    job_configuration: dict[str, Any]
    created: float
    revision: int
    tags: dict[str, str]
    job_id: str
    job_arn: str
    rollout: Rollout
    abort: list[AbortCriterion]
    timeout_minutes: float | None
    status: DeploymentStatus = DeploymentStatus.ACTIVE
    latest: bool = True
    executions: dict[str, Execution] = field(default_factory=dict)
    ended_because: str = ""

    @property
    def group_key(self) -> TargetArn:
        """The target a device files this deployment under: the parent group for a subdeployment."""
        return self.parent or self.target

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "targetArn": self.target.arn,
            "revisionId": str(self.revision),
            "deploymentId": self.deployment_id,
            "deploymentName": self.name,
            "deploymentStatus": self.status.value,
            "iotJobId": self.job_id,
            "iotJobArn": self.job_arn,
            "components": copy.deepcopy(self.components),
            "deploymentPolicies": copy.deepcopy(self.policies),
            "iotJobConfiguration": copy.deepcopy(self.job_configuration),
            "creationTimestamp": dt.datetime.fromtimestamp(self.created, dt.UTC),
            "isLatestForTarget": self.latest,
        }
        if self.parent is not None:
            out["parentTargetArn"] = self.parent.arn
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    def summary(self) -> dict[str, Any]:
        full = self.describe()
        keys = ("targetArn", "revisionId", "deploymentId", "deploymentName", "creationTimestamp")
        out = {k: full[k] for k in keys}
        out.update(deploymentStatus=self.status.value, isLatestForTarget=self.latest)
        if self.parent is not None:
            out["parentTargetArn"] = self.parent.arn
        return out


class DeploymentBook:
    """Every deployment of the account, with its job; thread-safe."""

    def __init__(
        self,
        *,
        region: str,
        account: str,
        registry: IotRegistry,
        scale: TimeScale,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.region = region
        self.account = account
        self._registry = registry
        self._scale = scale
        self._clock = clock
        self._lock = threading.RLock()
        self._deployments: dict[str, Deployment] = {}
        self._by_token: dict[str, str] = {}
        self._revisions: dict[str, int] = {}
        self._sub_parents: dict[str, str] = {}  # subdeployment group ARN -> its parent's ARN

    # -- the control plane API ------------------------------------------------------------------------

    def create(self, request: Mapping[str, Any]) -> Deployment:
        token = request.get("clientToken")
        with self._lock:
            if token and token in self._by_token:
                return self._deployments[self._by_token[token]]
        target = TargetArn.parse(request["targetArn"])
        parent = TargetArn.parse(request["parentTargetArn"]) if request.get("parentTargetArn") else None
        self._check_target(target)
        components = copy.deepcopy(dict(request.get("components") or {}))
        for name, spec in components.items():
            merge = (spec.get("configurationUpdate") or {}).get("merge")
            if merge is not None:
                try:
                    parsed = json.loads(merge)
                except json.JSONDecodeError as exc:
                    raise ApiError(
                        "ValidationException",
                        f"components.{name}.configurationUpdate.merge is not valid JSON: {exc}",
                        reason="FIELD_VALIDATION_FAILED",
                    ) from None
                if not isinstance(parsed, dict):
                    raise ApiError(
                        "ValidationException",
                        f"components.{name}.configurationUpdate.merge must be a JSON object",
                        reason="FIELD_VALIDATION_FAILED",
                    )
        policies = _with_defaults(dict(request.get("deploymentPolicies") or {}))
        job = copy.deepcopy(dict(request.get("iotJobConfiguration") or {}))
        now = self._clock()
        with self._lock:
            if parent is not None:
                self._check_subdeployment(target, parent)
            revision = self._revisions.get(target.arn, 0) + 1
            self._revisions[target.arn] = revision
            deployment_id = str(uuid.uuid4())
            job_id = str(uuid.uuid4())
            deployment = Deployment(
                deployment_id=deployment_id,
                name=str(request.get("deploymentName") or f"Deployment for {target.name}"),
                target=target,
                parent=parent,
                components=components,
                policies=policies,
                job_configuration=job,
                created=now,
                revision=revision,
                tags=dict(request.get("tags") or {}),
                job_id=job_id,
                job_arn=f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}",
                rollout=Rollout.from_config(job.get("jobExecutionsRolloutConfig")),
                abort=AbortCriterion.all_from(job.get("abortConfig")),
                timeout_minutes=(job.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes"),
            )
            for old in self._deployments.values():
                replaced = old.target.arn == target.arn or (
                    parent is None and old.parent is not None and old.parent.arn == target.arn
                )
                if replaced and old.latest:
                    old.latest = False
                    if old.status is DeploymentStatus.ACTIVE:
                        self._end(old, DeploymentStatus.INACTIVE, f"replaced by {deployment_id}", now)
            self._deployments[deployment_id] = deployment
            if parent is not None:
                self._sub_parents[target.arn] = parent.arn
            if token:
                self._by_token[token] = deployment_id
        for thing in self._members(target):
            self._execution(deployment, thing, now)
        self.tick()
        return deployment

    def _check_target(self, target: TargetArn) -> None:
        exists = (
            self._registry.group_exists(target.name)
            if target.is_group
            else self._registry.thing_exists(target.name)
        )
        if not exists:
            kind = "thing group" if target.is_group else "thing"
            raise ApiError(
                "ResourceNotFoundException",
                f"The {kind} {target.name} does not exist in the IoT registry",
                resourceId=target.arn,
                resourceType="ThingGroup" if target.is_group else "Thing",
            )

    def _check_subdeployment(self, target: TargetArn, parent: TargetArn) -> None:
        if not target.is_group:
            raise ApiError("ValidationException", "a subdeployment's targetArn must be a thing group")
        if not self._registry.group_exists(parent.name):
            raise ApiError(
                "ResourceNotFoundException",
                f"The thing group {parent.name} does not exist in the IoT registry",
                resourceId=parent.arn,
                resourceType="ThingGroup",
            )
        if not any(d.target.arn == parent.arn and d.parent is None for d in self._deployments.values()):
            raise ApiError(
                "ResourceNotFoundException",
                f"{parent.arn} has no deployment to be the parent of a subdeployment",
                resourceId=parent.arn,
                resourceType="Deployment",
            )
        used = self._sub_parents.get(target.arn)
        if used is not None and used != parent.arn:
            raise ApiError(
                "ValidationException",
                f"thing group {target.name} is already the target of subdeployments of {used}; "
                "it cannot be used with another parent",
            )

    def get(self, deployment_id: str) -> Deployment:
        with self._lock:
            found = self._deployments.get(deployment_id)
        if found is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"Deployment {deployment_id} does not exist",
                resourceId=deployment_id,
                resourceType="Deployment",
            )
        return found

    def matching(self, *, target: str | None, parent: str | None, latest_only: bool) -> list[Deployment]:
        with self._lock:
            found = [
                d
                for d in self._deployments.values()
                if (target is None or d.target.arn == target)
                and (parent is None or (d.parent is not None and d.parent.arn == parent))
                and (not latest_only or d.latest)
            ]
        return sorted(found, key=lambda d: d.created, reverse=True)

    def cancel(self, deployment_id: str) -> Deployment:
        deployment = self.get(deployment_id)
        with self._lock:
            if deployment.status is not DeploymentStatus.ACTIVE:
                raise ApiError(
                    "ConflictException",
                    f"Deployment {deployment_id} is {deployment.status.value} and cannot be canceled",
                    resourceId=deployment_id,
                    resourceType="Deployment",
                )
            self._end(deployment, DeploymentStatus.CANCELED, "canceled", self._clock())
        return deployment

    def _end(self, deployment: Deployment, status: DeploymentStatus, why: str, now: float) -> None:
        """Stop the job: devices that did not start it never will (those that started finish)."""
        deployment.status = status
        deployment.ended_because = why
        for execution in deployment.executions.values():
            if execution.status is ExecutionStatus.QUEUED:
                execution.status = ExecutionStatus.CANCELED
                execution.updated_at = now
                execution.version += 1

    def effective(self, thing: str) -> list[tuple[Deployment, Execution]]:
        """Every deployment whose job reached ``thing`` (the rollout notified it), newest first."""
        self.tick(thing)
        with self._lock:
            found = [
                (d, d.executions[thing])
                for d in self._deployments.values()
                if thing in d.executions and d.executions[thing].notified
            ]
        return sorted(found, key=lambda pair: pair[0].created, reverse=True)

    def executions_for_job(self, job_id: str) -> list[Execution]:
        """The job's executions that reached their device (IoT's ListJobExecutionsForJob)."""
        self.tick()
        with self._lock:
            for deployment in self._deployments.values():
                if deployment.job_id == job_id:
                    return sorted(
                        (e for e in deployment.executions.values() if e.notified), key=lambda e: e.thing
                    )
        raise ApiError("ResourceNotFoundException", f"Job {job_id} does not exist")

    # -- the jobs data plane (devices) ------------------------------------------------------------------

    def pending(
        self, thing: str
    ) -> tuple[list[tuple[Deployment, Execution]], list[tuple[Deployment, Execution]]]:
        """(in progress, queued) executions the device has been notified of, oldest first."""
        self.tick(thing)
        with self._lock:
            mine = sorted(
                ((d, d.executions[thing]) for d in self._deployments.values() if thing in d.executions),
                key=lambda pair: pair[1].queued_at,
            )
            visible = [(d, e) for d, e in mine if e.notified]
            return (
                [(d, e) for d, e in visible if e.status is ExecutionStatus.IN_PROGRESS],
                [(d, e) for d, e in visible if e.status is ExecutionStatus.QUEUED],
            )

    def start_next(
        self, thing: str, details: Mapping[str, str] | None
    ) -> tuple[Deployment, Execution] | None:
        in_progress, queued = self.pending(thing)
        with self._lock:
            if in_progress:
                return in_progress[0]
            if not queued:
                return None
            deployment, execution = queued[0]
            now = self._clock()
            execution.status = ExecutionStatus.IN_PROGRESS
            execution.started_at = execution.updated_at = now
            execution.details.update(details or {})
            execution.version += 1
            return deployment, execution

    def find_execution(self, thing: str, job_id: str) -> tuple[Deployment, Execution]:
        with self._lock:
            for deployment in self._deployments.values():
                execution = deployment.executions.get(thing)
                if deployment.job_id == job_id and execution is not None and execution.notified:
                    return deployment, execution
        raise ApiError("ResourceNotFoundException", f"no execution of job {job_id} for {thing}")

    def update(
        self, thing: str, job_id: str, status: ExecutionStatus, details: Mapping[str, str] | None
    ) -> tuple[Deployment, Execution]:
        deployment, execution = self.find_execution(thing, job_id)
        with self._lock:
            if execution.status in TERMINAL:
                raise ApiError(
                    "InvalidStateTransitionException",
                    f"the execution of job {job_id} on {thing} is {execution.status.value} already",
                )
            if status is ExecutionStatus.QUEUED:
                raise ApiError("InvalidRequestException", "an execution cannot go back to QUEUED")
            now = self._clock()
            if execution.started_at is None:
                execution.started_at = now
            execution.status = status
            execution.updated_at = now
            execution.details.update(details or {})
            execution.version += 1
            if status is ExecutionStatus.SUCCEEDED:
                deployment.rollout.succeeded()
            self._after_execution(deployment, now)
        return deployment, execution

    # -- time passing -----------------------------------------------------------------------------

    def tick(self, thing: str | None = None) -> None:
        """Let time act: devices that joined a target get its job, timeouts expire, the rollout
        notifies the next devices. Runs on every device poll and API call."""
        now = self._clock()
        if thing is not None:
            groups = self._registry.groups_of(thing)
            with self._lock:
                active = [
                    d for d in self._deployments.values() if d.latest and d.status is DeploymentStatus.ACTIVE
                ]
            for deployment in active:
                target = deployment.target
                if (not target.is_group and target.name == thing) or (
                    target.is_group and target.name in groups
                ):
                    self._execution(deployment, thing, now)
        with self._lock:
            for deployment in self._deployments.values():
                if deployment.timeout_minutes:
                    limit = self._scale.wall(float(deployment.timeout_minutes) * 60.0)
                    for execution in deployment.executions.values():
                        started = execution.started_at
                        if (
                            execution.status is ExecutionStatus.IN_PROGRESS
                            and started
                            and now - started > limit
                        ):
                            execution.status = ExecutionStatus.TIMED_OUT
                            execution.updated_at = now
                            execution.version += 1
                            execution.details.setdefault(
                                "deployment-failure-cause",
                                f"not finished within {deployment.timeout_minutes} minutes (the job timeout)",
                            )
                            self._after_execution(deployment, now)
                if deployment.status is not DeploymentStatus.ACTIVE:
                    continue
                waiting = sorted(
                    (
                        e
                        for e in deployment.executions.values()
                        if not e.notified and e.status is ExecutionStatus.QUEUED
                    ),
                    key=lambda e: e.thing,
                )
                if waiting:
                    allowed = deployment.rollout.allowance(now, self._scale)
                    for execution in waiting[:allowed]:
                        execution.notified = True  # as IoT creates an execution when the rollout
                        execution.queued_at = execution.updated_at = now  # reaches its thing
                    deployment.rollout.notified(min(allowed, len(waiting)))

    def _execution(self, deployment: Deployment, thing: str, now: float) -> None:
        with self._lock:
            if thing not in deployment.executions and deployment.status is DeploymentStatus.ACTIVE:
                deployment.executions[thing] = Execution(thing, queued_at=now, updated_at=now)

    def _after_execution(self, deployment: Deployment, now: float) -> None:
        statuses = [e.status for e in deployment.executions.values()]
        reason = abort_reason(deployment.abort, statuses)
        if reason is not None and deployment.status is DeploymentStatus.ACTIVE:
            self._end(deployment, DeploymentStatus.FAILED, reason, now)
            return
        if not deployment.target.is_group and all(s in TERMINAL for s in statuses):
            done = all(s is ExecutionStatus.SUCCEEDED for s in statuses)
            if deployment.status is DeploymentStatus.ACTIVE:
                deployment.status = DeploymentStatus.COMPLETED if done else DeploymentStatus.FAILED

    def _members(self, target: TargetArn) -> set[str]:
        return self._registry.members(target.name) if target.is_group else {target.name}


def _with_defaults(policies: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(DEFAULT_POLICIES)
    for key, value in policies.items():
        if isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    return out
