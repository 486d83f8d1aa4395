"""The plan a core makes of a deployment before it touches anything.

A deployment names the *root* components of the device; everything else it keeps is a dependency of
one of them. The plan resolves every version (dependencies with the stored version their
``VersionRequirement`` allows, preferring the one already running), picks each recipe's manifest for
the platform, resolves every configuration from the running one (RESET, defaults, MERGE; updates
apply to root components only, as in the nucleus) and orders components so that dependencies start
first. Any problem fails the deployment before a single process is touched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fanwatch.core.deployment.configuration_update import resolve_configuration
from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError
from fanwatch.core.deployment.recipe import DependencyType, Manifest, RecipeError
from fanwatch.core.deployment.store import ComponentStore, StoredComponent
from fanwatch.core.deployment.versions import Requirement
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = ["Plan", "PlannedComponent", "plan_deployment"]


@dataclass(frozen=True, slots=True)
class PlannedComponent:
    """A component the plan runs: its stored version, the manifest for this platform, its configuration
    after the update; ``root`` when the document named it rather than a dependency."""

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
    def dependencies(self) -> Mapping[str, DependencyType]:
        """Dependency name -> HARD/SOFT, without the built-in nucleus."""
        return {
            n: d.dependency_type for n, d in self.stored.recipe.dependencies.items() if n != NUCLEUS_COMPONENT
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """A deployment resolved against the store: every component to run, dependencies first, and the
    nucleus' configuration."""

    document: DeploymentDocument
    components: Mapping[str, PlannedComponent]  # in start order: dependencies first
    nucleus_configuration: Mapping[str, Any]


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
        if root.name == NUCLEUS_COMPONENT:
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
            if dep_name == NUCLEUS_COMPONENT:
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
    nucleus_request = document.components.get(NUCLEUS_COMPONENT)
    nucleus_configuration = resolve_configuration(
        configurations.get(NUCLEUS_COMPONENT),
        nucleus_defaults,
        nucleus_request.update if nucleus_request else None,
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
