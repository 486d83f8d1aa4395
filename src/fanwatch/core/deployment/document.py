"""Deployment documents, and how a deployment ended.

A document is the JSON a Greengrass deployment carries. Both shapes are read: the CreateDeployment
request (``components: {name: {componentVersion, configurationUpdate: {merge: "<json string>",
reset: [...]}}}``, ``deploymentPolicies.failureHandlingPolicy``) and the document the nucleus
receives (``components: {name: {version, configurationUpdate: {merge: {...}}}}``,
``failureHandlingPolicy`` at the top).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fanwatch.core.deployment.configuration_update import ConfigurationUpdate
from fanwatch.core.deployment.versions import Version
from fanwatch.errors import FanwatchError

__all__ = [
    "ComponentRequest",
    "DeploymentDocument",
    "DeploymentError",
    "DeploymentResult",
    "DetailedDeploymentStatus",
    "FailurePolicy",
]


class FailurePolicy(StrEnum):
    """What a core does when a deployment fails (``failureHandlingPolicy``)."""

    ROLLBACK = "ROLLBACK"  # apply again what ran before
    DO_NOTHING = "DO_NOTHING"  # leave the components as the failed deployment left them


class DetailedDeploymentStatus(StrEnum):
    """How a deployment ended, with the nucleus' names (``detailed-deployment-status``)."""

    SUCCESSFUL = "SUCCESSFUL"
    FAILED_NO_STATE_CHANGE = "FAILED_NO_STATE_CHANGE"  # refused before anything changed
    FAILED_ROLLBACK_NOT_REQUESTED = "FAILED_ROLLBACK_NOT_REQUESTED"  # failed, policy DO_NOTHING
    FAILED_ROLLBACK_COMPLETE = "FAILED_ROLLBACK_COMPLETE"  # failed, what ran before runs again
    FAILED_UNABLE_TO_ROLLBACK = "FAILED_UNABLE_TO_ROLLBACK"  # failed, and so did the rollback


class DeploymentError(FanwatchError, ValueError):
    """The document or its plan is invalid: nothing was changed."""


@dataclass(frozen=True, slots=True)
class ComponentRequest:
    """One component a deployment asks for: the version, and the configuration update applied to it."""

    name: str
    version: str
    update: ConfigurationUpdate = field(default_factory=ConfigurationUpdate)


@dataclass(frozen=True, slots=True)
class DeploymentDocument:
    """What a deployment asks of a core: its root components and what a failure does (roll back or not)."""

    deployment_id: str
    components: Mapping[str, ComponentRequest]
    failure_handling: FailurePolicy = FailurePolicy.ROLLBACK
    created: float = field(default_factory=time.time)

    @classmethod
    def parse(cls, data: object) -> DeploymentDocument:
        if not isinstance(data, Mapping):
            raise DeploymentError(f"a deployment document is a JSON object, got {type(data).__name__}")
        components = data.get("components")
        if not isinstance(components, Mapping):
            raise DeploymentError(
                "components: expected an object of component name to {componentVersion, ...}"
            )
        requests: dict[str, ComponentRequest] = {}
        for name, spec in components.items():
            where = f"components.{name}"
            if not isinstance(spec, Mapping):
                raise DeploymentError(f"{where}: expected an object")
            version = spec.get("componentVersion", spec.get("version"))
            if not isinstance(version, str):
                raise DeploymentError(f"{where}.componentVersion: missing")
            try:
                Version.parse(version)
            except ValueError as exc:
                raise DeploymentError(f"{where}.componentVersion: {exc}") from None
            try:
                update = ConfigurationUpdate.parse(
                    spec.get("configurationUpdate"), f"{where}.configurationUpdate"
                )
            except ValueError as exc:
                raise DeploymentError(str(exc)) from None
            requests[str(name)] = ComponentRequest(str(name), version, update)
        policies = data.get("deploymentPolicies", {})
        if not isinstance(policies, Mapping):
            raise DeploymentError("deploymentPolicies: expected an object")
        policy = str(policies.get("failureHandlingPolicy") or data.get("failureHandlingPolicy") or "ROLLBACK")
        if policy not in FailurePolicy.__members__:
            raise DeploymentError(f"failureHandlingPolicy: expected ROLLBACK or DO_NOTHING, got {policy!r}")
        deployment_id = (
            data.get("deploymentId") or data.get("deploymentName") or f"local-{secrets.token_hex(4)}"
        )
        return cls(str(deployment_id), requests, FailurePolicy(policy))

    def to_dict(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "components": {
                r.name: {"componentVersion": r.version, "configurationUpdate": r.update.to_dict()}
                for r in self.components.values()
            },
            "failureHandlingPolicy": self.failure_handling,
        }


@dataclass(slots=True)
class DeploymentResult:
    """How a deployment ended, with the nucleus' status names."""

    deployment_id: str
    status: DetailedDeploymentStatus
    detail: str = ""
    states: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == DetailedDeploymentStatus.SUCCESSFUL

    def to_dict(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "status": self.status,
            "detail": self.detail,
            "states": self.states,
        }
