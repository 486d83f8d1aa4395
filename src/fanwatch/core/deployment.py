"""Deployment documents, and the plan a core makes of one before it touches anything.

A document is the JSON a Greengrass deployment carries. Both shapes are read: the CreateDeployment
request (``components: {name: {componentVersion, configurationUpdate: {merge: "<json string>",
reset: [...]}}}``, ``deploymentPolicies.failureHandlingPolicy``) and the document the nucleus
receives (``components: {name: {version, configurationUpdate: {merge: {...}}}}``,
``failureHandlingPolicy`` at the top).

A deployment names the *root* components of the device; everything else it keeps is a dependency of
one of them. The plan resolves every version (dependencies with the stored version their
``VersionRequirement`` allows, preferring the one already running), picks each recipe's manifest for
the platform, resolves every configuration from the running one (RESET, defaults, MERGE; updates
apply to root components only, as in the nucleus) and orders components so that dependencies start
first. Any problem fails the deployment before a single process is touched.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.core.configuration_update import ConfigurationUpdate, resolve_configuration
from fanwatch.core.recipe import Manifest, RecipeError
from fanwatch.core.store import ComponentStore, StoredComponent
from fanwatch.core.versions import Requirement, Version

__all__ = [
    "FAILURE_POLICIES",
    "NUCLEUS",
    "ComponentRequest",
    "DeploymentDocument",
    "DeploymentError",
    "DeploymentResult",
    "Plan",
    "PlannedComponent",
    "plan_deployment",
]

#: The nucleus is built into the local core; deployments may configure it but never install it.
NUCLEUS: Final = "aws.greengrass.Nucleus"
FAILURE_POLICIES: Final = ("ROLLBACK", "DO_NOTHING")


class DeploymentError(ValueError):
    """The document or its plan is invalid: nothing was changed."""


@dataclass(frozen=True, slots=True)
class ComponentRequest:
    name: str
    version: str
    update: ConfigurationUpdate = field(default_factory=ConfigurationUpdate)


@dataclass(frozen=True, slots=True)
class DeploymentDocument:
    deployment_id: str
    components: Mapping[str, ComponentRequest]
    failure_handling: str = "ROLLBACK"
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
        if policy not in FAILURE_POLICIES:
            raise DeploymentError(f"failureHandlingPolicy: expected ROLLBACK or DO_NOTHING, got {policy!r}")
        deployment_id = (
            data.get("deploymentId") or data.get("deploymentName") or f"local-{secrets.token_hex(4)}"
        )
        return cls(str(deployment_id), requests, policy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "components": {
                r.name: {"componentVersion": r.version, "configurationUpdate": r.update.to_dict()}
                for r in self.components.values()
            },
            "failureHandlingPolicy": self.failure_handling,
        }


@dataclass(frozen=True, slots=True)
class PlannedComponent:
    stored: StoredComponent
    manifest: Manifest
    configuration: Mapping[str, Any]
    root: bool

    @property
    def name(self) -> str:
        return self.stored.name

    @property
    def version(self) -> str:
        return self.stored.version

    @property
    def dependencies(self) -> Mapping[str, str]:
        """Dependency name -> HARD/SOFT, without the built-in nucleus."""
        return {n: d.dependency_type for n, d in self.stored.recipe.dependencies.items() if n != NUCLEUS}


@dataclass(frozen=True, slots=True)
class Plan:
    document: DeploymentDocument
    components: Mapping[str, PlannedComponent]  # in start order: dependencies first
    nucleus_configuration: Mapping[str, Any]


@dataclass(slots=True)
class DeploymentResult:
    """How a deployment ended, with the nucleus' status names."""

    deployment_id: str
    status: str  # SUCCESSFUL | FAILED_NO_STATE_CHANGE | FAILED_ROLLBACK_NOT_REQUESTED | ...
    detail: str = ""
    states: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESSFUL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "status": self.status,
            "detail": self.detail,
            "states": self.states,
        }


def plan_deployment(
    document: DeploymentDocument,
    store: ComponentStore,
    *,
    running: Mapping[str, StoredComponent],
    configurations: Mapping[str, Mapping[str, Any]],
    platform: Mapping[str, str],
    nucleus_version: str,
    nucleus_defaults: Mapping[str, Any],
) -> Plan:
    """Resolve ``document`` against the store and the running components (see the module docstring)."""
    chosen: dict[str, StoredComponent] = {}
    for root in document.components.values():
        if root.name == NUCLEUS:
            continue
        try:
            chosen[root.name] = store.get(root.name, root.version)
        except LookupError as exc:
            raise DeploymentError(str(exc)) from None
    pending = list(chosen.values())
    while pending:
        component = pending.pop()
        for dep_name, dep in component.recipe.dependencies.items():
            requirement = _requirement(dep.version_requirement, component, dep_name)
            kind = f"a {dep.dependency_type} dependency of {component.name}"
            where = f"{dep_name} ({dep.version_requirement}, {kind})"
            if dep_name == NUCLEUS:
                if not requirement.allows(nucleus_version):
                    raise DeploymentError(f"{where}: the local core is nucleus {nucleus_version}")
                continue
            if dep_name in chosen:
                if not requirement.allows(chosen[dep_name].version):
                    raise DeploymentError(f"{where}: the deployment asks for {chosen[dep_name].version}")
                continue
            current = running.get(dep_name)
            found = current if current is not None and requirement.allows(current.version) else None
            found = found or store.best(dep_name, requirement)
            if found is None:
                raise DeploymentError(f"{where}: no such version in the component store")
            chosen[dep_name] = found
            pending.append(found)
    planned: dict[str, PlannedComponent] = {}
    for name in _start_order(chosen):
        stored = chosen[name]
        request = document.components.get(name)
        try:
            manifest = stored.recipe.manifest_for(platform)
            configuration = resolve_configuration(
                configurations.get(name) if name in running else None,
                stored.recipe.default_configuration,
                request.update if request is not None else None,
            )
        except (RecipeError, ValueError) as exc:
            raise DeploymentError(str(exc)) from None
        planned[name] = PlannedComponent(stored, manifest, configuration, root=request is not None)
    nucleus_request = document.components.get(NUCLEUS)
    nucleus_configuration = resolve_configuration(
        configurations.get(NUCLEUS), nucleus_defaults, nucleus_request.update if nucleus_request else None
    )
    return Plan(document, planned, copy.deepcopy(nucleus_configuration))


def _requirement(text: str, component: StoredComponent, dependency: str) -> Requirement:
    try:
        return Requirement(text)
    except ValueError as exc:
        raise DeploymentError(
            f"{component.name} {component.version}: dependency {dependency}: {exc}"
        ) from None


def _start_order(components: Mapping[str, StoredComponent]) -> list[str]:
    """Dependencies before dependers (HARD and SOFT alike); a cycle is an error."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise DeploymentError(f"dependency cycle: {cycle}")
        visiting.append(name)
        for dependency in sorted(components[name].recipe.dependencies):
            if dependency in components:
                visit(dependency)
        visiting.pop()
        order.append(name)

    for name in sorted(components):
        visit(name)
    return order
