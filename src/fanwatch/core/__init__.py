"""fanwatch's local Greengrass core: the real components and the real IPC client, no device needed.

The parts: :mod:`~fanwatch.core.ipc` serves the Greengrass IPC protocol, :mod:`~fanwatch.core.mqtt`
carries PublishToIoTCore to a broker standing in for IoT Core, and the runtime runs recipes
(:mod:`~fanwatch.core.recipe`, :mod:`~fanwatch.core.lifecycle`) and deployments
(:mod:`~fanwatch.core.deployment`) on a :class:`LocalCore` per thing, or on a :class:`Fleet` of them.
The names below are loaded on first use, so importing one part does not load the others.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ComponentStore", "DeploymentDocument", "DeploymentResult", "Fleet", "LocalCore"]

_WHERE = {
    "ComponentStore": "fanwatch.core.store",
    "DeploymentDocument": "fanwatch.core.deployment",
    "DeploymentResult": "fanwatch.core.deployment",
    "Fleet": "fanwatch.core.fleet",
    "LocalCore": "fanwatch.core.runtime",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fanwatch.core' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
