"""What ``fanwatch core status`` shows of a core: states, effective configuration and accessControl,
the keys a version change left behind, and what will not work as the recipe's author meant."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fanwatch.core.deployment.configuration_update import stale_keys
from fanwatch.core.deployment.document import DeploymentResult
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.layout import CoreLayout
from fanwatch.core.runtime.nucleus import NUCLEUS_VERSION
from fanwatch.core.runtime.supervisor import Supervisor
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = ["core_status"]


def _access_problems(access: Any, interpolates: bool) -> list[str]:
    """accessControl resources that can never match: a recipe variable the nucleus does not replace."""
    if interpolates or not isinstance(access, Mapping):
        return []
    found = sorted(
        {
            resource
            for policies in access.values()
            if isinstance(policies, Mapping)
            for policy in policies.values()
            if isinstance(policy, Mapping)
            for resource in policy.get("resources") or []
            if isinstance(resource, str) and "{iot:thingName}" in resource
        }
    )
    hint = "set interpolateComponentConfiguration to true in aws.greengrass.Nucleus's configuration"
    return [f"accessControl resource {r!r} never matches: {hint}" for r in found]


def _component_status(
    name: str, supervisor: Supervisor, layout: CoreLayout, interpolates: bool
) -> dict[str, Any]:
    running = supervisor.running[name]
    configuration = supervisor.configuration(name)
    access = copy.deepcopy(configuration.get("accessControl", {}))
    defaults = running.planned.stored.recipe.default_configuration
    stale = [
        {"pointer": pointer, "value": value, "removeWith": {"configurationUpdate": {"reset": [pointer]}}}
        for pointer, value in stale_keys(configuration, defaults)
    ]
    return {
        "name": name,
        "version": running.planned.version,
        "state": running.service.state.value,
        "reason": running.service.status_reason,
        "root": running.planned.root,
        "configuration": configuration,
        "accessControl": access,
        "staleKeys": stale,
        "problems": [*running.service.spec.unresolved, *_access_problems(access, interpolates)],
        "log": str(layout.log_path(name)),
    }


def core_status(
    *,
    thing_name: str,
    layout: CoreLayout,
    platform: Mapping[str, str],
    supervisor: Supervisor,
    store: ComponentStore,
    last_result: DeploymentResult | None,
) -> dict[str, Any]:
    """One core as ``fanwatch core status`` shows it (JSON-ready): the nucleus, the platform, the last
    deployment, each component's state, configuration, stale keys and problems, and the component store."""
    nucleus = supervisor.configuration(NUCLEUS_COMPONENT)
    interpolates = bool(nucleus.get("interpolateComponentConfiguration"))
    return {
        "thing": thing_name,
        "root": str(layout.root),
        "nucleus": {"version": NUCLEUS_VERSION, "configuration": nucleus},
        "platform": platform,
        "deployment": None if last_result is None else last_result.to_dict(),
        "components": [
            _component_status(name, supervisor, layout, interpolates) for name in supervisor.running
        ],
        "store": [{"name": c.name, "version": c.version} for c in store],
    }
